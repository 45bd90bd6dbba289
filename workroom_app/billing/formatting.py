"""Dates and date-times as people read them: one format for each, in the
reader's time zone, everywhere (pages, the CSV, invoice PDFs, emails).

    date       "Jan 31, 2026"
    date-time  "Jan 31, 2026, 14:05"   (24-hour clock, in the reader's zone)
    stamp      "2026-01-31 14:05"      (operators: the `workroom` command and reconciliation
                                        findings; sortable, always UTC)
    money      "$1,234.50", "-$4.00", "12.00 EUR"   (format_money: exact, from cents)

Formatting goes through Babel (CLDR patterns, English month names whatever the
server's locale is). The zone is the account's (`Account.timezone`, an IANA
name). The app learns it from the browser: the shell sends
`Intl.DateTimeFormat().resolvedOptions().timeZone` once a page is shown
(state/timezone.py) and it is stored when it differs; until then, and for any
name that is not a known zone, it is UTC. Every place that shows a time also
names the zone once (the Usage page's note, the CSV's date column header, the
PDF's "Dates in" line, the receipt's last line), so a time is never ambiguous.

Plain Python (no Reflex), so billing code, states, HTTP routes and the CLI
share it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from workroom_app.models import Account

LOCALE = "en_US"
DATE_PATTERN = "MMM d, y"
DATETIME_PATTERN = "MMM d, y, HH:mm"
# Chart ticks: the date pattern without the year (the chart spans 30 days).
DAY_PATTERN = "MMM d"
STAMP_FORMAT = "%Y-%m-%d %H:%M"
DEFAULT_ZONE = "UTC"
EMPTY = "—"
_MAX_ZONE_NAME = 64  # Account.timezone's column width

__all__ = [
    "DATE_PATTERN",
    "DATETIME_PATTERN",
    "account_zone",
    "format_date",
    "format_datetime",
    "format_day",
    "format_money",
    "format_stamp",
    "known_zone_name",
    "store_account_zone",
    "zone",
]


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {DEFAULT_ZONE}


def known_zone_name(name: object) -> str | None:
    """`name` if it is an IANA zone this server knows, else None.

    The list of known zones is the gate: ZoneInfo alone also accepts
    file-system-like keys, and the name may come from a browser."""
    if not isinstance(name, str):
        return None
    name = name.strip()
    if not name or len(name) > _MAX_ZONE_NAME or name not in _known_zones():
        return None
    return name


def zone(name: object) -> ZoneInfo:
    """The ZoneInfo for a stored or received name; UTC for anything unusable,
    so a bad setting shows times in UTC instead of breaking a page."""
    if isinstance(name, ZoneInfo):
        return name
    known = known_zone_name(name)
    try:
        return ZoneInfo(known or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - listed but unloadable
        return ZoneInfo(DEFAULT_ZONE)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def format_date(value: date | datetime | None, tz: ZoneInfo | str | None = None) -> str:
    """ "Jan 31, 2026". A datetime is first moved into `tz` (the reader's zone),
    so its day is the reader's day; a plain date is shown as it is."""
    if value is None:
        return EMPTY
    if isinstance(value, datetime):
        value = _aware(value).astimezone(zone(tz)).date()
    return _babel_date(value, DATE_PATTERN, locale=LOCALE)


def format_datetime(value: datetime | None, tz: ZoneInfo | str | None = None) -> str:
    """ "Jan 31, 2026, 14:05" in `tz` (the reader's zone)."""
    if value is None:
        return EMPTY
    local = _aware(value).astimezone(zone(tz))
    return _babel_datetime(local, DATETIME_PATTERN, tzinfo=local.tzinfo, locale=LOCALE)


def format_money(amount_cents: int, currency: str = "usd") -> str:
    """An amount in minor units as people read it: "$1,234.50" for USD, "-$4.00"
    for a negative one, "12.00 EUR" for another currency. Integer arithmetic
    only, so the text is exact for any amount."""
    cents = int(amount_cents)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    symbol = "$" if currency.lower() == "usd" else ""
    suffix = "" if symbol else f" {currency.upper()}"
    return f"{sign}{symbol}{cents // 100:,}.{cents % 100:02d}{suffix}"


def format_day(value: date) -> str:
    """ "Jan 31": a chart tick."""
    return _babel_date(value, DAY_PATTERN, locale=LOCALE)


def format_stamp(value: datetime, *, seconds: bool = False) -> str:
    """ "2026-01-31 14:05" (with seconds: "14:05:09") in UTC, for operators."""
    pattern = STAMP_FORMAT + (":%S" if seconds else "")
    return _aware(value).astimezone(UTC).strftime(pattern)


_A = Account.__table__
_zone_stmt = select(_A.c.timezone).where(_A.c.id == bindparam("account_id"))


def account_zone(session: Session, account_id: int) -> ZoneInfo:
    """The zone an account's times are shown in (UTC when unset or unusable)."""
    return zone(session.connection().execute(_zone_stmt, {"account_id": int(account_id)}).scalar())


# UTC goes by several names; a browser saying "Etc/UTC" to an account stored as
# "UTC" is no change.
_UTC_ALIASES = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
        "Etc/GMT",
        "GMT",
        "Etc/Greenwich",
        "Greenwich",
        "Etc/GMT0",
        "GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "GMT+0",
        "GMT-0",
    }
)


def _canonical(name: str) -> str:
    return DEFAULT_ZONE if name in _UTC_ALIASES else name


def store_account_zone(session: Session, account_id: int, name: object) -> str | None:
    """Remember the zone a browser reported for an account (only a known IANA
    name; UTC aliases become "UTC"). Returns the stored name when it changed,
    None when it was refused or already stored. The caller's transaction must
    be a write one."""
    known = known_zone_name(name)
    if known is None:
        return None
    known = _canonical(known)
    current = session.connection().execute(_zone_stmt, {"account_id": int(account_id)}).scalar()
    if current is None or _canonical(current) == known:
        return None
    session.execute(update(Account).where(Account.id == int(account_id)).values(timezone=known))
    return known
