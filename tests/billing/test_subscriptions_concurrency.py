"""Two Upgrade clicks at once charge once."""

from __future__ import annotations

from sqlmodel import select

from tests.support.concurrency import at_once
from tests.support.subscriptions import T0, balance, entries, preview, sign_up, subscribe
from workroom_app.billing import clock, subscriptions
from workroom_app.billing.subscriptions import SamePlan
from workroom_app.db import read_session, write_session
from workroom_app.models import Invoice, LocalCharge


def _race(engine, n, work):
    def run(_i):
        clock.set_pinned(T0)  # the pin is process-wide; harmless to repeat
        with write_session(engine) as s:
            return work(s)

    return at_once(n, run)


def _charges(engine):
    with read_session(engine) as s:
        return s.exec(select(LocalCharge)).all()


def test_two_upgrade_clicks_with_the_same_confirmation_charge_once(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "pro")
        p = preview(engine, a, "studio")
    results = _race(
        engine, 4, lambda s: subscriptions.change_plan(s, a, "studio", expected_preview=p)
    )
    assert all(r.ok for r in results), results
    assert sum(not r.replayed for r in results) == 1
    upgrades = [c for c in _charges(engine) if c.amount_cents == 5000]
    assert len(upgrades) == 1
    with read_session(engine) as s:
        assert len(s.exec(select(Invoice).where(Invoice.kind == "upgrade")).all()) == 1
    assert entries(engine, a).count(("plan_change", 6000)) == 1
    assert balance(engine, a) == 50 + 9000


def test_two_different_upgrade_requests_at_once_charge_once(engine):
    with clock.pinned(T0):
        a = sign_up(engine)
        subscribe(engine, a, "starter")
    results = _race(engine, 2, lambda s: subscriptions.change_plan(s, a, "studio"))
    oks = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(oks) == 1 and oks[0].ok
    assert len(errors) == 1 and isinstance(errors[0], SamePlan)
    assert len([c for c in _charges(engine) if c.amount_cents == 7000]) == 1
    assert balance(engine, a) == 50 + 9000
