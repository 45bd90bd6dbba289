"""One simulated day of one account for the 12-month simulations (tests/billing/test_simulation.py,
tests/billing/test_staff_metrics.py): subscribe, generate, upgrade, downgrade, cancel, resume,
with cards that sometimes decline; what happened is counted in `log`."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from tests.support.subscriptions import AMEX, DECLINED, FAILS_ON_CHARGE, VISA
from workroom_app.billing import ledger, subscriptions
from workroom_app.billing.subscriptions import SubscriptionError
from workroom_app.db import read_session, write_session

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PAID = ["starter", "pro", "studio"]


def act(engine, rng: random.Random, account_id: int, step: int, log: Counter) -> None:
    with read_session(engine) as s:
        sub = subscriptions.live_subscription(s, account_id)
    roll = rng.random()
    try:
        if sub is None:
            if roll < 0.3:
                card = rng.choice([VISA, VISA, AMEX, DECLINED])
                out = _w(
                    engine,
                    lambda s: subscriptions.subscribe(s, account_id, rng.choice(PAID), card=card),
                )
                log["subscribe_ok" if out.ok else "subscribe_declined"] += 1
            return
        if roll < 0.35:  # a generation
            amount = rng.choice([1, 4, 10, 40, 120, 600])
            with write_session(engine) as s:
                try:
                    res = ledger.debit(
                        s,
                        account_id,
                        amount,
                        feature="image",
                        idempotency_key=f"gen:{account_id}:{step}",
                    )
                except ledger.InsufficientCredits:
                    log["debit_refused"] += 1
                    return
            log["debit"] += 1
            if rng.random() < 0.2:
                with write_session(engine) as s:
                    ledger.refund(s, res.entry_id, idempotency_key=f"refund:{res.entry_id}")
                log["refund"] += 1
        elif roll < 0.45 and sub.status == "active":
            rank = PAID.index(sub.plan_key)
            target = rng.choice([p for p in PAID if p != sub.plan_key])
            with read_session(engine) as s:
                preview = subscriptions.preview_change(s, account_id, target)
            out = _w(
                engine,
                lambda s: subscriptions.change_plan(
                    s, account_id, target, expected_preview=preview
                ),
            )
            kind = "upgrade" if PAID.index(target) > rank else "downgrade"
            log[f"{kind}_{'ok' if out.ok else 'declined'}"] += 1
            if out.ok:
                assert out.amount_cents == preview.charge_cents
                assert out.credits_added == preview.credits_added
                assert out.credits_burned == preview.credits_burned
        elif roll < 0.50:
            _w(engine, lambda s: subscriptions.cancel(s, account_id))
            log["cancel"] += 1
        elif roll < 0.56:
            _w(engine, lambda s: subscriptions.resume(s, account_id))
            log["resume"] += 1
        elif roll < 0.62:
            card = FAILS_ON_CHARGE if rng.random() < 0.5 else VISA
            _w(engine, lambda s: subscriptions.save_card(s, account_id, card))
            log["card_fails" if card is FAILS_ON_CHARGE else "card_ok"] += 1
    except SubscriptionError:
        log["refused"] += 1


def _w(engine, fn):
    with write_session(engine) as s:
        return fn(s)
