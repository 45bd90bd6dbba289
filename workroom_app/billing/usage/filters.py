"""Usage: what a caller may send. UsageError, the filter (action types, features, a date
range in the user's zone) validated on construction, and the account-id check every read
starts with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workroom_app.billing import catalog
from workroom_app.models import ActionType

# Dates before the product existed or past what datetime can shift by a time
# zone are almost certainly typos; refuse them with a message instead of
# failing deep inside datetime arithmetic.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(9998, 12, 31)
_MAX_INPUT_LENGTH = 64

_ALL_ACTIONS = frozenset(a.value for a in ActionType)


class UsageError(ValueError):
    """Bad filter, cursor or time zone; the message is shown to the user as is."""


def _parse_date(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise UsageError(f"The {what} date must be a calendar day (YYYY-MM-DD), not a time.")
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) != 10:
            raise UsageError(f"The {what} date must look like 2026-11-24.")
        try:
            parsed = date.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(
                f"The {what} date {text!r} is not a real date (use YYYY-MM-DD)."
            ) from exc
    else:
        raise UsageError(f"The {what} date must look like 2026-11-24.")
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise UsageError(
            f"The {what} date must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}."
        )
    return parsed


def _parse_choices(values: object, known: Iterable[str], what: str) -> tuple[str, ...]:
    if values is None or values == "":
        return ()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple | set | frozenset):
        raise UsageError(f"Choose {what}s from the list.")
    known = set(known)
    if len(values) > len(known):
        raise UsageError(f"Choose {what}s from the list.")
    chosen: set[str] = set()
    for value in values:
        if not isinstance(value, str) or len(value) > _MAX_INPUT_LENGTH:
            raise UsageError(f"Choose {what}s from the list.")
        value = value.strip()
        if value not in known:
            raise UsageError(f"Unknown {what} {value!r}.")
        chosen.add(value)
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class UsageFilter:
    """What the user narrowed the log to. Validated on construction, so an
    instance is always safe to query with; empty means "all"."""

    action_types: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None

    def __post_init__(self) -> None:
        actions = _parse_choices(self.action_types, _ALL_ACTIONS, "action type")
        # All of them selected is the same as no filter, and cheaper to read.
        if set(actions) == _ALL_ACTIONS:
            actions = ()
        object.__setattr__(self, "action_types", actions)
        object.__setattr__(
            self, "features", _parse_choices(self.features, catalog.feature_labels(), "feature")
        )
        date_from = _parse_date(self.date_from, "start")
        date_to = _parse_date(self.date_to, "end")
        if date_from and date_to and date_from > date_to:
            raise UsageError("The start date must be on or before the end date.")
        object.__setattr__(self, "date_from", date_from)
        object.__setattr__(self, "date_to", date_to)

    @property
    def is_empty(self) -> bool:
        return not (self.action_types or self.features or self.date_from or self.date_to)

    def utc_bounds(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC: local midnight of date_from to local midnight
        after date_to (DST-correct via zoneinfo)."""
        start = end = None
        if self.date_from:
            start = datetime.combine(self.date_from, time(0), tzinfo=tz).astimezone(UTC)
        if self.date_to:
            end = datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(
                UTC
            )
        return start, end


NO_FILTER = UsageFilter()


def _check_account_id(account_id: object) -> int:
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
        raise UsageError("Sign in to see your usage.")
    return account_id
