"""The worker drives the local gateway's renewals: a due subscription is renewed
by the worker loop's billing scheduler without anything else calling it."""

import asyncio
from datetime import timedelta

from sqlmodel import select

from workroom_app.billing import accounts, clock, subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.generation.worker import run_worker
from workroom_app.models import ActionType, LedgerEntry, Subscription


class _IdleProvider:
    name = "local"

    async def aclose(self):
        return None


def test_worker_loop_renews_a_due_subscription(sqlite_engine):
    with write_session(sqlite_engine) as s:
        account = accounts.sign_up(s, "renew@example.com", "a-long-password")
        card = subscriptions.CardForm("4242 4242 4242 4242", 12, clock.now().year + 2, "123", "R")
        outcome = subscriptions.subscribe(s, account.id, "starter", card=card)
        assert outcome.ok
    with read_session(sqlite_engine) as s:
        sub = s.exec(select(Subscription).where(Subscription.account_id == account.id)).one()
        period_end = sub.current_period_end

    async def run_briefly():
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_worker(
                stop,
                0.05,
                engine=sqlite_engine,
                provider=_IdleProvider(),
                start_local_service=False,
                billing_interval=0.05,
            )
        )
        await asyncio.sleep(1.0)
        stop.set()
        await task

    with clock.pinned(period_end + timedelta(minutes=5)):
        asyncio.run(run_briefly())

    with read_session(sqlite_engine) as s:
        actions = s.exec(
            select(LedgerEntry.action_type).where(LedgerEntry.account_id == account.id)
        ).all()
    assert actions.count(ActionType.MONTHLY_CREDITS) == 1
