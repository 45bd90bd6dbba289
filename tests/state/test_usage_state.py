"""The Usage page state driven through Reflex's real event processing path
(events queued on a BaseStateEventProcessor, as the websocket handler does),
and the CSV route through Starlette. A browser can call any handler with
anything: forged calls must show a message or be refused, and never show
another account's rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.pages import NOW, UsageTab, runner, user_with_rows
from workroom_app.billing import accounts, clock, ledger, usage
from workroom_app.db import read_session, write_session
from workroom_app.http import usage_csv
from workroom_app.http.auth_routes import AUTH_ROUTES
from workroom_app.models import ActionType, GrantSource
from workroom_app.security.session_cookie import COOKIE_NAME
from workroom_app.state.usage import PAGE_SIZE, UsageState

run = runner(UsageTab, now=NOW)


def db_page_ids(engine, account_id, **kw):
    with read_session(engine) as s:
        return [r.id for r in usage.usage_page(s, account_id, limit=PAGE_SIZE, **kw).rows]


def test_the_csv_route_reads_the_cookie_the_login_route_sets(app_db):
    # Signed in the way a browser is (the ticket redeemed over HTTP), with nothing but the
    # cookie that response set, the download works.
    account_id, _ = user_with_rows(app_db, "cookie@example.com", rows=3)
    with write_session(app_db) as s:
        ticket = accounts.create_login_ticket(s, account_id)
    browser = TestClient(Starlette(routes=[*AUTH_ROUTES, *usage_csv.USAGE_CSV_ROUTES]))
    assert browser.get("/api/usage.csv").status_code == 401
    signed_in = browser.post("/api/auth/session", data={"ticket": ticket}, follow_redirects=False)
    assert signed_in.status_code == 303
    resp = browser.get("/api/usage.csv")
    assert resp.status_code == 200 and len(resp.text.splitlines()) > 1


def test_load_shows_the_newest_page_as_in_the_database(app_db):
    account_id, token = user_with_rows(app_db, "ann@example.com", "Europe/Paris", rows=120)
    with write_session(app_db) as s, clock.pinned(NOW - timedelta(days=1)):
        ledger.grant(
            s,
            account_id,
            600,
            action_type=ActionType.SUBSCRIPTION_CREDITS,
            source=GrantSource.SUBSCRIPTION,
            idempotency_key="sub",
            expires_at=datetime(2026, 12, 24, 9, 0, tzinfo=UTC),
        )

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        st = await tab.state(UsageState)
        assert st.loading is False and st.error == "" and st.account_has_rows
        assert st.tz_name == "Europe/Paris"
        assert [int(r["id"]) for r in st.rows] == db_page_ids(app_db, account_id)
        top = st.rows[0]
        assert (
            top["action"] == "Subscription credits"
            and top["amount"] == "+600"
            and top["tone"] == "positive"
        )
        assert top["date"] == "Nov 23, 2026, 16:00"  # 15:00 UTC in Paris
        gen = next(r for r in st.rows if r["action"] == "Generation" and r["feature"] == "Video")
        assert gen["amount"] == "\u221245" and gen["tone"] == "negative"
        assert st.has_older and not st.has_newer
        assert st.expiry_text == "600 credits expire on Dec 24, 2026 at your next renewal"
        assert len(st.chart) == 30 and st.chart[-1]["date"] == "2026-11-24" and st.chart_has_spend
        assert set(st.chart[0]) == {
            "date",
            "label",
            "image",
            "video",
            "voiceover",
            "face_swap",
            "lip_sync",
        }

    run(scenario)


def test_paging_older_and_newer_walks_every_row_once(app_db):
    account_id, token = user_with_rows(app_db, "pat@example.com", rows=130)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        seen = []
        pages = 0
        while True:
            st = await tab.state(UsageState)
            seen += [int(r["id"]) for r in st.rows]
            pages += 1
            if not st.has_older:
                break
            await tab.send(UsageState, "older_page")
        assert pages == 3 and len(seen) == 130 and len(set(seen)) == 130
        with read_session(app_db) as s:
            assert seen == [r.id for r in usage.iter_usage_rows(s, account_id)]
        await tab.send(UsageState, "newer_page")
        st = await tab.state(UsageState)
        assert [int(r["id"]) for r in st.rows] == seen[50:100] and st.has_newer and st.has_older
        await tab.send(UsageState, "newer_page")
        st = await tab.state(UsageState)
        assert [int(r["id"]) for r in st.rows] == seen[:50] and not st.has_newer

    run(scenario)


def test_filters_apply_and_the_csv_link_follows_them(app_db):
    account_id, token = user_with_rows(app_db, "fil@example.com", rows=90)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.send(UsageState, "set_action_filter", value="generation")
        await tab.send(UsageState, "set_feature_filter", value="video")
        await tab.send(UsageState, "set_date_from", value="2026-11-21")
        await tab.send(UsageState, "set_date_to", value="2026-11-21")
        st = await tab.state(UsageState)
        assert st.error == ""
        f = usage.UsageFilter(
            action_types=("generation",),
            features=("video",),
            date_from="2026-11-21",
            date_to="2026-11-21",
        )
        assert [int(r["id"]) for r in st.rows] == db_page_ids(app_db, account_id, filters=f)
        assert st.rows and all(
            r["action"] == "Generation" and r["feature"] == "Video" for r in st.rows
        )
        assert st.csv_query == "action=generation&feature=video&from=2026-11-21&to=2026-11-21"
        await tab.send(UsageState, "clear_filters")
        st = await tab.state(UsageState)
        assert st.csv_query == "" and [int(r["id"]) for r in st.rows] == db_page_ids(
            app_db, account_id
        )

    run(scenario)


@pytest.mark.parametrize(
    "handler, value, message",
    [
        ("set_action_filter", "mint_money", "action type from the list"),
        ("set_action_filter", 7, "action type from the list"),
        ("set_action_filter", ["generation", "refund"], "action type from the list"),
        ("set_action_filter", {"$ne": ""}, "action type from the list"),
        ("set_feature_filter", "teleport", "feature from the list"),
        ("set_feature_filter", None, "feature from the list"),
        ("set_date_from", "x" * 100_000, "must look like"),
        ("set_date_from", "2026-02-30", "not a real date"),
        ("set_date_from", 20261124, "must look like"),
        ("set_date_to", "1800-01-01", "between"),
        ("set_date_to", "24.11.2026", "must look like"),
    ],
)
def test_bad_filter_values_show_a_message_and_change_nothing(app_db, handler, value, message):
    account_id, token = user_with_rows(app_db, "bad@example.com", rows=70)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        before = await tab.state(UsageState)
        rows_before = list(before.rows)
        query_before = before.csv_query
        await tab.send(UsageState, handler, value=value)
        st = await tab.state(UsageState)
        assert message in st.error
        assert st.rows == rows_before and st.csv_query == query_before
        assert st.action_filter == "all" and st.feature_filter == "all"
        assert len(str(st.date_from)) <= 10 and len(str(st.date_to)) <= 10

    run(scenario)


def test_start_after_end_is_refused_until_fixed(app_db):
    account_id, token = user_with_rows(app_db, "range@example.com", rows=70)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.send(UsageState, "set_date_to", value="2026-11-21")
        await tab.send(UsageState, "set_date_from", value="2026-11-23")
        st = await tab.state(UsageState)
        assert st.error == "The start date must be on or before the end date."
        assert st.csv_query == "to=2026-11-21"  # still the last valid filters
        await tab.send(UsageState, "set_date_to", value="2026-11-23")
        st = await tab.state(UsageState)
        assert st.error == "" and st.csv_query == "from=2026-11-23&to=2026-11-23"

    run(scenario)


@pytest.mark.parametrize(
    "handler, payload",
    [
        ("older_page", {"before_id": 1}),
        ("newer_page", {"after_id": 1}),
        ("load", {"account_id": 1}),
        ("older_page", {"limit": 10**9}),
        ("newest_page", {"limit": -1, "account_id": 1}),
        ("_load_page", {"before_id": 1}),
        ("_show", {}),
    ],
)
def test_forged_paging_cannot_reach_another_accounts_rows(app_db, handler, payload):
    victim, _ = user_with_rows(app_db, "victim@example.com", rows=60)
    attacker, token = user_with_rows(
        app_db, "mallory@example.com", rows=60, start=NOW - timedelta(days=10)
    )
    with read_session(app_db) as s:
        victim_ids = {r.id for r in usage.iter_usage_rows(s, victim)}
    if "before_id" in payload:
        payload = {"before_id": max(victim_ids)}
    if "after_id" in payload:
        payload = {"after_id": min(victim_ids)}

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        # Every argument here is unknown to its handler: Reflex refuses the event before the
        # handler runs. A private name (or one that is gone) is no handler at all: Reflex never
        # answers it.
        refused = TypeError if handler in UsageState.event_handlers else None
        await tab.send(UsageState, handler, refused=refused, **payload)
        st = await tab.state(UsageState)
        shown = {int(r["id"]) for r in st.rows}
        assert not shown & victim_ids
        # The call changed nothing: still the attacker's own newest page.
        assert [int(r["id"]) for r in st.rows] == db_page_ids(app_db, attacker)

    run(scenario)


def test_signed_out_browser_gets_nothing(app_db):
    user_with_rows(app_db, "someone@example.com", rows=20)

    async def scenario(new_browser):
        tab = new_browser()
        for handler in ("load", "older_page", "newer_page", "newest_page", "clear_filters"):
            await tab.send(UsageState, handler)
        await tab.send(UsageState, "set_action_filter", value="generation")
        st = await tab.state(UsageState)
        assert st.rows == [] and st.csv_query == "" and not st.account_has_rows

    run(scenario)


def test_new_account_gets_the_empty_state(app_db):
    _, token = user_with_rows(app_db, "new@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        st = await tab.state(UsageState)
        assert st.rows == [] and not st.account_has_rows and st.expiry_text == ""
        assert not st.chart_has_spend and not st.has_older and not st.has_newer

    run(scenario)


def test_filters_matching_nothing_are_not_the_empty_state(app_db):
    _, token = user_with_rows(app_db, "few@example.com", rows=5)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.send(UsageState, "set_action_filter", value="expiry")
        st = await tab.state(UsageState)
        assert st.rows == [] and st.account_has_rows

    run(scenario)


# ------------------------------------------------------------------ CSV route


@pytest.fixture
def client(app_db):
    return TestClient(Starlette(routes=usage_csv.USAGE_CSV_ROUTES))


def test_csv_route_returns_exactly_the_owners_filtered_rows(app_db, client):
    account_id, token = user_with_rows(app_db, "csv@example.com", "Asia/Tokyo", rows=2500)
    user_with_rows(app_db, "other@example.com", rows=300)
    with clock.pinned(NOW):
        resp = client.get(
            "/api/usage.csv?action=generation&action=refund&feature=video&from=2026-11-22",
            cookies={COOKIE_NAME: token},
        )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith("attachment;")
    lines = list(csv.reader(io.StringIO(resp.text)))
    f = usage.UsageFilter(
        action_types=("generation", "refund"), features=("video",), date_from="2026-11-22"
    )
    with read_session(app_db) as s:
        want = [r.id for r in usage.iter_usage_rows(s, account_id, f)]
    assert [int(line[0]) for line in lines[1:]] == want and len(want) > 100
    assert {line[2] for line in lines[1:]} == {"Asia/Tokyo"}


@pytest.mark.parametrize(
    "cookie, query, status, message",
    [
        (None, "", 401, "Sign in"),
        ("forged", "", 401, "Sign in"),
        ("x" * 5000, "", 401, "Sign in"),
        ("OK", "action=mint", 400, "Unknown action type"),
        ("OK", "from=2026-13-01", 400, "not a real date"),
        ("OK", "from=2026-11-20&to=2026-11-01", 400, "on or before"),
        ("OK", "account_id=1", 400, "Unknown parameter"),
        ("OK", "from=2026-11-01&from=2026-11-02", 400, "one start date"),
    ],
)
def test_csv_route_refuses_bad_requests(app_db, client, cookie, query, status, message):
    _, token = user_with_rows(app_db, "r@example.com", rows=3)
    cookies = {} if cookie is None else {COOKIE_NAME: token if cookie == "OK" else cookie}
    resp = client.get(f"/api/usage.csv?{query}", cookies=cookies)
    assert resp.status_code == status and message in resp.text


def test_the_event_harness_fails_on_a_handler_that_crashes(app_db, monkeypatch):
    # The harness must not swallow a crash into a toast: otherwise every
    # "changes nothing" test would pass for a handler that never ran to the end.
    from tests.support.reflex_events import UnexpectedHandlerError
    from workroom_app.state import usage as usage_state

    _, token = user_with_rows(app_db, "crash@example.com")

    def broken(*_args):
        raise RuntimeError("planted crash")

    monkeypatch.setattr(usage_state, "_read_summary", broken)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)

    with pytest.raises(UnexpectedHandlerError, match="planted crash"):
        run(scenario)
