"""The Usage page state (the CSV download it links to is http/usage_csv.py).

Thin on purpose: every query lives in billing/usage/. What the browser may send
is only filter values (checked against fixed lists and a date format) and
argument-less paging events; cursors, the account and the page size never
come from the browser. Filters that fail validation show a message and
change nothing: the table and the CSV link keep the last valid filters.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from workroom_app.billing import catalog, usage
from workroom_app.billing.usage import UsageError, UsageFilter
from workroom_app.db import read_session
from workroom_app.models import ACTION_LABELS
from workroom_app.state.session import SessionState

ALL = "all"
PAGE_SIZE = usage.DEFAULT_PAGE_SIZE
CHART_DAYS = 30
# Longest value a filter control can legitimately send ("face_swap",
# "2026-11-24", "subscription_credits"); anything longer is refused unread.
_MAX_VALUE = 32

ACTION_OPTIONS: list[tuple[str, str]] = [(ALL, "All action types"), *ACTION_LABELS.items()]
# The catalog's features, read once: the page's select and chart are compiled from them.
FEATURE_OPTIONS: list[tuple[str, str]] = [(ALL, "All features"), *catalog.feature_labels().items()]
CHART_FEATURES: list[tuple[str, str]] = list(catalog.feature_labels().items())


def _filter_from(action: str, feature: str, date_from: str, date_to: str) -> UsageFilter:
    return UsageFilter(
        action_types=() if action == ALL else (action,),
        features=() if feature == ALL else (feature,),
        date_from=date_from or None,
        date_to=date_to or None,
    )


def csv_query(filters: UsageFilter) -> str:
    """The query string of the CSV link for these (already valid) filters."""
    params: list[tuple[str, str]] = [("action", a) for a in filters.action_types]
    params += [("feature", f) for f in filters.features]
    if filters.date_from:
        params.append(("from", filters.date_from.isoformat()))
    if filters.date_to:
        params.append(("to", filters.date_to.isoformat()))
    return urlencode(params)


# ------------------------------------------------------------ blocking reads


def _read_page(account_id: int, filters: UsageFilter, before_id: int | None, after_id: int | None):
    with read_session() as session:
        page = usage.usage_page(
            session,
            account_id,
            filters=filters,
            before_id=before_id,
            after_id=after_id,
            limit=PAGE_SIZE,
        )
        has_any = bool(page.rows) or (
            not filters.is_empty and bool(usage.usage_page(session, account_id, limit=1).rows)
        )
        return page, has_any


def _entry_cursor(account_id: int, entry: object) -> int | None:
    with read_session() as session:
        return usage.cursor_for_entry(session, account_id, entry)


def _read_summary(account_id: int):
    with read_session() as session:
        tz = usage.account_timezone(session, account_id)
        series = usage.spend_by_day(session, account_id, CHART_DAYS, tz)
        expiring = usage.next_expiry(session, account_id)
        return tz, series, usage.expiry_line(expiring, tz)


def _chart_rows(series: list[dict[str, object]]) -> list[dict[str, object]]:
    """Every known feature on every day (zero when unused), so the stacked
    bars and the legend never change shape."""
    out = []
    for day in series:
        item: dict[str, object] = {"date": day["date"], "label": day["label"]}
        for key, _label in CHART_FEATURES:
            item[key] = int(day.get(key, 0) or 0)
        out.append(item)
    return out


class UsageState(SessionState):
    # What the table shows: display strings only.
    rows: list[dict[str, str]] = []
    loading: bool = True
    error: str = ""
    # The filter controls (what the user picked; applied when valid).
    action_filter: str = ALL
    feature_filter: str = ALL
    date_from: str = ""
    date_to: str = ""
    has_newer: bool = False
    has_older: bool = False
    # False for an account with no ledger rows at all: the empty state.
    account_has_rows: bool = False
    expiry_text: str = ""
    chart: list[dict[str, str | int]] = []
    chart_has_spend: bool = False
    tz_name: str = "UTC"
    # Query string of the CSV link: always the applied (valid) filters.
    csv_query: str = ""

    # The filters the table and CSV were last built from, and the page
    # cursors: kept on the server so a browser cannot hand us another
    # account's ids (they are checked again in billing/usage anyway).
    _applied: tuple[str, str, str, str] = (ALL, ALL, "", "")
    _older_cursor: int | None = None
    _newer_cursor: int | None = None

    # ------------------------------------------------------------ helpers
    def _filters(self) -> UsageFilter:
        return _filter_from(*self._applied)

    def _show(self, page: usage.UsagePage, has_any: bool) -> None:
        self.rows = [
            {
                "id": str(r.id),
                "date": usage.format_timestamp(r.created_at, page.tz),
                "action": usage.action_label(r.action_type),
                "feature": usage.feature_label(r.feature) or "—",
                "amount": usage.format_amount(r.amount),
                "tone": "positive" if r.amount > 0 else ("negative" if r.amount < 0 else "neutral"),
                "balance": usage.format_credits(r.balance_after),
            }
            for r in page.rows
        ]
        self._older_cursor = page.next_cursor
        self._newer_cursor = page.prev_cursor
        self.has_older = page.next_cursor is not None
        self.has_newer = page.prev_cursor is not None
        self.account_has_rows = has_any
        self.tz_name = page.tz.key

    async def _load_page(
        self, *, before_id: int | None = None, after_id: int | None = None
    ) -> None:
        account_id = self._account_id
        if account_id is None:
            return
        try:
            page, has_any = await asyncio.to_thread(
                _read_page, account_id, self._filters(), before_id, after_id
            )
        except UsageError as exc:
            # A cursor gone stale (or forged): start again from the newest rows.
            self.error = str(exc)
            page, has_any = await asyncio.to_thread(
                _read_page, account_id, self._filters(), None, None
            )
        self._show(page, has_any)

    async def _apply(self, action: str, feature: str, date_from: str, date_to: str):
        """Validate a complete set of filter values; apply them or say why not."""
        try:
            filters = _filter_from(action, feature, date_from, date_to)
        except UsageError as exc:
            self.error = str(exc)
            return
        self.error = ""
        self._applied = (action, feature, date_from, date_to)
        self.csv_query = csv_query(filters)
        self.loading = True
        yield
        try:
            await self._load_page()
        finally:
            self.loading = False

    # -------------------------------------------------------------- events
    async def load(self):
        """on_load (after the login guard): the newest page and the summary."""
        if self._account_id is None:
            return
        self.loading = True
        self.error = ""
        yield
        try:
            account_id = self._account_id
            tz, series, expiry = await asyncio.to_thread(_read_summary, account_id)
            self.tz_name = tz.key
            self.chart = _chart_rows(series)
            self.chart_has_spend = any(
                item[key] for item in self.chart for key, _ in CHART_FEATURES
            )
            self.expiry_text = expiry
            self.csv_query = csv_query(self._filters())
            # /usage?entry=N (a failed job's "Refund row" link): the page that starts with row N.
            entry = self.router.url.query_parameters.get("entry", "")
            before_id = None
            if entry:
                try:
                    before_id = await asyncio.to_thread(_entry_cursor, account_id, entry)
                except UsageError as exc:
                    self.error = str(exc)
            await self._load_page(before_id=before_id)
        finally:
            self.loading = False

    async def set_action_filter(self, value: str):
        if self._account_id is None:
            return
        if not isinstance(value, str) or (value != ALL and value not in ACTION_LABELS):
            self.error = "Choose an action type from the list."
            return
        self.action_filter = value
        async for update in self._apply(value, self.feature_filter, self.date_from, self.date_to):
            yield update

    async def set_feature_filter(self, value: str):
        if self._account_id is None:
            return
        if not isinstance(value, str) or (value != ALL and value not in catalog.feature_labels()):
            self.error = "Choose a feature from the list."
            return
        self.feature_filter = value
        async for update in self._apply(self.action_filter, value, self.date_from, self.date_to):
            yield update

    async def set_date_from(self, value: str):
        if self._account_id is None:
            return
        value = _date_text(value)
        if value is None:
            self.error = "The start date must look like 2026-11-24."
            return
        self.date_from = value
        async for update in self._apply(
            self.action_filter, self.feature_filter, value, self.date_to
        ):
            yield update

    async def set_date_to(self, value: str):
        if self._account_id is None:
            return
        value = _date_text(value)
        if value is None:
            self.error = "The end date must look like 2026-11-24."
            return
        self.date_to = value
        async for update in self._apply(
            self.action_filter, self.feature_filter, self.date_from, value
        ):
            yield update

    async def clear_filters(self):
        if self._account_id is None:
            return
        self.action_filter = ALL
        self.feature_filter = ALL
        self.date_from = ""
        self.date_to = ""
        async for update in self._apply(ALL, ALL, "", ""):
            yield update

    async def older_page(self):
        if self._account_id is None or self._older_cursor is None:
            return
        self.error = ""
        await self._load_page(before_id=self._older_cursor)

    async def newer_page(self):
        if self._account_id is None or self._newer_cursor is None:
            return
        self.error = ""
        await self._load_page(after_id=self._newer_cursor)


def _date_text(value: object) -> str | None:
    """What a date input may send: "" (cleared) or YYYY-MM-DD-shaped text;
    whether it is a real date is UsageFilter's call (with its own message)."""
    if not isinstance(value, str) or len(value) > _MAX_VALUE:
        return None
    value = value.strip()
    if value == "":
        return ""
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    return value
