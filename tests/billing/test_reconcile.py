"""Reconciliation (billing/reconcile.py, `workroom reconcile`): clean data
reports nothing on either gateway; each kind of mismatch planted in the data
is found."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from tests.support.fixtures import serve_database
from tests.support.stripe_world import T0 as STRIPE_T0
from tests.support.stripe_world import make_world
from tests.support.subscriptions import (
    FAILS_ON_CHARGE,
    T0,
    at,
    change,
    invoices_of,
    renew_due,
    sign_up,
    subscribe,
)
from workroom_app.billing import clock, invoices, ledger
from workroom_app.billing.reconcile import reconcile
from workroom_app.cli.main import main as cli
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, GrantSource, LocalCharge, WebhookEvent


def _report(engine, since=None):
    with read_session(engine) as s:
        return reconcile(s, since=since)


def _clean_local_history(engine) -> list[int]:
    """Subscriptions, a renewal, an upgrade, a downgrade, a failed payment."""
    with at(T0):
        a, b, c = sign_up(engine), sign_up(engine), sign_up(engine)
        subscribe(engine, a, "starter")
        subscribe(engine, b, "studio")
        subscribe(engine, c, "starter", card=FAILS_ON_CHARGE)
    with at(T0 + timedelta(days=2)):
        change(engine, a, "pro")
        change(engine, b, "starter")
    with at(T0 + timedelta(days=40)):
        renew_due(engine)
    return [a, b, c]


def test_clean_local_data_reconciles(engine):
    _clean_local_history(engine)
    report = _report(engine)
    assert report.problems == []
    assert report.ok and report.payments_checked == report.payments_matched >= 5
    assert set(report.by_gateway) == {"local"}


def test_clean_stripe_data_reconciles(engine):
    with clock.pinned(STRIPE_T0):
        w = make_world(engine)
        user = w.sign_up("s@example.com")
        w.checkout(user, "pro")
        w.deliver_pending()
    report = _report(engine)
    assert report.problems == [] and report.by_gateway == {"stripe": 1}


def test_every_planted_mismatch_is_found(engine, monkeypatch):
    a, b, c = _clean_local_history(engine)
    paid = [i for i in invoices_of(engine, a) if i.status == "paid"]
    failed = [i for i in invoices_of(engine, c) if i.status == "failed"][0]
    with at(T0 + timedelta(days=41)), write_session(engine) as s:
        # Paid (a charge and an invoice) but no credits granted.
        s.add(
            LocalCharge(
                idempotency_key="plant-1",
                account_id=b,
                card_token="tok",
                amount_cents=1000,
                currency="usd",
                ok=True,
                gateway_ref="ch_planted_1",
                created_at=clock.now(),
            )
        )
        s.flush()
        lonely, _ = invoices.create_invoice(
            s,
            b,
            kind="renewal",
            status="paid",
            amount_cents=1000,
            idempotency_key="plant-inv-1",
            lines=[invoices.LineItem("Planted", 1000)],
            gateway="local",
            gateway_ref="ch_planted_1",
        )
        # Granted twice for one payment.
        ledger.grant(
            s,
            a,
            10,
            action_type=ActionType.MONTHLY_CREDITS,
            source=GrantSource.MONTHLY,
            idempotency_key="plant-twice",
            reference_type="invoice",
            reference_id=str(paid[0].id),
        )
        # Granted on a failed payment, and a plan grant naming no payment at all.
        ledger.grant(
            s,
            c,
            800,
            action_type=ActionType.SUBSCRIPTION_CREDITS,
            source=GrantSource.SUBSCRIPTION,
            idempotency_key="plant-failed",
            reference_type="invoice",
            reference_id=str(failed.id),
        )
        ledger.grant(
            s,
            c,
            5,
            action_type=ActionType.MONTHLY_CREDITS,
            source=GrantSource.MONTHLY,
            idempotency_key="plant-orphan",
        )
        # The charge differs from the invoice.
        s.execute(
            update(LocalCharge)
            .where(LocalCharge.gateway_ref == paid[-1].gateway_ref)
            .values(amount_cents=1)
        )
        # Money taken with no invoice.
        s.add(
            LocalCharge(
                idempotency_key="plant-2",
                account_id=a,
                card_token="tok",
                amount_cents=500,
                currency="usd",
                ok=True,
                gateway_ref="ch_planted_2",
                created_at=clock.now(),
            )
        )
        # Stripe events that failed or were never processed.
        s.add(
            WebhookEvent(
                id="evt_failed",
                type="invoice.paid",
                payload="{}",
                received_at=clock.now(),
                processed_at=clock.now(),
                outcome="failed",
                error="boom",
            )
        )
        s.add(
            WebhookEvent(id="evt_stuck", type="invoice.paid", payload="{}", received_at=clock.now())
        )
    report = _report(engine)
    kinds = report.counts()
    assert kinds == {
        "paid_not_granted": 1,
        "granted_twice": 1,
        "grant_without_payment": 2,
        "amount_mismatch": 1,
        "charge_without_invoice": 1,
        "webhook_failed": 1,
        "webhook_unprocessed": 1,
    }, report.problems
    assert any(p.invoice_id == lonely.id for p in report.problems if p.kind == "paid_not_granted")
    # The command: exit 1 and the same findings as JSON.
    serve_database(monkeypatch, engine)
    assert cli(["reconcile", "--json"]) == 1
    # --since after everything: nothing to check, nothing wrong.
    assert cli(["reconcile", "--since", "2030-01-01"]) == 0


def test_stripe_amount_mismatch_and_missing_payment_event_are_found(sqlite_engine):
    engine = sqlite_engine
    with clock.pinned(STRIPE_T0):
        w = make_world(engine)
        user = w.sign_up("s@example.com")
        w.checkout(user, "pro")
        w.deliver_pending()
    with write_session(engine) as s:
        for row in s.exec(
            select(WebhookEvent).where(
                WebhookEvent.type.in_(["invoice.paid", "invoice.payment_succeeded"])
            )
        ):
            payload = json.loads(row.payload)
            payload["data"]["object"]["amount_paid"] = 1
            # webhook_event is not append-only: the stored copy can be edited (this plants it).
            row.payload = json.dumps(payload)
            s.add(row)
    assert _report(engine).counts() == {"amount_mismatch": 1}


def test_cli_clean_exit_zero(sqlite_engine, monkeypatch, capsys):
    _clean_local_history(sqlite_engine)
    serve_database(monkeypatch, sqlite_engine)
    assert cli(["reconcile", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["problems"] == []
    assert cli(["reconcile", "--since", "not-a-date"]) == 2
