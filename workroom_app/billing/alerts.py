"""Alerts: in the app (a badge by the balance, a toast the first time a page
sees it) and by email (through the outbox), each kind with its own
unsubscribe setting (the email stops; the in-app alert stays).

Rules, in the words the UI uses (README "Decisions"):
- Low balance: "We tell you when your balance falls below your alert
  threshold (10% of your plan's monthly credits unless you choose another),
  once each time it crosses." A crossing is the debit that took the balance
  from at or above the threshold to below it; it is found after that debit
  commits (billing/balance_watch.py), never inside it.
- Credits expiring: "N credits expire on DATE", 7 days and 1 day before, for
  plan credits and packs alike (one alert per expiry date and window).
- Payment failed: the reason, the next retry date and a link to replace the card.
- Plan ended: back to Free (credits from packs stay).

Every alert has a dedupe key naming its event, so running a check twice, or
two workers at once, alerts once. Nothing here commits, except the
after-commit watcher and the scheduled scan, which open their own transactions.

The settings (thresholds, email switches) and the watcher's in-memory copy of them are in
billing/alert_settings.py; their names stay importable from here.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session

from workroom_app.billing import balance_watch, clock, formatting, receipts
from workroom_app.billing.alert_settings import (
    DEFAULT_LOW_BALANCE_PERCENT as DEFAULT_LOW_BALANCE_PERCENT,
)
from workroom_app.billing.alert_settings import DEFAULTS as DEFAULTS
from workroom_app.billing.alert_settings import EMAIL_SETTING as EMAIL_SETTING
from workroom_app.billing.alert_settings import MAX_THRESHOLD as MAX_THRESHOLD
from workroom_app.billing.alert_settings import WATCH_TTL_SECONDS as WATCH_TTL_SECONDS
from workroom_app.billing.alert_settings import AlertError as AlertError
from workroom_app.billing.alert_settings import Settings as Settings
from workroom_app.billing.alert_settings import Watch as Watch
from workroom_app.billing.alert_settings import _upsert as _upsert
from workroom_app.billing.alert_settings import check_whole as check_whole
from workroom_app.billing.alert_settings import (
    default_low_balance_threshold as default_low_balance_threshold,
)
from workroom_app.billing.alert_settings import forget as forget
from workroom_app.billing.alert_settings import forget_everything as forget_everything
from workroom_app.billing.alert_settings import low_balance_threshold as low_balance_threshold
from workroom_app.billing.alert_settings import read_settings as read_settings
from workroom_app.billing.alert_settings import save_alert_settings as save_alert_settings
from workroom_app.billing.alert_settings import unsubscribe as unsubscribe
from workroom_app.billing.alert_settings import watch_for as watch_for
from workroom_app.db import write_session
from workroom_app.models import (
    Account,
    AccountAlert,
    AlertKind,
    CreditGrant,
    OutboxEmail,
)
from workroom_app.routes import (
    CREDITS_ROUTE,
    PLANS_ROUTE,
    SUBSCRIPTION_ALERTS_ANCHOR,
    SUBSCRIPTION_ROUTE,
    USAGE_ROUTE,
)
from workroom_app.settings import get_settings

log = logging.getLogger(__name__)

EXPIRY_NOTICE_DAYS = (7, 1)
EXPIRY_SCAN_EVERY_SECONDS = 600.0

# The pages an alert links to.
SUBSCRIPTION_LINK = SUBSCRIPTION_ROUTE
CREDITS_LINK = CREDITS_ROUTE
USAGE_LINK = USAGE_ROUTE
PLANS_LINK = PLANS_ROUTE


_A = AccountAlert.__table__
_O = OutboxEmail.__table__
_G = CreditGrant.__table__


# ----------------------------------------------------------------- formatting


def date_text(value: date | datetime) -> str:
    """The one date format (billing/formatting.py); a datetime's day is taken in the zone
    it carries (callers move it into the account's zone first)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.date()
    return formatting.format_date(value)


def credits_noun(n: int) -> str:
    return f"{n:,} credit" if n == 1 else f"{n:,} credits"


def expiring_text(credits: int, on: date) -> str:
    """ "500 credits expire on December 24, 2026" (the same words everywhere)."""
    verb = "expires" if credits == 1 else "expire"
    return f"{credits_noun(credits)} {verb} on {date_text(on)}"


def _zone(session: Session, account_id: int) -> ZoneInfo:
    name = (
        session.connection()
        .execute(select(Account.__table__.c.timezone).where(Account.__table__.c.id == account_id))
        .scalar()
    )
    try:
        return ZoneInfo(name or "UTC")
    except Exception:  # noqa: BLE001  (a bad stored zone shows UTC rather than failing)
        return ZoneInfo("UTC")


# ----------------------------------------------------------------- recording an alert


@functools.lru_cache(maxsize=4)
def _insert_alert(dialect: str) -> ReturningInsert[int]:
    fn = pg_insert if dialect == "postgresql" else sqlite_insert
    return fn(_A).on_conflict_do_nothing(index_elements=[_A.c.dedupe_key]).returning(_A.c.id)


def notify(
    session: Session,
    account_id: int,
    kind: AlertKind | str,
    *,
    title: str,
    body: str,
    dedupe_key: str,
    link: str | None = None,
    settings: Settings | None = None,
    send_email: bool = True,
) -> int | None:
    """Record an alert once per dedupe key, and queue its email unless the user
    unsubscribed from that kind. Returns the new alert's id, None if it existed."""
    kind = AlertKind(kind).value
    conn = session.connection()
    now = clock.now()
    new_id = conn.execute(
        _insert_alert(conn.dialect.name),
        {
            "account_id": account_id,
            "kind": kind,
            "title": title[:200],
            "body": body,
            "link": link,
            "dedupe_key": dedupe_key[:200],
            "created_at": now,
            "toasted_at": None,
            "read_at": None,
        },
    ).scalar()
    if new_id is None:
        return None
    settings = settings or read_settings(session, account_id)
    email = conn.execute(
        select(Account.__table__.c.email).where(Account.__table__.c.id == account_id)
    ).scalar()
    if email and send_email and settings.emails(kind):
        base = get_settings().public_url.rstrip("/")
        lines = [body, ""]
        if link:
            lines.append(f"{base}{link}")
            lines.append("")
        if kind in EMAIL_SETTING:
            # It builds on this module: a top-level import would be a cycle.
            from workroom_app.billing import unsubscribe  # noqa: PLC0415

            lines.append(
                f"Stop these emails with one click: {unsubscribe.link(account_id, kind, session)}"
            )
            lines.append(
                f"Or turn them off under Subscription > Alerts: {base}{SUBSCRIPTION_ALERTS_ANCHOR}"
            )
        lines.append("Workroom")
        conn.execute(
            receipts.insert_ignoring_duplicate(conn.dialect.name),
            {
                "account_id": account_id,
                "to_address": email,
                "subject": title,
                "body_text": "\n".join(lines),
                "attachment_name": None,
                "attachment": None,
                "invoice_id": None,
                "dedupe_key": f"alert:{dedupe_key}"[:200],
                "status": "pending",
                "attempts": 0,
                "created_at": now,
            },
        )
    return int(new_id)


# ----------------------------------------------------------------- the four alerts


def low_balance(
    session: Session, debit: balance_watch.Debit, threshold: int, settings: Settings
) -> int | None:
    return notify(
        session,
        debit.account_id,
        AlertKind.LOW_BALANCE,
        title="Your balance is low",
        body=(
            f"Your balance is {credits_noun(debit.balance_after)}, below your alert threshold of "
            f"{credits_noun(threshold)}. Buy credits or upgrade to keep generating."
        ),
        link=CREDITS_LINK,
        dedupe_key=f"low_balance:{debit.account_id}:{debit.entry_id}",
        settings=settings,
    )


def payment_failed(
    session: Session,
    account_id: int,
    *,
    invoice_id: int,
    plan_name: str,
    amount_text: str,
    reason: str,
    next_retry_at: datetime | None,
) -> int | None:
    retry = (
        f" We'll try again on {date_text(next_retry_at.astimezone(_zone(session, account_id)))}."
        if next_retry_at is not None
        else ""
    )
    return notify(
        session,
        account_id,
        AlertKind.PAYMENT_FAILED,
        title="Your payment failed",
        body=(
            f"Your {plan_name} renewal payment of {amount_text} failed: {reason}{retry} "
            "Replace your card on the Subscription page and pay now to keep your plan."
        ),
        link=SUBSCRIPTION_LINK,
        dedupe_key=f"payment_failed:{invoice_id}",
    )


def plan_ended(
    session: Session, account_id: int, *, subscription_id: int, plan_name: str
) -> int | None:
    return notify(
        session,
        account_id,
        AlertKind.PLAN_ENDED,
        title="Your plan has ended",
        body=(
            f"Your {plan_name} plan has ended and you're back on Free. Credits from packs stay "
            "in your balance. Subscribe again any time from the Plans page."
        ),
        link=PLANS_LINK,
        dedupe_key=f"plan_ended:{subscription_id}",
    )


def expiring_soon(session: Session, *, now: datetime | None = None) -> int:
    """Alert "N credits expire on DATE" 7 days and 1 day before, for every
    account with live credits expiring within 7 days. Returns alerts written."""
    now = now or clock.now()
    horizon = now + timedelta(days=max(EXPIRY_NOTICE_DAYS))
    rows = (
        session.connection()
        .execute(
            select(_G.c.account_id, _G.c.expires_at, func.sum(_G.c.amount_left))
            .where(
                _G.c.amount_left > 0,
                _G.c.closed_at.is_(None),
                _G.c.expires_at.is_not(None),
                _G.c.expires_at > now,
                _G.c.expires_at <= horizon,
            )
            .group_by(_G.c.account_id, _G.c.expires_at)
            .order_by(_G.c.account_id, _G.c.expires_at)
        )
        .all()
    )
    # Credits expiring the same local day are one notice.
    per_day: dict[tuple[int, date], tuple[int, datetime]] = {}
    zones: dict[int, ZoneInfo] = {}
    for account_id, expires_at, credits in rows:
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=ZoneInfo("UTC"))
        zone = zones.get(account_id) or zones.setdefault(account_id, _zone(session, account_id))
        day = expires_at.astimezone(zone).date()
        total, first = per_day.get((account_id, day), (0, expires_at))
        per_day[(account_id, day)] = (total + int(credits), min(first, expires_at))
    written = 0
    for (account_id, day), (credits, first) in per_day.items():
        window = min(d for d in EXPIRY_NOTICE_DAYS if first - now <= timedelta(days=d))
        text = expiring_text(credits, day)
        made = notify(
            session,
            account_id,
            AlertKind.CREDITS_EXPIRING,
            title=text,
            body=f"{text}. Spend them before then: credits that expire are gone.",
            link=USAGE_LINK,
            dedupe_key=f"expiring:{account_id}:{day.isoformat()}:{window}d",
        )
        written += made is not None
    return written


_scan_lock = threading.Lock()
_last_scan = [float("-inf")]


def scheduled_scan(engine: Engine, *, force: bool = False) -> int:
    """The worker's periodic expiry scan (every EXPIRY_SCAN_EVERY_SECONDS)."""
    with _scan_lock:
        if not force and time.monotonic() - _last_scan[0] < EXPIRY_SCAN_EVERY_SECONDS:
            return 0
        _last_scan[0] = time.monotonic()
    with write_session(engine) as session:
        return expiring_soon(session)


# ----------------------------------------------------------------- reading (the header)


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    unread: bool
    toast: bool  # not shown as a toast yet


def recent(session: Session, account_id: int, limit: int = 10) -> tuple[list[AlertView], int]:
    """(the newest alerts, how many are unread)."""
    conn = session.connection()
    rows = conn.execute(
        select(
            _A.c.id,
            _A.c.kind,
            _A.c.title,
            _A.c.body,
            _A.c.link,
            _A.c.created_at,
            _A.c.read_at,
            _A.c.toasted_at,
        )
        .where(_A.c.account_id == account_id)
        .order_by(_A.c.id.desc())
        .limit(limit)
    ).all()
    unread = conn.execute(
        select(func.count())
        .select_from(_A)
        .where(_A.c.account_id == account_id, _A.c.read_at.is_(None))
    ).scalar_one()
    return [
        AlertView(
            r.id,
            r.kind,
            r.title,
            r.body,
            r.link,
            r.created_at,
            r.read_at is None,
            r.toasted_at is None,
        )
        for r in rows
    ], int(unread)


def mark_toasted(session: Session, account_id: int, alert_ids: list[int]) -> set[int]:
    """Mark alerts as shown; returns the ids this call marked (two tabs at once: one toasts each)."""
    if not alert_ids:
        return set()
    return set(
        session.connection()
        .execute(
            update(_A)
            .where(_A.c.account_id == account_id, _A.c.id.in_(alert_ids), _A.c.toasted_at.is_(None))
            .values(toasted_at=clock.now())
            .returning(_A.c.id)
        )
        .scalars()
    )


def mark_all_read(session: Session, account_id: int) -> None:
    session.connection().execute(
        update(_A)
        .where(_A.c.account_id == account_id, _A.c.read_at.is_(None))
        .values(read_at=clock.now())
    )


# ----------------------------------------------------------------- the after-commit watcher


def _on_debits(engine: Engine, debits: list[balance_watch.Debit]) -> None:
    """The one after-commit check: one in-memory lookup per debit, then, only
    for a debit that crossed a threshold, the low-balance alert and/or the
    auto top-up (each in its own transaction)."""
    for debit in debits:
        watch = watch_for(engine, debit.account_id)
        if debit.crossed_below(watch.low_balance_threshold):
            with write_session(engine) as session:
                low_balance(session, debit, watch.low_balance_threshold, watch.settings)
        if watch.settings.auto_top_up and debit.crossed_below(watch.settings.top_up_threshold):
            # auto_top_up builds on this module (its settings, AlertError): a top-level import
            # would be a cycle.
            from workroom_app.billing import auto_top_up  # noqa: PLC0415

            auto_top_up.after_crossing(engine, debit)


balance_watch.register(_on_debits)
