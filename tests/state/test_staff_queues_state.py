"""The queues page state through the real event path: controls follow the
role, forged events are refused (and audited), only listed rows are acted on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from tests.support.generation import IMAGE
from tests.support.pages import NOW, StaffTab, make_user, runner
from workroom_app.billing import clock, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.models import GenerationJob, Role, StaffAudit, WebhookEvent
from workroom_app.state.staff_queues import StaffQueuesState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


async def _open(tab):
    tab.path = "/staff/queues"
    return await tab.send(StaffQueuesState, "load")


def test_support_fails_a_stuck_job_but_cannot_replay_webhooks(app_db):
    engine = app_db
    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    user, _ = make_user(engine, "ann@example.com")
    with clock.pinned(NOW - timedelta(hours=3)), write_session(engine) as s:
        job = jobs.submit(
            s, user, {**IMAGE, "resolution": "1K", "count": 1}, client_request_id="q1"
        )
        s.add(
            WebhookEvent(
                id="evt_bad",
                type="invoice.paid",
                payload="{}",
                received_at=clock.now(),
                processed_at=clock.now(),
                outcome="failed",
                error="boom",
            )
        )
    with read_session(engine) as s:
        before = ledger.balance(s, user)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await _open(tab)
        st = await tab.state(StaffQueuesState)
        assert st.allowed and (st.can_replay, st.can_resend, st.can_fail_job) == (False, True, True)
        assert [w["id"] for w in st.webhooks] == ["evt_bad"]
        assert [j["id"] for j in st.jobs] == [str(job.id)] and st.jobs[0]["stuck"] == "yes"
        sent = await tab.send(StaffQueuesState, "replay", event_id="evt_bad")
        assert "finance and admin" in sent
        # An id this tab was never shown.
        sent = await tab.send(StaffQueuesState, "show_job", job_id="999")
        assert "not in the list" in sent
        await tab.send(StaffQueuesState, "show_job", job_id=str(job.id))
        st = await tab.state(StaffQueuesState)
        assert st.job_stuck and st.job_timeline[0]["what"].startswith("submitted")
        await tab.send(StaffQueuesState, "fail_job", form_data={"reason": ""})
        sent = await tab.send(
            StaffQueuesState, "fail_job", form_data={"reason": "Provider lost the job"}
        )
        assert "credits refunded" in sent
        # Again: the job left the "stuck" list, so the form is gone and a replayed event changes nothing.
        sent = await tab.send(
            StaffQueuesState, "fail_job", form_data={"reason": "Provider lost the job"}
        )
        assert "timeline first" in sent

    run(scenario)
    with read_session(engine) as s:
        assert s.get(GenerationJob, job.id).status == "failed"
        assert ledger.balance(s, user) == before + job.cost
        assert s.get(WebhookEvent, "evt_bad").outcome == "failed"
        trail = [(a.action, a.result) for a in s.exec(select(StaffAudit).order_by(StaffAudit.id))]
    assert trail == [("replay_webhook", "refused"), ("fail_job", "done")]
