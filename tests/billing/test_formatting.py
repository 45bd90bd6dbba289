"""The one date format and the one date-time format (billing/formatting.py),
in the reader's zone, and how the zone is learned from the browser (through
the real event path: a browser can send anything)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.factories import make_user
from tests.support.reflex_events import EventBrowser
from tests.support.reflex_events import run as run_events
from workroom_app.billing import accounts, formatting
from workroom_app.db import read_session, write_session
from workroom_app.state.session import SessionState
from workroom_app.state.timezone import TimeZoneState
from workroom_app.state.usage import UsageState

WINTER = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
SUMMER = datetime(2026, 7, 1, 16, 5, tzinfo=UTC)


def test_one_date_format_and_one_date_time_format():
    assert formatting.format_date(date(2026, 2, 1)) == "Feb 1, 2026"
    assert formatting.format_date(WINTER) == "Jan 31, 2026"
    assert formatting.format_datetime(WINTER) == "Jan 31, 2026, 23:30"
    assert formatting.format_datetime(SUMMER) == "Jul 1, 2026, 16:05"
    assert formatting.format_day(date(2026, 3, 4)) == "Mar 4"
    assert formatting.format_date(None) == formatting.format_datetime(None) == "—"


def test_operator_stamps_are_utc_whatever_zone_the_value_carries():
    paris = datetime(2026, 7, 1, 16, 5, 9, tzinfo=ZoneInfo("Europe/Paris"))
    assert formatting.format_stamp(paris) == "2026-07-01 14:05"
    assert formatting.format_stamp(paris, seconds=True) == "2026-07-01 14:05:09"
    # SQLite hands back naive datetimes; they are UTC.
    assert formatting.format_stamp(datetime(2026, 7, 1, 14, 5)) == "2026-07-01 14:05"


def test_times_are_in_the_readers_zone_with_daylight_saving():
    assert formatting.format_datetime(WINTER, "Europe/Paris") == "Feb 1, 2026, 00:30"  # CET, +1
    assert formatting.format_datetime(SUMMER, "Europe/Paris") == "Jul 1, 2026, 18:05"  # CEST, +2
    assert formatting.format_datetime(SUMMER, ZoneInfo("America/New_York")) == "Jul 1, 2026, 12:05"
    # A datetime's date is the reader's day, not UTC's.
    assert formatting.format_date(WINTER, "Asia/Tokyo") == "Feb 1, 2026"
    assert formatting.format_date(WINTER, "America/Los_Angeles") == "Jan 31, 2026"
    # SQLite hands back naive datetimes: they are UTC.
    assert (
        formatting.format_datetime(WINTER.replace(tzinfo=None), "Europe/Paris")
        == "Feb 1, 2026, 00:30"
    )


@pytest.mark.parametrize(
    "bad", [None, "", "Mars/Olympus", "../../etc/passwd", "x" * 200, 7, ["UTC"]]
)
def test_an_unusable_zone_is_utc(bad):
    assert formatting.known_zone_name(bad) is None
    assert formatting.zone(bad).key == "UTC"
    assert formatting.format_datetime(WINTER, bad) == "Jan 31, 2026, 23:30"


def test_the_format_does_not_follow_the_servers_locale(monkeypatch):
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    assert formatting.format_datetime(WINTER) == "Jan 31, 2026, 23:30"


def _zone_of(engine, account_id: int) -> str:
    with read_session(engine) as s:
        return s.get(accounts.Account, account_id).timezone


def test_store_account_zone_keeps_known_names_only(engine):
    a, _ = make_user(engine, "zone@example.com", at=None)
    with write_session(engine) as s:
        assert formatting.store_account_zone(s, a, "Etc/UTC") is None  # same as the default UTC
        assert formatting.store_account_zone(s, a, "Nowhere/Else") is None
        assert formatting.store_account_zone(s, a, "Europe/Paris") == "Europe/Paris"
        assert formatting.store_account_zone(s, a, "Europe/Paris") is None  # no change
    assert _zone_of(engine, a) == "Europe/Paris"
    with read_session(engine) as s:
        assert formatting.account_zone(s, a).key == "Europe/Paris"


pytestmark = pytest.mark.usefixtures("fast_hashing")


class Browser(EventBrowser):
    path = "/usage"


def test_the_browsers_zone_is_stored_and_the_page_redrawn_in_it(app_db):
    account_id, token = make_user(app_db, "tokyo@example.com", at=None)

    async def scenario(new_tab):
        tab = new_tab()
        # The browser's connection carries the HttpOnly login cookie the server set.
        tab.cookie = token
        await tab.send(SessionState, "guard")
        await tab.send(UsageState, "load")
        usage = await tab.state(UsageState)
        assert usage.tz_name == "UTC"
        await tab.send(TimeZoneState, "remember_time_zone", name="Asia/Tokyo")
        assert _zone_of(app_db, account_id) == "Asia/Tokyo"
        # The page's own on_load ran again: the Usage page now shows Tokyo times.
        usage = await tab.state(UsageState)
        assert usage.tz_name == "Asia/Tokyo"
        trial_time = usage.rows[0]["date"]
        with read_session(app_db) as s:
            from workroom_app.billing import usage as usage_rows

            [row] = usage_rows.usage_page(s, account_id).rows
        assert trial_time == formatting.format_datetime(row.created_at, "Asia/Tokyo")

    run_events(Browser, scenario)


@pytest.mark.parametrize(
    "forged",
    [
        "Mars/Olympus",
        "../../etc/passwd",
        "",
        "x" * 10_000,
        42,
        None,
        ["Europe/Paris"],
        {"name": "Europe/Paris"},
    ],
)
def test_a_forged_zone_changes_nothing(app_db, forged):
    account_id, token = make_user(
        app_db, f"forged{abs(hash(str(forged))) % 10**6}@example.com", at=None
    )

    async def scenario(new_tab):
        tab = new_tab()
        # The browser's connection carries the HttpOnly login cookie the server set.
        tab.cookie = token
        await tab.send(SessionState, "guard")
        await tab.send(TimeZoneState, "remember_time_zone", name=forged)

    run_events(Browser, scenario)
    assert _zone_of(app_db, account_id) == "UTC"


def test_a_signed_out_browser_cannot_set_a_zone(app_db):
    account_id, _ = make_user(app_db, "nobody@example.com", at=None)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.send(TimeZoneState, "remember_time_zone", name="Europe/Paris")

    run_events(Browser, scenario)
    assert _zone_of(app_db, account_id) == "UTC"


def test_receipt_email_uses_the_one_format_in_the_accounts_zone(engine):
    from tests.support.subscriptions import T0, outbox_of, sign_up, subscribe
    from workroom_app.billing import clock

    with clock.pinned(T0):  # Jan 31 10:00 UTC: still Jan 31 in Honolulu, Jan 31 evening in Tokyo
        a = sign_up(engine)
        with write_session(engine) as s:
            s.get(accounts.Account, a).timezone = "Pacific/Honolulu"
        subscribe(engine, a, "pro")
    [email] = outbox_of(engine, a)
    assert "Date: Jan 31, 2026" in email.body_text  # 00:00 in Honolulu
    assert "Period: Jan 31, 2026 to Feb 28, 2026" in email.body_text
    assert "Dates are in your time zone (Pacific/Honolulu)." in email.body_text
