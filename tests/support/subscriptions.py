"""Helpers shared by the subscription tests (no tests here). Accounts, subscriptions and
balances come from tests/support/factories.py, re-exported here for these tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from tests.support.factories import (  # noqa: F401  (re-exported for these tests)
    VISA,
    balance,
    invoices_of,
    sign_up,
    subscribe,
)
from workroom_app.billing import clock, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    CreditGrant,
    LedgerEntry,
    OutboxEmail,
    Subscription,
)

T0 = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)
AMEX = CardForm("378282246310005", 12, 2030, "1234", "Ann")
FAILS_ON_CHARGE = CardForm("4000000000000341", 12, 2030, "123", "Ann")
DECLINED = CardForm("4000000000000002", 12, 2030, "123", "Ann")
INSUFFICIENT = CardForm("4000000000009995", 12, 2030, "123", "Ann")


def change(engine, account_id: int, plan: str, *, expected=None):
    with write_session(engine) as s:
        return subscriptions.change_plan(s, account_id, plan, expected_preview=expected)


def preview(engine, account_id: int, plan: str):
    with read_session(engine) as s:
        return subscriptions.preview_change(s, account_id, plan)


def save_card(engine, account_id: int, card: CardForm):
    with write_session(engine) as s:
        return subscriptions.save_card(s, account_id, card)


def renew_due(engine):
    return subscriptions.renew_due(engine)


def entries(engine, account_id: int) -> list[tuple[str, int]]:
    with read_session(engine) as s:
        rows = s.exec(
            select(LedgerEntry).where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)
        ).all()
        return [(r.action_type, r.amount) for r in rows]


def outbox_of(engine, account_id: int) -> list[OutboxEmail]:
    with read_session(engine) as s:
        return list(
            s.exec(
                select(OutboxEmail)
                .where(OutboxEmail.account_id == account_id)
                .order_by(OutboxEmail.id)
            )
        )


def subscription_of(engine, account_id: int) -> Subscription | None:
    with read_session(engine) as s:
        return s.exec(
            select(Subscription)
            .where(Subscription.account_id == account_id)
            .order_by(Subscription.id.desc())
        ).first()


def grants_of(engine, account_id: int) -> list[CreditGrant]:
    with read_session(engine) as s:
        return list(
            s.exec(
                select(CreditGrant)
                .where(CreditGrant.account_id == account_id)
                .order_by(CreditGrant.id)
            )
        )


def at(moment: datetime):
    return clock.pinned(moment)
