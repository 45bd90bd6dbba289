"""What the Usage page reads: the account's ledger, newest first, with filters,
keyset paging, a CSV export, spend per day and the credits about to expire.

Plain Python (no Reflex), read-only: the page state, the CSV route and tests
all call these with an open session.

Ordering and paging (decision): rows are listed newest first by
``(created_at, id)``; ``id`` breaks ties between rows written in the same
instant. Paging is keyset: a cursor is a ledger entry id; the next page holds
the rows strictly older than that entry (``(created_at, id) < cursor``),
never ``OFFSET``, so page 2,000 costs what page 1 costs. Sorting by time rather
than by id alone lets a date-range filter become an index range on
``ix_ledger_account_created`` / ``ix_ledger_account_action_created`` instead of
a scan from the newest row down. Several action types are read as one index
range each, merged by a UNION ALL in the same statement, for the same reason.

Spend per day (decision): the credits a generation really cost, that is its
debit minus its refund if it had one, counted on the local day the generation
started (a failed generation refunded the next morning leaves nothing on
either day, rather than a charge one day and a negative bar the next).

Dates: the filters' ``date_from``/``date_to`` are calendar days in the user's
time zone (``Account.timezone``), both inclusive; times shown are in that zone.

The package: filters.py (UsageError, UsageFilter and the input checks), display.py (labels,
amounts, timestamps, time zones), ledger_rows.py (rows, keyset pages, the CSV export),
spend.py (the spend chart) and expiry.py (credits about to expire). Every public name is
re-exported here, so ``usage.usage_page`` and ``from workroom_app.billing.usage import
UsageFilter`` keep working.
"""

from __future__ import annotations

from workroom_app.billing.usage.display import (
    CSV_HEADER,
    account_timezone,
    action_label,
    csv_header,
    feature_label,
    format_amount,
    format_credits,
    format_timestamp,
    resolve_timezone,
)
from workroom_app.billing.usage.expiry import ExpiringCredits, expiry_line, next_expiry
from workroom_app.billing.usage.filters import EARLIEST_DATE as EARLIEST_DATE
from workroom_app.billing.usage.filters import LATEST_DATE as LATEST_DATE
from workroom_app.billing.usage.filters import NO_FILTER as NO_FILTER
from workroom_app.billing.usage.filters import UsageError, UsageFilter
from workroom_app.billing.usage.ledger_rows import CSV_CHUNK as CSV_CHUNK
from workroom_app.billing.usage.ledger_rows import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    UsagePage,
    UsageRow,
    export_csv,
    iter_csv,
    iter_usage_rows,
    usage_page,
)
from workroom_app.billing.usage.ledger_rows import cursor_for_entry as cursor_for_entry
from workroom_app.billing.usage.spend import MAX_SPEND_DAYS as MAX_SPEND_DAYS
from workroom_app.billing.usage.spend import spend_by_day

__all__ = [
    "UsageError",
    "UsageFilter",
    "UsageRow",
    "UsagePage",
    "ExpiringCredits",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "CSV_HEADER",
    "usage_page",
    "iter_usage_rows",
    "iter_csv",
    "export_csv",
    "spend_by_day",
    "next_expiry",
    "expiry_line",
    "account_timezone",
    "resolve_timezone",
    "format_timestamp",
    "csv_header",
    "format_amount",
    "format_credits",
    "action_label",
    "feature_label",
]
