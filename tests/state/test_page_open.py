"""A page load is one event (state/page_open.py): Reflex's own page-load events bind the tab to
its login and run the page's loaders inside them, through the real event path. Reflex chains
nothing after them (no on_load is registered with it), so the guard must hold there: a signed-out
or revoked visitor is sent to /login before any loader runs, a signed-in one away from /login."""

from __future__ import annotations

from typing import Any

import pytest
from reflex.state import State

import workroom_app.workroom_app as workroom
from tests.support.factories import add_credits, make_user, sign_up
from tests.support.generation import VOICE, submit
from tests.support.reflex_events import EventBrowser, run
from workroom_app.billing import accounts
from workroom_app.components.layout import PAGES
from workroom_app.db import write_session
from workroom_app.routes import GENERATE_ROUTE, LOGIN_ROUTE, USAGE_ROUTE
from workroom_app.state import page_open
from workroom_app.state.generate import GenerateState
from workroom_app.state.session import SessionState
from workroom_app.state.usage import UsageState


def submit_one(engine, account_id: int):
    add_credits(engine, account_id, 10)
    return submit(engine, account_id, dict(VOICE))


async def hydrated(tab: EventBrowser) -> bool:
    return bool((await tab.state(State)).is_hydrated)


def test_reflex_chains_no_page_load_events_for_any_page():
    # Every page (and the not-found page) finishes hydrating in Reflex's page-load event itself.
    for spec in PAGES:
        assert workroom.app.get_load_events(spec.route) == [], spec.route
    assert workroom.app.get_load_events("/no/such/page") == []
    # ... while the pages' loaders are known to the page opener, in their declared order.
    assert page_open.loaders_for(GENERATE_ROUTE) == [GenerateState.load]
    assert page_open.loaders_for(USAGE_ROUTE + "/") == [UsageState.load]
    assert page_open.loaders_for("/no/such/page") == []


def test_connecting_binds_the_tab_and_loads_the_page_in_one_event(app_db):
    account_id, token = make_user(app_db, "open@example.com")
    job = submit_one(app_db, account_id)

    async def scenario(new_tab):
        tab = new_tab()
        tab.cookie = token
        sent = await tab.connect(GENERATE_ROUTE)
        assert "_redirect" not in sent
        session = await tab.state(SessionState)
        assert session._account_id == account_id and session.signed_in
        assert session.email == "open@example.com"
        generate = await tab.state(GenerateState)
        assert [j.id for j in generate.history] == [job.id]
        assert await hydrated(tab)
        # What the browser received carries the page's data with the hydrated flag.
        text = repr(tab.recorder.by_token[tab.token])
        assert "open@example.com" in text

    run(EventBrowser, scenario)


def test_navigating_runs_the_new_pages_loader(app_db):
    account_id, token = make_user(app_db, "nav@example.com")
    submit_one(app_db, account_id)

    async def scenario(new_tab):
        tab = new_tab()
        tab.cookie = token
        await tab.connect(GENERATE_ROUTE)
        usage = await tab.state(UsageState)
        assert usage.rows == [] and usage.loading  # not loaded before the visit
        await tab.navigate(USAGE_ROUTE)
        usage = await tab.state(UsageState)
        assert not usage.loading and usage.account_has_rows
        assert await hydrated(tab)

    run(EventBrowser, scenario)


@pytest.mark.parametrize("how", ["no cookie", "forged cookie", "revoked"])
def test_a_visitor_without_a_live_login_is_sent_to_login_before_any_loader(app_db, how):
    account_id, token = make_user(app_db, "out@example.com")
    submit_one(app_db, account_id)
    if how == "revoked":
        with write_session(app_db) as s:
            accounts.revoke_login(s, token)

    async def scenario(new_tab):
        tab = new_tab()
        tab.cookie = {"no cookie": "", "forged cookie": "x" * 43, "revoked": token}[how]
        for arrive in (tab.connect, tab.navigate):
            sent = await arrive(GENERATE_ROUTE)
            assert f'_redirect {{"path": "{LOGIN_ROUTE}"' in sent
            assert (await tab.state(SessionState))._account_id is None
            assert (await tab.state(GenerateState)).history == []  # the loader never ran

    run(EventBrowser, scenario)


def test_a_signed_in_visitor_of_the_login_page_goes_to_the_landing_page(app_db):
    _account_id, token = make_user(app_db, "in@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        tab.cookie = token
        sent = await tab.connect(LOGIN_ROUTE)
        assert f'_redirect {{"path": "{GENERATE_ROUTE}"' in sent

    run(EventBrowser, scenario)


def test_a_failing_loader_is_reported_and_the_page_still_opens(app_db, monkeypatch):
    sign_up(app_db, "fail@example.com")
    _account_id, token = make_user(app_db, "fail2@example.com")

    class Broken(RuntimeError):
        expected_by_test = True  # the harness fails a run on any unannounced exception

    def broken(*_args: Any, **_kwargs: Any):
        raise Broken("the jobs table is unreachable")

    monkeypatch.setattr("workroom_app.state.generate.read_jobs", broken)

    async def scenario(new_tab):
        tab = new_tab()
        tab.cookie = token
        sent = await tab.connect(GENERATE_ROUTE)
        assert "toast" in sent  # the app's answer to a failing event
        assert (await tab.state(SessionState)).signed_in
        assert await hydrated(tab)

    run(EventBrowser, scenario)
