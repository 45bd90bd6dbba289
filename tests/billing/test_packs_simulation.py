"""A seeded 12-month simulation with credit packs: accounts
subscribe, buy packs (sometimes twice with one click), turn auto top-up on,
spend, get refunds, downgrade, have cards declined, pay past-due renewals now,
and expire. Afterwards `workroom ledger check` is clean, every paid pack is
matched by exactly one Credit pack grant (and no failed one by any), pack
grants are never burned, and auto top-ups never exceed a month's cap."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from tests.support.subscriptions import DECLINED, FAILS_ON_CHARGE, VISA, sign_up
from workroom_app.billing import alerts, auto_top_up, clock, ledger, packs, subscriptions
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.billing.subscriptions import SubscriptionError
from workroom_app.db import read_session, write_session
from workroom_app.models import ActionType, CreditGrant, GrantSource, Invoice, LedgerEntry

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PACKS = ["credits_500", "credits_2000", "credits_6000"]
PAID = ["starter", "pro", "studio"]


def _w(engine, fn):
    with write_session(engine) as s:
        return fn(s)


def _act(engine, rng: random.Random, acct: int, step: int, log: Counter) -> None:
    with read_session(engine) as s:
        sub = subscriptions.live_subscription(s, acct)
        has_card = subscriptions.default_card(s, acct) is not None
    roll = rng.random()
    try:
        if roll < 0.40:
            amount = rng.choice([1, 40, 120, 400, 900, 2000])
            with write_session(engine) as s:
                try:
                    res = ledger.debit(
                        s, acct, amount, feature="image", idempotency_key=f"gen:{acct}:{step}"
                    )
                except ledger.InsufficientCredits:
                    log["debit_refused"] += 1
                    return
            log["debit"] += 1
            if rng.random() < 0.15:
                _w(
                    engine,
                    lambda s: ledger.refund(
                        s, res.entry_id, idempotency_key=f"refund:{res.entry_id}"
                    ),
                )
                log["refund"] += 1
        elif roll < 0.45:
            key = rng.choice(PACKS)
            with read_session(engine) as s:
                preview = packs.preview(s, acct, key)
            card = None if has_card and rng.random() < 0.5 else rng.choice([VISA, VISA, DECLINED])
            clicks = 2 if rng.random() < 0.3 else 1
            outs = [
                _w(engine, lambda s: packs.buy(s, acct, key, card=card, expected_preview=preview))
                for _ in range(clicks)
            ]
            log["pack_ok" if outs[0].ok else "pack_declined"] += 1
            if clicks == 2:
                assert outs[1].replayed
        elif roll < 0.52:
            if sub is None:
                out = _w(
                    engine, lambda s: subscriptions.subscribe(s, acct, rng.choice(PAID), card=VISA)
                )
                log["subscribe"] += out.ok
            elif sub.status == "active" and sub.plan_key != "starter":
                target = PAID[PAID.index(sub.plan_key) - 1]
                with read_session(engine) as s:
                    preview = subscriptions.preview_change(s, acct, target)
                out = _w(
                    engine,
                    lambda s: subscriptions.change_plan(s, acct, target, expected_preview=preview),
                )
                log["downgrade_ok" if out.ok else "downgrade_declined"] += 1
        elif roll < 0.57 and has_card:
            _w(
                engine,
                lambda s: auto_top_up.save_settings(
                    s,
                    acct,
                    enabled=True,
                    threshold=rng.choice([50, 200, 1000]),
                    pack_key=rng.choice(PACKS),
                    monthly_cap=rng.choice([1, 2, 3]),
                ),
            )
            log["auto_on"] += 1
        elif roll < 0.62:
            card = FAILS_ON_CHARGE if rng.random() < 0.4 else VISA
            _w(engine, lambda s: subscriptions.save_card(s, acct, card))
            log["card_fails" if card is FAILS_ON_CHARGE else "card_ok"] += 1
        elif roll < 0.66 and sub is not None and sub.status == "past_due":
            out = _w(engine, lambda s: subscriptions.pay_now(s, acct))
            log["pay_now_ok" if out.ok else "pay_now_declined"] += 1
        elif roll < 0.68:
            _w(engine, lambda s: subscriptions.cancel(s, acct))
            log["cancel"] += 1
    except (SubscriptionError, alerts.AlertError):
        log["refused"] += 1


@pytest.mark.slow  # twelve months of accounts
def test_twelve_months_with_packs_top_ups_declines_and_downgrades(engine):
    rng = random.Random(20261130)
    log: Counter = Counter()
    with clock.pinned(START):
        accounts = [sign_up(engine, f"packsim{i}@example.com") for i in range(5)]
    for step in range(365):
        moment = START + timedelta(days=step, hours=rng.randint(0, 12))
        with clock.pinned(moment):
            assert subscriptions.renew_due(engine).errors == {}
            with write_session(engine) as s:
                ledger.expire_due(s)
                alerts.expiring_soon(s)
            for acct in accounts:
                if rng.random() < 0.6:
                    _act(engine, rng, acct, step, log)
    # The simulation did exercise what it claims to.
    for what in ("pack_ok", "pack_declined", "debit", "auto_on", "downgrade_ok", "card_fails"):
        assert log[what] > 0, (what, log)

    with read_session(engine) as s:
        assert check_ledger(s) == []
        pack_invoices = s.exec(select(Invoice).where(Invoice.kind == "pack")).all()
        pack_rows = s.exec(
            select(LedgerEntry).where(LedgerEntry.action_type == ActionType.CREDIT_PACK.value)
        ).all()
        paid = {i.id for i in pack_invoices if i.status == "paid"}
        granted = [int(r.reference_id) for r in pack_rows]
        assert sorted(granted) == sorted(paid)  # every paid pack exactly once, no failed one
        assert any(i.idempotency_key.startswith(auto_top_up.KEY_PREFIX) for i in pack_invoices)
        # Pack grants are never burned: they only run out by spending or expire after 12 months.
        for g in s.exec(select(CreditGrant).where(CreditGrant.source == GrantSource.PACK.value)):
            if g.closed_at is not None:
                assert g.expires_at is not None and g.closed_at >= g.expires_at
        # Auto top-up never bought more than the largest cap in any calendar month.
        per_month = Counter(
            (i.account_id, i.created_at.strftime("%Y-%m"))
            for i in pack_invoices
            if i.status == "paid" and i.idempotency_key.startswith(auto_top_up.KEY_PREFIX)
        )
        assert max(per_month.values()) <= 3
        # Invoice numbers are gapless per account over the invoices that have one
        # (a failed attempt takes no number).
        for acct in accounts:
            seqs = sorted(
                i.seq
                for i in s.exec(select(Invoice).where(Invoice.account_id == acct))
                if i.seq is not None
            )
            assert seqs == list(range(1, len(seqs) + 1))
