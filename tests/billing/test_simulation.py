"""A seeded 12-month simulation: several accounts subscribe, generate, upgrade,
downgrade, cancel, resume and have cards declined, day by day, with the clock
pinned. Afterwards the ledger checks clean and every paid invoice matches the
ledger rows it caused (and no failed one caused any)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import select

from tests.support.simulation import START, act
from tests.support.subscriptions import sign_up
from workroom_app.billing import catalog, clock, subscriptions
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.db import read_session
from workroom_app.models import (
    ActionType,
    Invoice,
    LedgerEntry,
    LocalCharge,
    OutboxEmail,
    Subscription,
)


@pytest.mark.slow  # twelve months of accounts
def test_twelve_months_of_billing_keep_the_ledger_and_the_invoices_consistent(engine):
    rng = random.Random(20261124)
    log: Counter = Counter()
    with clock.pinned(START):
        accounts = [sign_up(engine, f"sim{i}@example.com") for i in range(6)]
    moment = START
    for step in range(365):
        moment = START + timedelta(days=step, hours=rng.randint(0, 12))
        with clock.pinned(moment):
            report = subscriptions.renew_due(engine)
            assert report.errors == {}
            log["renewed"] += report.renewed
            log["renewal_failed"] += report.failed
            log["ended"] += report.ended
            for account_id in accounts:
                if rng.random() < 0.25:
                    act(engine, rng, account_id, step, log)
    # the mix really happened
    for what in (
        "subscribe_ok",
        "subscribe_declined",
        "upgrade_ok",
        "downgrade_ok",
        "cancel",
        "resume",
        "renewed",
        "renewal_failed",
        "ended",
        "debit",
        "refund",
    ):
        assert log[what] > 0, (what, log)

    plans = {p.key: p for p in catalog.get_catalog().plans}
    with read_session(engine) as s:
        assert check_ledger(s) == []
        entries = s.exec(select(LedgerEntry)).all()
        by_invoice: dict[str, list[LedgerEntry]] = {}
        for e in entries:
            if e.reference_type == "invoice":
                by_invoice.setdefault(e.reference_id, []).append(e)
        invoices = s.exec(select(Invoice)).all()
        paid = [i for i in invoices if i.status == "paid"]
        for inv in invoices:
            rows = by_invoice.get(str(inv.id), [])
            if inv.status == "failed":
                assert rows == [], inv
                continue
            plan = plans[inv.plan_key]
            grants = [(e.action_type, e.amount) for e in rows if e.amount > 0]
            if inv.kind == "activation":
                assert grants == [(ActionType.SUBSCRIPTION_CREDITS, plan.monthly_credits)]
                assert inv.amount_cents == plan.price_cents
            elif inv.kind == "renewal":
                assert grants == [(ActionType.MONTHLY_CREDITS, plan.monthly_credits)]
                assert inv.amount_cents == plan.price_cents
            elif inv.kind == "upgrade":
                [(action, amount)] = grants
                assert action == ActionType.PLAN_CHANGE
                # the difference in monthly credits, paid by the difference in price
                old = next(
                    p
                    for p in plans.values()
                    if p.price_cents == plan.price_cents - inv.amount_cents
                )
                assert amount == plan.monthly_credits - old.monthly_credits
            elif inv.kind == "downgrade":
                assert grants == [(ActionType.SUBSCRIPTION_CREDITS, plan.monthly_credits)]
                assert inv.amount_cents == plan.price_cents
                burns = [e for e in rows if e.amount < 0]
                assert all(e.action_type == ActionType.PLAN_CHANGE for e in burns)
            else:
                pytest.fail(f"an invoice of a kind this check does not know: {inv.kind}")
        # every credit a subscription granted came from a paid invoice
        for e in entries:
            if e.action_type in (ActionType.SUBSCRIPTION_CREDITS, ActionType.MONTHLY_CREDITS):
                assert e.reference_type == "invoice"
        # money: what the gateway took equals what the paid invoices say
        charges = s.exec(select(LocalCharge).where(LocalCharge.ok.is_(True))).all()
        assert sorted(c.gateway_ref for c in charges) == sorted(i.gateway_ref for i in paid)
        assert sum(c.amount_cents for c in charges) == sum(i.amount_cents for i in paid)
        # one receipt per paid invoice, none for failed ones
        mails = s.exec(
            select(OutboxEmail).where(OutboxEmail.invoice_id.is_not(None))
        ).all()  # alerts aside
        assert sorted(m.invoice_id for m in mails) == sorted(i.id for i in paid)
        # at most one live subscription per account
        live = Counter(
            sub.account_id for sub in s.exec(select(Subscription)) if sub.status != "ended"
        )
        assert all(n == 1 for n in live.values())
