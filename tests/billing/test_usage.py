"""billing/usage/ on SQLite and PostgreSQL: ordering, keyset paging, filters,
CSV export, spend per day, next expiry, time zones, bad input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from workroom_app.billing import clock, ledger, usage
from workroom_app.billing.usage import UsageError, UsageFilter
from workroom_app.db import read_session, write_session
from workroom_app.models import Account, ActionType, GrantSource, LedgerEntry

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_L = LedgerEntry.__table__


def make_account(engine, email: str, tz: str = "UTC") -> int:
    with write_session(engine) as s:
        acc = Account(email=email, password_hash="x", timezone=tz, created_at=clock.now())
        s.add(acc)
        s.flush()
        return acc.id


def bulk_rows(engine, account_id: int, specs: list[tuple[datetime, str, str | None, int]]) -> None:
    """Insert ledger rows directly (tests only): (created_at, action, feature, amount)."""
    balance = 0
    rows = []
    for i, (at, action, feature, amount) in enumerate(specs):
        balance += amount
        rows.append(
            {
                "account_id": account_id,
                "action_type": action,
                "feature": feature,
                "amount": amount,
                "balance_after": balance,
                "idempotency_key": f"bulk:{account_id}:{i}:{at.isoformat()}",
                "created_at": at,
            }
        )
    with write_session(engine) as s:
        s.connection().execute(insert(_L), rows)


def all_pages(engine, account_id, filters=None, limit=50, tz=None):
    """Walk Older from the top; returns the pages."""
    pages = []
    with read_session(engine) as s:
        page = usage.usage_page(s, account_id, filters=filters, limit=limit, tz=tz)
        pages.append(page)
        while page.next_cursor is not None:
            page = usage.usage_page(
                s, account_id, filters=filters, limit=limit, before_id=page.next_cursor, tz=tz
            )
            pages.append(page)
    return pages


def expected(engine, account_id, pred=lambda r: True):
    """Brute force: every row of the account, filtered in Python, newest first."""
    with read_session(engine) as s:
        got = (
            s.connection()
            .execute(_L.select().where(_L.c.account_id == account_id))
            .mappings()
            .all()
        )
    rows = [r for r in got if pred(r)]
    rows.sort(
        key=lambda r: (
            r["created_at"].replace(tzinfo=UTC)
            if r["created_at"].tzinfo is None
            else r["created_at"],
            r["id"],
        ),
        reverse=True,
    )
    return [r["id"] for r in rows]


@pytest.fixture
def big(engine):
    """237 rows for one account (with runs of identical timestamps, and the
    ids NOT in time order for some rows), 40 for a neighbour."""
    a = make_account(engine, "a@example.com")
    b = make_account(engine, "b@example.com")
    kinds = [
        (ActionType.GENERATION, "image", -5),
        (ActionType.GENERATION, "video", -40),
        (ActionType.REFUND, "video", 40),
        (ActionType.MONTHLY_CREDITS, None, 1000),
        (ActionType.GENERATION, "voiceover", -3),
        (ActionType.EXPIRY, None, -7),
        (ActionType.STAFF_ADJUSTMENT, None, 10),
    ]
    specs = []
    for i in range(237):
        # Every third row shares its timestamp with the previous one.
        at = T0 + timedelta(hours=(i - i // 3))
        kind = kinds[i % len(kinds)]
        specs.append((at, kind[0].value, kind[1], kind[2]))
    # Rows written later with an earlier time (a pinned clock in a test, a
    # clock correction): they sort by time, not id.
    specs.append((T0 - timedelta(days=1), ActionType.TRIAL_GRANT.value, None, 50))
    specs.append((T0 + timedelta(hours=50, minutes=30), ActionType.PLAN_CHANGE.value, None, 200))
    bulk_rows(engine, a, specs)
    bulk_rows(
        engine,
        b,
        [(T0 + timedelta(hours=i), ActionType.GENERATION.value, "image", -1) for i in range(40)],
    )
    return engine, a, b


def test_rows_are_newest_first_and_only_the_accounts_own(big):
    engine, a, b = big
    pages = all_pages(engine, a, limit=200)
    ids = [r.id for p in pages for r in p.rows]
    assert ids == expected(engine, a)
    assert len(ids) == 239
    keys = [r.sort_key for p in pages for r in p.rows]
    assert keys == sorted(keys, reverse=True)
    with read_session(engine) as s:
        b_ids = {
            r["id"]
            for r in s.connection().execute(_L.select().where(_L.c.account_id == b)).mappings()
        }
    assert not b_ids & set(ids)


def test_keyset_paging_has_no_gaps_or_duplicates_both_ways(big):
    engine, a, _ = big
    pages = all_pages(engine, a, limit=50)
    assert [len(p.rows) for p in pages] == [50, 50, 50, 50, 39]
    assert pages[0].prev_cursor is None and pages[0].has_more
    assert pages[-1].next_cursor is None and not pages[-1].has_more
    ids = [r.id for p in pages for r in p.rows]
    assert ids == expected(engine, a)
    assert len(set(ids)) == len(ids)
    # Walk back with Newer from the last page: the same pages, in reverse.
    with read_session(engine) as s:
        back = [pages[-1]]
        while back[-1].prev_cursor is not None:
            back.append(usage.usage_page(s, a, limit=50, after_id=back[-1].prev_cursor))
    assert [[r.id for r in p.rows] for p in reversed(back)] == [
        [r.id for r in p.rows] for p in pages
    ]
    assert back[-1].prev_cursor is None  # newest page reached: no Newer button


def test_paging_uses_no_offset(big, monkeypatch):
    engine, a, _ = big
    statements = []
    from sqlalchemy import event

    def capture(conn, cursor, statement, parameters, *args):  # noqa: ANN001
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        all_pages(engine, a, limit=20)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    selects = [(s, p) for s, p in statements if "ledger_entry" in s]
    assert len(selects) >= 12
    for sql, params in selects:
        # SQLAlchemy's SQLite dialect always writes "LIMIT ? OFFSET ?" and
        # binds 0: what matters is that nothing is ever skipped by offset.
        if "OFFSET" in sql.upper():
            assert sql.rstrip().upper().endswith("OFFSET ?") and params[-1] == 0, sql


def test_filter_by_one_action_type(big):
    engine, a, _ = big
    f = UsageFilter(action_types=("generation",))
    ids = [r.id for p in all_pages(engine, a, f, limit=17) for r in p.rows]
    assert ids == expected(engine, a, lambda r: r["action_type"] == "generation")


def test_filter_by_several_action_types_merges_in_order(big):
    engine, a, _ = big
    f = UsageFilter(action_types=["refund", "expiry", "trial_grant", "plan_change"])
    pages = all_pages(engine, a, f, limit=9)
    ids = [r.id for p in pages for r in p.rows]
    assert ids == expected(
        engine, a, lambda r: r["action_type"] in {"refund", "expiry", "trial_grant", "plan_change"}
    )
    with read_session(engine) as s:
        back = [pages[-1]]
        while back[-1].prev_cursor is not None:
            back.append(usage.usage_page(s, a, filters=f, limit=9, after_id=back[-1].prev_cursor))
    assert [r.id for p in reversed(back) for r in p.rows] == ids


def test_filter_by_feature(big):
    engine, a, _ = big
    f = UsageFilter(features=["video", "voiceover"])
    ids = [r.id for p in all_pages(engine, a, f, limit=13) for r in p.rows]
    assert ids == expected(engine, a, lambda r: r["feature"] in {"video", "voiceover"})
    assert ids


def test_filter_by_date_range_is_inclusive_in_the_users_zone(engine):
    a = make_account(engine, "tz@example.com", "America/New_York")
    ny = ZoneInfo("America/New_York")

    def local(y, m, d, h, mi=0):
        return datetime(y, m, d, h, mi, tzinfo=ny).astimezone(UTC)

    bulk_rows(
        engine,
        a,
        [
            (local(2026, 11, 9, 23, 59), "generation", "image", -1),  # before
            (local(2026, 11, 10, 0, 0), "generation", "image", -2),  # first instant of from
            (
                local(2026, 11, 12, 23, 59),
                "generation",
                "image",
                -3,
            ),  # last minute of to (04:59 UTC on the 13th)
            (local(2026, 11, 13, 0, 0), "generation", "image", -4),  # after
        ],
    )
    f = UsageFilter(date_from="2026-11-10", date_to="2026-11-12")
    with read_session(engine) as s:
        page = usage.usage_page(s, a, filters=f)
    assert [r.amount for r in page.rows] == [-3, -2]
    # The same filter read in UTC selects a different set: dates are local.
    with read_session(engine) as s:
        utc_page = usage.usage_page(s, a, filters=f, tz="UTC")
    assert [r.amount for r in utc_page.rows] == [-2, -1]


def test_combined_filters_and_date_bounds(big):
    engine, a, _ = big
    f = UsageFilter(
        action_types=("generation",),
        features=("image",),
        date_from=date(2026, 11, 2),
        date_to=date(2026, 11, 4),
    )
    lo = datetime(2026, 11, 2, tzinfo=UTC)
    hi = datetime(2026, 11, 5, tzinfo=UTC)

    def pred(r):
        at = r["created_at"] if r["created_at"].tzinfo else r["created_at"].replace(tzinfo=UTC)
        return r["action_type"] == "generation" and r["feature"] == "image" and lo <= at < hi

    ids = [r.id for p in all_pages(engine, a, f, limit=4) for r in p.rows]
    assert ids == expected(engine, a, pred)
    assert ids


def test_a_cursor_from_another_account_is_refused(big):
    engine, a, b = big
    with read_session(engine) as s:
        other = usage.usage_page(s, b, limit=5).rows[0].id
        with pytest.raises(UsageError, match="not valid"):
            usage.usage_page(s, a, before_id=other)
        with pytest.raises(UsageError, match="not valid"):
            usage.usage_page(s, a, after_id=other)
        with pytest.raises(UsageError, match="not valid"):
            usage.usage_page(s, a, before_id=10**9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"limit": 0}, "between 1 and"),
        ({"limit": 10_000}, "between 1 and"),
        ({"limit": "50"}, "whole number"),
        ({"limit": True}, "whole number"),
        ({"before_id": "5"}, "not valid"),
        ({"before_id": -1}, "not valid"),
        ({"before_id": 1, "after_id": 2}, "not valid"),
        ({"tz": "Mars/Olympus"}, "Unknown time zone"),
        ({"tz": "../../etc/passwd"}, "Unknown time zone"),
    ],
)
def test_bad_page_arguments_are_refused(sqlite_engine, kwargs, message):
    a = make_account(sqlite_engine, "p@example.com")
    with read_session(sqlite_engine) as s, pytest.raises(UsageError, match=message):
        usage.usage_page(s, a, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"action_types": ["generation", "mint_money"]}, "Unknown action type 'mint_money'"),
        ({"action_types": [5]}, "from the list"),
        ({"action_types": {"a": 1}}, "from the list"),
        ({"action_types": ["generation"] * 50}, "from the list"),
        ({"features": ["teleport"]}, "Unknown feature 'teleport'"),
        ({"features": ["x" * 1000]}, "from the list"),
        ({"date_from": "2026-02-30"}, "not a real date"),
        ({"date_from": "24/11/2026"}, "not a real date"),
        ({"date_to": "tomorrow"}, "look like"),
        ({"date_to": 20261124}, "look like"),
        ({"date_to": datetime(2026, 1, 1, tzinfo=UTC)}, "calendar day"),
        ({"date_from": "1900-01-01"}, "between"),
        ({"date_from": "2026-11-20", "date_to": "2026-11-10"}, "on or before"),
    ],
)
def test_bad_filters_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(UsageError, match=message):
        UsageFilter(**kwargs)


def test_filter_normalises_input():
    f = UsageFilter(
        action_types="refund",
        features=("video", "image", "video"),
        date_from=" 2026-11-01 ",
        date_to="",
    )
    assert f.action_types == ("refund",)
    assert f.features == ("image", "video")
    assert f.date_from == date(2026, 11, 1) and f.date_to is None
    # Every action type selected is no filter at all.
    assert UsageFilter(action_types=[a.value for a in ActionType]).action_types == ()


@pytest.mark.parametrize("chunk", [3, 50, 2000])
def test_csv_is_exactly_the_filtered_rows(big, chunk):
    engine, a, _ = big
    f = UsageFilter(action_types=("generation", "refund"), date_from="2026-11-02")
    with read_session(engine) as s:
        text = "".join(usage.iter_csv(s, a, f, "Asia/Tokyo", chunk=chunk))
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0]) == usage.csv_header(ZoneInfo("Asia/Tokyo"))
    assert parsed[0][1] == "date (Asia/Tokyo)"  # the header names the zone
    pages = all_pages(engine, a, f, limit=31, tz="Asia/Tokyo")
    shown = [r for p in pages for r in p.rows]
    assert len(parsed) - 1 == len(shown) > 0
    tz = ZoneInfo("Asia/Tokyo")
    for line, row in zip(parsed[1:], shown, strict=True):
        assert line == [str(v) for v in row.as_csv(tz)]
        assert int(line[5]) == row.amount and line[3] == usage.action_label(row.action_type)


def test_export_csv_of_an_empty_account_is_just_the_header(engine):
    a = make_account(engine, "new@example.com")
    with read_session(engine) as s:
        assert usage.export_csv(s, a) == ",".join(usage.csv_header(ZoneInfo("UTC"))) + "\r\n"
        page = usage.usage_page(s, a)
    assert page.rows == [] and page.next_cursor is None and page.prev_cursor is None


def test_rows_written_by_the_ledger_show_with_labels_and_balances(engine):
    a = make_account(engine, "l@example.com", "Europe/Paris")
    with clock.pinned(T0), write_session(engine) as s:
        ledger.grant(
            s,
            a,
            50,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key="t",
        )
    with clock.pinned(T0 + timedelta(minutes=5)), write_session(engine) as s:
        d = ledger.debit(s, a, 45, feature="video", idempotency_key="d1")
    with clock.pinned(T0 + timedelta(minutes=6)), write_session(engine) as s:
        ledger.refund(s, d.entry_id, idempotency_key="r1")
    with read_session(engine) as s:
        page = usage.usage_page(s, a)
    tz = ZoneInfo("Europe/Paris")
    # What the Usage page shows of each row (state/usage.py builds its rows with these).
    shown = [
        {
            "date": usage.format_timestamp(r.created_at, tz),
            "action": usage.action_label(r.action_type),
            "feature": usage.feature_label(r.feature),
            "amount_text": usage.format_amount(r.amount),
            "balance_after": r.balance_after,
        }
        for r in page.rows
    ]
    assert [(x["action"], x["feature"], x["amount_text"], x["balance_after"]) for x in shown] == [
        ("Refund", "Video", "+45", 50),
        ("Generation", "Video", "\u221245", 5),
        ("Trial grant", "", "+50", 50),
    ]
    assert shown[2]["date"] == "Nov 1, 2026, 13:00"  # 12:00 UTC is 13:00 in Paris (CET)


# --------------------------------------------------------------- spend chart


def test_spend_by_day_counts_debits_minus_their_refunds_per_local_day(engine):
    a = make_account(engine, "s@example.com", "America/Los_Angeles")
    now = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles
    with clock.pinned(now - timedelta(days=40)), write_session(engine) as s:
        ledger.grant(
            s,
            a,
            10_000,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key="g",
        )
    spend = [
        (now - timedelta(days=35), "image", 11, False),  # outside the window
        (now - timedelta(days=29), "image", 5, False),  # first day of the window
        (now - timedelta(days=2), "image", 10, False),
        (now - timedelta(days=2), "video", 45, False),
        (now - timedelta(days=2), "video", 45, True),  # refunded: costs nothing
        # 03:00 UTC on the 24th is still the 23rd in Los Angeles.
        (datetime(2026, 11, 24, 3, 0, tzinfo=UTC), "voiceover", 7, False),
        (now, "lip_sync", 30, False),
    ]
    for i, (at, feature, cost, refunded) in enumerate(spend):
        with clock.pinned(at), write_session(engine) as s:
            d = ledger.debit(s, a, cost, feature=feature, idempotency_key=f"d{i}")
        if refunded:
            # Refunded the next day: still subtracted from the day it started.
            with clock.pinned(at + timedelta(days=1)), write_session(engine) as s:
                ledger.refund(s, d.entry_id, idempotency_key=f"r{i}")
    with read_session(engine) as s:
        series = usage.spend_by_day(s, a, now=now)
    assert len(series) == 30
    assert series[0]["date"] == "2026-10-26" and series[-1]["date"] == "2026-11-24"
    assert series[-1]["label"] == "Nov 24"
    by_date = {d["date"]: d for d in series}
    # The chart's series: the features spent on, in the catalog's order.
    assert [k for k in series[0] if k not in ("date", "label")] == [
        "image",
        "video",
        "voiceover",
        "lip_sync",
    ]
    assert all(
        set(d) == {"date", "label", "image", "video", "voiceover", "lip_sync"} for d in series
    )
    assert by_date["2026-10-26"]["image"] == 5
    assert by_date["2026-11-22"] == {
        "date": "2026-11-22",
        "label": "Nov 22",
        "image": 10,
        "video": 45,
        "voiceover": 0,
        "lip_sync": 0,
    }
    assert by_date["2026-11-23"]["voiceover"] == 7
    assert by_date["2026-11-24"]["lip_sync"] == 30
    assert (
        sum(sum(v for k, v in d.items() if k not in ("date", "label")) for d in series)
        == 5 + 10 + 45 + 7 + 30
    )


def test_spend_by_day_validates_days(sqlite_engine):
    a = make_account(sqlite_engine, "d@example.com")
    with read_session(sqlite_engine) as s:
        for bad in (0, -1, 10_000, "30", 2.5):
            with pytest.raises(UsageError):
                usage.spend_by_day(s, a, days=bad)
        assert usage.spend_by_day(s, a, days=7) and all(
            set(d) == {"date", "label"} for d in usage.spend_by_day(s, a, days=7)
        )


# ---------------------------------------------------------------- expiry


def test_next_expiry_sums_the_soonest_live_grants(engine):
    a = make_account(engine, "e@example.com", "Asia/Kolkata")
    end = datetime(2026, 12, 24, 18, 45, tzinfo=UTC)  # 00:15 on Dec 25 in Kolkata
    with clock.pinned(T0), write_session(engine) as s:
        assert usage.next_expiry(s, a) is None
        ledger.grant(
            s,
            a,
            50,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key="t",
        )
        assert usage.next_expiry(s, a) is None  # the trial never expires
        ledger.grant(
            s,
            a,
            1000,
            action_type=ActionType.SUBSCRIPTION_CREDITS,
            source=GrantSource.SUBSCRIPTION,
            idempotency_key="sub",
            expires_at=end,
        )
        ledger.grant(
            s,
            a,
            300,
            action_type=ActionType.PLAN_CHANGE,
            source=GrantSource.PLAN_CHANGE,
            idempotency_key="up",
            expires_at=end,
        )
        ledger.grant(
            s,
            a,
            1200,
            action_type=ActionType.MONTHLY_CREDITS,
            source=GrantSource.MONTHLY,
            idempotency_key="later",
            expires_at=end + timedelta(days=31),
        )
        # Spending draws the soonest-expiring credits first.
        ledger.debit(s, a, 100, feature="image", idempotency_key="d")
    with clock.pinned(T0), read_session(engine) as s:
        got = usage.next_expiry(s, a)
        tz = usage.account_timezone(s, a)
    assert got == (1200, end)
    assert usage.expiry_line(got, tz) == "1,200 credits expire on Dec 25, 2026 at your next renewal"
    # Once those are past, the next batch is the one that counts.
    with read_session(engine) as s:
        assert usage.next_expiry(s, a, now=end + timedelta(seconds=1)) == (
            1200,
            end + timedelta(days=31),
        )
        assert usage.next_expiry(s, a, now=end + timedelta(days=40)) is None


def test_expiry_line_is_empty_when_nothing_expires_and_singular_for_one():
    tz = ZoneInfo("UTC")
    assert usage.expiry_line(None, tz) == ""
    one = usage.ExpiringCredits(1, datetime(2027, 1, 5, tzinfo=UTC))
    assert usage.expiry_line(one, tz) == "1 credit expires on Jan 5, 2027 at your next renewal"


# ---------------------------------------------------------------- formatting


def test_time_zone_formatting_follows_daylight_saving():
    ny = ZoneInfo("America/New_York")
    assert (
        usage.format_timestamp(datetime(2026, 7, 1, 16, 0, tzinfo=UTC), ny) == "Jul 1, 2026, 12:00"
    )
    assert (
        usage.format_timestamp(datetime(2026, 12, 1, 16, 0, tzinfo=UTC), ny) == "Dec 1, 2026, 11:00"
    )


def test_amounts_are_signed_with_thousands_separators():
    assert usage.format_amount(1_234_567) == "+1,234,567"
    assert usage.format_amount(-45) == "\u221245"
    assert usage.format_amount(-12_000) == "\u221212,000"
    assert usage.format_amount(0) == "0"
    assert usage.format_credits(98765) == "98,765"


def test_an_unusable_stored_time_zone_falls_back_to_utc(sqlite_engine):
    a = make_account(sqlite_engine, "z@example.com", "Not/AZone")
    with read_session(sqlite_engine) as s:
        assert usage.account_timezone(s, a) == ZoneInfo("UTC")
    with pytest.raises(UsageError):
        usage.resolve_timezone(None)
    assert usage.resolve_timezone("Europe/Paris") == ZoneInfo("Europe/Paris")


def test_usage_features_are_the_catalogs_features(monkeypatch):
    import tomllib
    from pathlib import Path

    from workroom_app.billing import catalog

    cat = catalog.get_catalog()
    for key, feature in cat.features.items():
        assert usage.feature_label(key) == feature.label
        assert UsageFilter(features=(key,)).features == (key,)
    # A label changed in the catalog is what Usage shows; a feature it lacks is refused.
    data = tomllib.loads(Path(catalog.__file__).with_name("catalog.toml").read_text())
    data["features"]["video"]["label"] = "Clips"
    monkeypatch.setattr(catalog, "get_catalog", lambda: catalog.parse_catalog(data))
    assert usage.feature_label("video") == "Clips"
    with pytest.raises(UsageError):
        UsageFilter(features=("sculpture",))
