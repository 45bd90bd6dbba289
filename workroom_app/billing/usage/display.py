"""Usage: how rows read, on screen and in the CSV. Action and feature labels, amounts,
timestamps in the user's time zone, the CSV header, and the time-zone lookup."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlmodel import Session

from workroom_app.billing import catalog, formatting
from workroom_app.billing.usage.filters import _MAX_INPUT_LENGTH, UsageError
from workroom_app.models import ACTION_LABELS

CSV_HEADER = ("entry_id", "date", "time_zone", "action_type", "feature", "amount", "balance_after")


def action_label(action_type: str) -> str:
    return ACTION_LABELS.get(action_type, action_type.replace("_", " ").capitalize())


def feature_label(feature: str | None) -> str:
    if not feature:
        return ""
    return catalog.feature_labels().get(feature, feature.replace("_", " ").capitalize())


def format_credits(n: int) -> str:
    """1234567 -> "1,234,567"."""
    return f"{n:,}"


def format_amount(n: int) -> str:
    """A signed amount as shown: "+1,000", "−45" (a real minus sign), "0"."""
    if n > 0:
        return f"+{n:,}"
    if n < 0:
        return f"\u2212{-n:,}"
    return "0"


def format_timestamp(dt: datetime, tz: ZoneInfo) -> str:
    """The date and time of a row in the user's zone, the same on screen and in
    the CSV: the app's one date-time format (billing/formatting.py)."""
    return formatting.format_datetime(dt, tz)


def csv_header(tz: ZoneInfo) -> tuple[str, ...]:
    """The CSV's header row; the date column names the zone its times are in."""
    return tuple(f"date ({tz.key})" if name == "date" else name for name in CSV_HEADER)


def resolve_timezone(name: object) -> ZoneInfo:
    """A zoneinfo zone from an IANA name, or a clear error."""
    if isinstance(name, ZoneInfo):
        return name
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_INPUT_LENGTH:
        raise UsageError("Choose a time zone such as Europe/Paris or UTC.")
    name = name.strip()
    # ZoneInfo also accepts file-system-like keys ("../x") and raises various
    # errors for them; the list of known zones is the safe gate.
    if name not in _known_zones():
        raise UsageError(f"Unknown time zone {name!r}: use a name such as Europe/Paris or UTC.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unloadable
        raise UsageError(f"Unknown time zone {name!r}.") from exc


_zones_cache: frozenset[str] | None = None


def _known_zones() -> frozenset[str]:
    global _zones_cache
    if _zones_cache is None:
        _zones_cache = frozenset(available_timezones()) | {"UTC"}
    return _zones_cache


def account_timezone(session: Session, account_id: int) -> ZoneInfo:
    """The account's zone; UTC when the stored name is unusable, so a bad
    setting shows times in UTC instead of breaking the page (formatting.py)."""
    return formatting.account_zone(session, account_id)
