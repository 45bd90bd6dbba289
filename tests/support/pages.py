"""The tabs the state tests drive, one per page family, and what those tests share: the pinned
"today" (NOW), the card the forms send, and users made at NOW. Built on tests/support/
reflex_events.py (the real event path) and tests/support/factories.py."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from PIL import Image
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.support import factories
from tests.support.factories import NOW, balance, invoices_of, login, make_user
from tests.support.factories import VISA_FORM as VISA
from tests.support.fixtures import BOTH_ENGINES
from tests.support.reflex_events import EventBrowser, redeem, ticket_in
from tests.support.reflex_events import run as run_events
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    Account,
    GenerationJob,
    Invoice,
    LedgerEntry,
    LocalCharge,
    PaymentMethod,
    Subscription,
)
from workroom_app.state.auth import AuthState
from workroom_app.state.session import SessionState
from workroom_app.state.staff import StaffState
from workroom_app.state.usage import UsageState

__all__ = [
    "BOTH_ENGINES",
    "NOW",
    "VISA",
    "GenerateTab",
    "LoginTab",
    "PlansTab",
    "StaffTab",
    "UsageTab",
    "balance",
    "invoices_of",
    "job_snapshot",
    "png_bytes",
    "make_user",
    "pick",
    "review",
    "runner",
    "snapshot",
    "subscribe",
    "user_with_rows",
    "video_form",
]


def runner(tab_cls: type[EventBrowser], now: datetime | None = None) -> Callable[[Any], None]:
    """`run(scenario)` for a test module: its tabs, with the clock pinned at `now`."""

    def run(scenario) -> None:  # noqa: ANN001
        run_events(tab_cls, scenario, now=now)

    return run


def subscribe(engine: Engine, account_id: int, plan: str) -> None:
    """Subscribe at NOW with a working card; the set-up of a test must succeed."""
    out = factories.subscribe(engine, account_id, plan, at=NOW)
    assert out.ok


def snapshot(engine: Engine, account_id: int) -> tuple:
    """Everything a money action could change for an account."""
    with read_session(engine) as s:
        subs = [
            (x.plan_key, x.status, x.cancel_at_period_end, x.current_period_end)
            for x in s.exec(select(Subscription).where(Subscription.account_id == account_id))
        ]
        inv = [
            (i.number, i.status, i.amount_cents)
            for i in s.exec(select(Invoice).where(Invoice.account_id == account_id))
        ]
        rows = [
            (e.action_type, e.amount)
            for e in s.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id))
        ]
        cards = [
            (c.brand, c.last4, c.removed_at)
            for c in s.exec(select(PaymentMethod).where(PaymentMethod.account_id == account_id))
        ]
        charges = len(list(s.exec(select(LocalCharge).where(LocalCharge.account_id == account_id))))
        return subs, inv, rows, cards, charges, ledger.balance(s, account_id)


class PlansTab(EventBrowser):
    """Plans, Checkout, Subscription, Buy credits: their handlers read the query themselves."""

    path = "/plans"
    query_in_path = False


class LoginTab(EventBrowser):
    """The log-in and sign-up pages, followed as the browser does."""

    path = "/login"

    async def submit_and_follow(self, handler: str, form: dict) -> str:
        """Send the log-in or sign-up form and, when it succeeds, do what the page's script
        does: POST the ticket, keep the HttpOnly cookie, open the app (guard). Returns the
        cookie ("" when the form was refused)."""
        sent = await self.send(AuthState, handler, form_data=form)
        ticket = ticket_in(sent)
        if ticket is None:
            return ""
        self.cookie = redeem(ticket)
        self.path = "/generate"
        await self.send(SessionState, "guard")
        return self.cookie


class StaffTab(EventBrowser):
    path = "/login"
    ascii_text = False

    async def state(self, cls=StaffState):
        return await super().state(cls)

    async def open_staff(self) -> str:
        return await self.open("/staff", StaffState)


async def review(tab: StaffTab, amount: Any, reason: Any = "Goodwill for ticket 42") -> str:
    return await tab.send(
        StaffState, "review_adjustment", form_data={"amount": amount, "reason": reason}
    )


async def pick(tab: StaffTab, email: str) -> None:
    await tab.send(StaffState, "search", form_data={"query": email})
    st = await tab.state()
    row = next(r for r in st.results if r["email"] == email)
    await tab.send(StaffState, "select_account", account_id=row["id"])


def user_with_rows(
    engine: Engine,
    email: str,
    tz: str = "UTC",
    rows: int = 0,
    start: datetime = NOW - timedelta(days=3),
) -> tuple[int, str]:
    """An account with a login token and `rows` ledger rows (bulk, 10 minutes apart, written
    directly: Usage reads rows, it does not care how they were made)."""
    with write_session(engine) as s:
        acc = Account(
            email=email, password_hash="x", timezone=tz, created_at=NOW - timedelta(days=90)
        )
        s.add(acc)
        s.flush()
        token = accounts.create_login(s, acc.id)
        account_id = acc.id
    if rows:
        kinds = [
            ("generation", "image", -5),
            ("generation", "video", -45),
            ("refund", "video", 45),
            ("monthly_credits", None, 1000),
            ("staff_adjustment", None, -1),
        ]
        bal = 10_000
        data = []
        for i in range(rows):
            action, feature, amount = kinds[i % len(kinds)]
            bal += amount
            data.append(
                {
                    "account_id": account_id,
                    "action_type": action,
                    "feature": feature,
                    "amount": amount,
                    "balance_after": bal,
                    "idempotency_key": f"{email}:{i}",
                    "created_at": start + timedelta(minutes=10 * i),
                }
            )
        with write_session(engine) as s:
            s.connection().execute(insert(LedgerEntry.__table__), data)
    return account_id, token


class UsageTab(EventBrowser):
    path = "/usage"

    async def sign_in(self, login_token: str) -> None:
        await super().sign_in(login_token)
        await self.send(UsageState, "load")


class GenerateTab(EventBrowser):
    path = "/generate"

    async def log_in(self, email: str) -> None:
        """Sign the tab in the way the browser ends up after the log-in page: the login cookie
        (a server-side session token), resolved by the guard."""
        token = login(None, email)
        # A brand-new tab's first event hydrates it and runs the page's on_load (signed out here,
        # so no live loop starts that wait_all would wait for); then the browser's connection
        # carries the HttpOnly login cookie.
        await self.send(SessionState, "refresh_balance")
        await self.sign_in(token)
        assert (await self.state(SessionState))._account_id is not None


def job_snapshot(engine: Engine, account_id: int) -> tuple[int, int, int]:
    """(balance, job rows, ledger rows) of an account: what a refused call must not change."""
    with read_session(engine) as s:
        return (
            ledger.balance(s, account_id),
            len(s.exec(select(GenerationJob).where(GenerationJob.account_id == account_id)).all()),
            len(s.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()),
        )


def video_form(**over: str | None) -> dict[str, str]:
    form = {
        "feature": "video",
        "model": "seedance_lite",
        "resolution": "720p",
        "duration": "5",
        "prompt": "a lighthouse at dusk",
        "request_id": f"web-{uuid.uuid4()}",
        "shown_cost": "20",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 50, 50)).save(out, format="PNG")
    return out.getvalue()
