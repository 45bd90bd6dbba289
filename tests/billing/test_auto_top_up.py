"""Auto top-up, on SQLite and PostgreSQL: after the debit
that crossed the threshold commits, once per crossing (also with 32 concurrent
debits), never past the monthly cap, off after a decline with an email."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.concurrency import at_once, exceptions
from tests.support.factories import alerts_of, spend
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    at,
    balance,
    entries,
    invoices_of,
    outbox_of,
    save_card,
    sign_up,
    subscribe,
)
from workroom_app.billing import alerts, auto_top_up, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, AlertKind

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def turn_on(engine, acct, *, threshold=100, pack="credits_500", cap=2):
    with write_session(engine) as s:
        return auto_top_up.save_settings(
            s, acct, enabled=True, threshold=threshold, pack_key=pack, monthly_cap=cap
        )


def settings(engine, acct):
    with read_session(engine) as s:
        return alerts.read_settings(s, acct)


def top_up_invoices(engine, acct):
    return [
        i for i in invoices_of(engine, acct) if i.idempotency_key.startswith(auto_top_up.KEY_PREFIX)
    ]


def subscriber(engine, plan="starter"):
    acct = sign_up(engine)
    subscribe(engine, acct, plan)  # Visa on file
    return acct


def test_crossing_the_threshold_buys_the_pack_after_the_debit(engine):
    with at(T0):
        acct = subscriber(engine)  # 850
        turn_on(engine, acct)
        spend(engine, acct, 700, "a")  # 150: above
        assert top_up_invoices(engine, acct) == []
        spend(engine, acct, 60, "b")  # 90: crossed -> +500
    assert balance(engine, acct) == 590
    kinds = [a for a, _ in entries(engine, acct)]
    # The debit row first, then the pack's grant: the top-up ran after the debit, not inside it.
    assert kinds[-2:] == [ActionType.GENERATION.value, ActionType.CREDIT_PACK.value]
    [inv] = top_up_invoices(engine, acct)
    assert (inv.kind, inv.status, inv.amount_cents) == ("pack", "paid", 600)
    assert any(m.invoice_id == inv.id for m in outbox_of(engine, acct))  # its receipt
    assert (
        alerts_of(engine, acct, AlertKind.AUTO_TOP_UP)[0].title == "Auto top-up: 500 credits added"
    )


def test_at_most_the_monthly_cap(engine):
    with at(T0):
        acct = subscriber(engine)
        turn_on(engine, acct, threshold=100, cap=2)
        for i in range(4):  # each spend crosses again after the previous top-up
            if balance(engine, acct) > 50:
                spend(engine, acct, balance(engine, acct) - 50, f"s{i}")
    assert len(top_up_invoices(engine, acct)) == 2
    assert balance(engine, acct) == 50
    # A new calendar month, a new allowance.
    with at(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)):
        ledger_grant(engine, acct, 200)
        spend(engine, acct, 160, "april")  # 250 -> 90: crossed
    assert len(top_up_invoices(engine, acct)) == 3


def ledger_grant(engine, acct, amount):
    with write_session(engine) as s:
        ledger.staff_adjust(
            s, acct, amount, reason="test", actor_id=acct, idempotency_key=f"g:{acct}:{amount}"
        )


def test_32_concurrent_debits_top_up_once(engine):
    with at(T0):
        acct = sign_up(engine)
        subscribe(engine, acct, "pro")  # 3,050
        turn_on(engine, acct, threshold=1600, cap=5)  # crossed by the 30th debit only
        errors = exceptions(at_once(32, lambda i: spend(engine, acct, 50, f"c{i}")))
    assert errors == []
    assert len(top_up_invoices(engine, acct)) == 1
    assert balance(engine, acct) == 3050 - 32 * 50 + 500


def test_running_the_same_crossing_twice_charges_once(engine):
    with at(T0):
        acct = subscriber(engine)
        turn_on(engine, acct)
        spend(engine, acct, 800, "a")  # crossed: topped up
        entry_id = max(
            e.id for e in _rows(engine, acct) if e.action_type == ActionType.GENERATION.value
        )
        with write_session(engine) as s:
            again = auto_top_up.top_up(s, acct, entry_id)
    assert again.replayed
    assert len(top_up_invoices(engine, acct)) == 1


def _rows(engine, acct):
    from sqlmodel import select

    from workroom_app.models import LedgerEntry

    with read_session(engine) as s:
        return list(s.exec(select(LedgerEntry).where(LedgerEntry.account_id == acct)))


def test_a_declined_card_turns_it_off_and_emails_the_reason(engine):
    with at(T0):
        acct = subscriber(engine)
        turn_on(engine, acct)
        save_card(engine, acct, FAILS_ON_CHARGE)
        spend(engine, acct, 800, "a")
    assert balance(engine, acct) == 50
    [inv] = top_up_invoices(engine, acct)
    assert inv.status == "failed"
    assert settings(engine, acct).auto_top_up is False
    [off] = alerts_of(engine, acct, AlertKind.AUTO_TOP_UP)
    assert off.title == "Auto top-up is off" and "Your card was declined." in off.body
    assert any(
        m.subject == "Auto top-up is off" and "Your card was declined." in m.body_text
        for m in outbox_of(engine, acct)
    )


@pytest.mark.parametrize(
    ("threshold", "pack", "cap"),
    [
        (-1, "credits_500", 2),
        (0, "credits_500", 2),
        (1.5, "credits_500", 2),
        ("x", "credits_500", 2),
        (100, "credits_501", 2),
        (100, None, 2),
        (100, "credits_500", 0),
        (100, "credits_500", 32),
        (100, "credits_500", 2.5),
        (100, "credits_500", -1),
        (True, "credits_500", 2),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(engine, threshold, pack, cap):
    acct = subscriber(engine)
    with pytest.raises(alerts.AlertError):
        turn_on(engine, acct, threshold=threshold, pack=pack, cap=cap)
    assert settings(engine, acct) == alerts.DEFAULTS


def test_turning_it_on_needs_a_card(engine):
    acct = sign_up(engine)
    with pytest.raises(alerts.AlertError, match="Add a card"):
        turn_on(engine, acct)


def test_it_is_off_by_default(engine):
    with at(T0):
        acct = subscriber(engine)
        spend(engine, acct, 845, "a")
    assert top_up_invoices(engine, acct) == []


def test_a_generation_submitted_below_the_threshold_tops_up_after_its_commit(engine):
    """jobs.submit debits inside a savepoint: releasing it is not the commit. The top-up must
    wait for the real commit (at the savepoint it waited 30 s on its own transaction's write
    lock, failed with "database is locked", and never ran)."""
    from workroom_app.generation import jobs

    with at(T0):
        acct = subscriber(engine)  # 850
        turn_on(engine, acct, threshold=848)
        with write_session(engine) as s:
            jobs.submit(
                s,
                acct,
                {
                    "feature": "image",
                    "model": "flux_pro",
                    "resolution": "1K",
                    "count": "1",
                    "prompt": "x",
                },
                client_request_id="below-threshold",
            )
    assert balance(engine, acct) == 850 - 4 + 500
    assert len(top_up_invoices(engine, acct)) == 1
