"""The demo user's seeded history goes through the real engine and is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from workroom_app.billing import accounts, clock
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.db import read_session
from workroom_app.models import Invoice, LedgerEntry, OutboxEmail
from workroom_app.seed import DEMO_EMAIL, seed_demo


@pytest.mark.slow  # seeds months of demo history twice
def test_demo_user_has_months_of_pro_history_and_seeding_twice_changes_nothing(sqlite_engine):
    with clock.pinned(datetime(2026, 11, 24, 21, 0, tzinfo=UTC)):
        seed_demo(sqlite_engine)
        with read_session(sqlite_engine) as s:
            before = len(s.exec(select(LedgerEntry)).all())
        seed_demo(sqlite_engine)
    with read_session(sqlite_engine) as s:
        demo = accounts.find_account(s, DEMO_EMAIL)
        assert accounts.current_plan_key(s, demo.id) == "pro"
        invoices = s.exec(
            select(Invoice).where(Invoice.account_id == demo.id).order_by(Invoice.id)
        ).all()
        assert [i.kind for i in invoices] == ["activation", "renewal", "renewal", "renewal"]
        assert all(i.status == "paid" and i.card_last4 == "4242" for i in invoices)
        rows = s.exec(select(LedgerEntry).where(LedgerEntry.account_id == demo.id)).all()
        kinds = {r.action_type for r in rows}
        assert {
            "subscription_credits",
            "monthly_credits",
            "generation",
            "refund",
            "expiry",
        } <= kinds
        assert len(s.exec(select(LedgerEntry)).all()) == before
        assert len(s.exec(select(OutboxEmail)).all()) == len(invoices)
        assert check_ledger(s) == []
