"""A receipt on every job: a refunded job links to its
Refund row on Usage (/usage?entry=N opens the page that starts with it), and
the link cannot show anyone else's rows."""

from __future__ import annotations

import pytest

from tests.support.generation import IMAGE, T0, make_account, submit
from tests.support.pages import NOW, UsageTab, runner, user_with_rows
from workroom_app.billing import clock, usage
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.models import JobStatus
from workroom_app.state.generate import job_view
from workroom_app.state.usage import UsageState

run = runner(UsageTab, now=NOW)


def test_a_failed_jobs_view_names_its_refund_row_and_when(engine):
    acct = make_account(engine, 100)
    with clock.pinned(T0):
        job = submit(engine, acct, IMAGE)
        with write_session(engine) as s:
            failed = jobs.fail(s, job.id, JobStatus.FAILED, "boom")
    view = job_view(failed, "Europe/Paris")
    assert view.refund_text == "16 credits returned"
    assert view.refund_entry_id == failed.refund_entry_id > 0
    assert view.refund_time_text == "Mar 2, 2026, 10:00"  # 09:00 UTC in Paris


def test_cursor_for_entry_opens_the_page_at_that_row(engine):
    acct, other = make_account(engine, 200, plan="pro"), make_account(engine, 100)
    with clock.pinned(T0):
        ids = []
        for _ in range(4):  # Pro runs 4 at a time; Flux Pro is not unlimited on Pro
            ids.append(submit(engine, acct, IMAGE).debit_entry_id)
    with read_session(engine) as s:
        for target in ids:
            before = usage.cursor_for_entry(s, acct, str(target))
            page = usage.usage_page(s, acct, before_id=before)
            assert page.rows[0].id == target
        newest = usage.usage_page(s, acct, limit=1).rows[0].id
        assert usage.cursor_for_entry(s, acct, newest) is None  # the newest row: the first page
        for forged in (ids[0], "-1", "abc", "1" * 30, 0, 1.5):
            with pytest.raises(usage.UsageError):
                usage.cursor_for_entry(s, other, forged)


def test_usage_link_to_an_entry_shows_it_first_and_a_forged_one_falls_back(app_db):
    account_id, token = user_with_rows(app_db, "link@example.com", rows=120)
    _, other_token = user_with_rows(app_db, "other@example.com", rows=3)
    with read_session(app_db) as s:
        rows = usage.usage_page(s, account_id, limit=100).rows
    target = rows[70].id

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        tab.path = f"/usage?entry={target}"
        await tab.send(UsageState, "load")
        st = await tab.state(UsageState)
        assert int(st.rows[0]["id"]) == target and st.error == ""
        other = new_browser()
        await other.sign_in(other_token)
        other.path = f"/usage?entry={target}"  # someone else's row
        await other.send(UsageState, "load")
        st = await other.state(UsageState)
        assert st.error and all(int(r["id"]) != target for r in st.rows)

    run(scenario)
