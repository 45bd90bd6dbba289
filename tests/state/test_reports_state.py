"""The "Report a broken result" dialog through Reflex's real event path."""

from __future__ import annotations

import pytest

from tests.support.generation import IMAGE
from tests.support.pages import NOW, PlansTab, balance, make_user, runner
from workroom_app.billing import clock
from workroom_app.db import write_session
from workroom_app.generation import jobs
from workroom_app.state.reports import ReportState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(PlansTab, now=NOW)


def finished(engine, account_id) -> int:
    with clock.pinned(NOW), write_session(engine) as s:
        job = jobs.submit(s, account_id, IMAGE, client_request_id=f"r{account_id}-{id(s)}")
        jobs.succeed(s, job.id, f"{account_id}/{job.id}.png", "image/png")
        return job.id


def test_reporting_a_result_refunds_it_and_shows_the_status(app_db):
    account_id, token = make_user(app_db, "rep@example.com")
    job_id = finished(app_db, account_id)
    assert balance(app_db, account_id) == 50 - 16

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        await tab.send(ReportState, "load")
        await tab.send(ReportState, "open_for", job_id=job_id, title="Image · Flux Pro")
        sent = await tab.send(ReportState, "submit", form_data={"reason": "The fox has three eyes"})
        assert "16 credits were returned" in sent
        st = await tab.state(ReportState)
        assert (
            st.report_status == {str(job_id): "Reported: credits returned"} and not st.dialog_open
        )

    run(scenario)
    assert balance(app_db, account_id) == 50


@pytest.mark.parametrize("forged", [-1, "1", None, 1.5, 10**15, [1]])
def test_forged_or_other_users_job_ids_change_nothing(app_db, forged):
    owner, _ = make_user(app_db, "owner@example.com")
    other, token = make_user(app_db, "other@example.com")
    job_id = finished(app_db, owner)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.sign_in(token)
        for target in (job_id, forged):
            await tab.send(ReportState, "open_for", job_id=target, title="x")
            await tab.send(ReportState, "submit", form_data={"reason": "broken, refund me"})
            st = await tab.state(ReportState)
            assert st.error or not st.dialog_open

    run(scenario)
    assert balance(app_db, owner) == 50 - 16 and balance(app_db, other) == 50
