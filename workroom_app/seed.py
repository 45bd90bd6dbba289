"""Demo data for `make run` / `workroom seed-demo`. Idempotent: it creates only
what is missing, so running it twice changes nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app.billing import accounts
from workroom_app.models import Account, Role

DEMO_URL = "http://localhost:3000"


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    display_name: str
    role: str
    note: str


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("demo@workroom.test", "workroom-demo", "Demo User", Role.USER,
              "Pro plan with a few months of history"),
    DemoLogin("free@workroom.test", "workroom-demo", "Free User", Role.USER,
              "trial credits only"),
    DemoLogin("staff@workroom.test", "workroom-staff", "Staff Member", Role.ADMIN, "staff role (admin)"),
)
DEMO_EMAIL = DEMO_LOGINS[0].email


def ensure_account(session: Session, login: DemoLogin) -> tuple[Account, bool]:
    """The demo account, created (with its trial) if missing. Returns (account, created)."""
    account = accounts.find_account(session, login.email)
    if account is not None:
        return account, False
    account = accounts.sign_up(
        session, login.email, login.password, login.display_name, role=login.role
    )
    return account, True


# What the demo user generated each month: (day of the period, hour, request).
_DEMO_MONTH = (
    (1, 11, {"feature": "image", "model": "flux_pro", "resolution": "2K", "count": 2}),
    (4, 16, {"feature": "video", "model": "kling21", "resolution": "1080p", "duration": 5}),
    (9, 10, {"feature": "voiceover", "model": "expressive", "text": "x" * 450}),
    (15, 14, {"feature": "lip_sync", "model": "standard", "resolution": "720p", "duration": 8}),
    (22, 9, {"feature": "image", "model": "imagen4", "resolution": "1K", "count": 4}),
)
DEMO_HISTORY_MONTHS = 3


def demo_history_start(now):
    """When the demo user subscribed: about three months before `now`."""
    from datetime import timedelta

    from workroom_app.billing import periods

    start = periods.add_months(now, -DEMO_HISTORY_MONTHS, now.day) - timedelta(days=4)
    return start.replace(hour=10, minute=12, second=0, microsecond=0)


def seed_demo_history(session: Session, account: Account) -> None:
    """The demo user's history: subscribed to Pro about three months ago with a
    saved Visa 4242, every monthly renewal paid, a few generations each month
    and one refunded (a failed generation), so Usage and Payment History look
    real.

    Everything goes through the real engine (subscriptions, ledger) with the
    clock pinned to each past moment, so the rows are exactly what the product
    would have written. Idempotent: an account with any subscription is left
    alone.
    """
    from datetime import timedelta

    from sqlmodel import select

    from workroom_app.billing import catalog, clock, ledger, periods, subscriptions
    from workroom_app.models import Subscription

    if session.exec(select(Subscription.id).where(Subscription.account_id == account.id)).first():
        return
    now = clock.now()
    start = demo_history_start(now)
    card = subscriptions.CardForm("4242 4242 4242 4242", 12, now.year + 3, "123", account.display_name)
    with clock.pinned(start):
        outcome = subscriptions.subscribe(session, account.id, "pro", card=card)
    if not outcome.ok:
        return
    refunded = False
    for _ in range(DEMO_HISTORY_MONTHS + 2):
        sub = session.get(Subscription, outcome.subscription_id, populate_existing=True)
        period_start = periods.as_utc(sub.current_period_start)
        period_end = periods.as_utc(sub.current_period_end)
        for day, hour, request in _DEMO_MONTH:
            moment = (period_start + timedelta(days=day)).replace(hour=hour, minute=7)
            if moment >= min(period_end, now):
                continue
            quote = catalog.quote(request, sub.plan_key)
            if quote.cost <= 0:
                continue
            with clock.pinned(moment):
                debit = ledger.debit(
                    session, account.id, quote.cost, feature=request["feature"],
                    idempotency_key=f"demo:{account.id}:{moment.isoformat()}",
                )
            if not refunded and request["feature"] == "video":
                # The demo's one failed generation: its credits came back.
                with clock.pinned(moment + timedelta(minutes=3)):
                    ledger.refund(session, debit.entry_id, idempotency_key=f"demo-refund:{debit.entry_id}")
                refunded = True
        if period_end > now:
            break
        with clock.pinned(period_end):
            subscriptions.renew(session, sub.id, now=period_end)


def seed_demo(engine: Engine) -> list[str]:
    """Create the demo accounts that are missing; returns a line per action taken."""
    from workroom_app.db import write_session

    done: list[str] = []
    for login in DEMO_LOGINS:
        with write_session(engine) as session:
            if login.email == DEMO_EMAIL:
                # The demo user signed up (and got the trial) an hour before the
                # history starts, so Usage reads in time order.
                from datetime import timedelta

                from workroom_app.billing import clock

                with clock.pinned(demo_history_start(clock.now()) - timedelta(hours=1)):
                    account, created = ensure_account(session, login)
            else:
                account, created = ensure_account(session, login)
            if created:
                done.append(f"created {login.email}")
            if login.email == DEMO_EMAIL:
                seed_demo_history(session, account)
    return done


def demo_logins_text(url: str = DEMO_URL) -> str:
    lines = [f"Workroom is at {url}", "Demo logins:"]
    for login in DEMO_LOGINS:
        lines.append(f"  {login.email:<22} {login.password:<16} ({login.note})")
    return "\n".join(lines)
