"""A staff decision on a broken-result report reaches the user's open tab at once:
accepting or declining announces a job change for that account when it commits
(generation/reports.py), and the live push (state/live.py) re-reads the report
status the job card shows, through Reflex's real event path. A tab of another
account gets nothing."""

from __future__ import annotations

import asyncio

from tests.state.test_live import (  # noqa: F401  (fixtures and helpers)
    app_db,
    wait_for,
    with_feed,
)
from tests.support.factories import sign_up
from tests.support.generation import IMAGE
from workroom_app.db import write_session
from workroom_app.generation import jobs, reports
from workroom_app.models import Role
from workroom_app.state.reports import ReportState
from workroom_app.state.session import SessionState

COST = 16  # IMAGE: 2 images at 2K


def _reported(engine, account_id: int, n: int) -> list[tuple[int, int]]:
    """n finished jobs, each reported: (job id, report id). The month's first three
    are refunded at once; the rest wait for staff."""
    out = []
    for i in range(n):
        with write_session(engine) as s:
            job = jobs.submit(s, account_id, IMAGE, client_request_id=f"live-r{i}")
            jobs.succeed(s, job.id, f"{account_id}/{job.id}.png", "image/png")
        with write_session(engine) as s:
            out.append((job.id, reports.report(s, account_id, job.id, f"Broken {i}").report_id))
    return out


def test_a_staff_decision_updates_the_users_open_job_card_live(app_db):  # noqa: F811
    ann = sign_up(app_db, "ann@example.com", extra_credits=COST * 5)
    sign_up(app_db, "bob@example.com")
    helper = sign_up(app_db, "help@staff.test", role=Role.SUPPORT)
    (_, _), (_, _), (_, _), (accepted_job, to_accept), (declined_job, to_decline) = _reported(
        app_db, ann, 5
    )

    async def scenario(new_tab, pushes):
        tab, other = new_tab(), new_tab()
        await tab.open("ann@example.com")
        await tab.send(ReportState, "load")
        await other.open("bob@example.com")
        await other.send(ReportState, "load")
        waiting = "Reported: waiting for staff"
        status = (await tab.state(ReportState)).report_status
        assert status[str(accepted_job)] == status[str(declined_job)] == waiting
        balance = (await tab.state(SessionState)).balance

        def decide(report_id: int, accept: bool, note: str | None) -> None:
            with write_session(app_db) as s:
                reports.decide(s, report_id, helper, accept=accept, note=note)

        await asyncio.to_thread(decide, to_decline, False, "The render matches the prompt")

        async def declined() -> bool:
            got = (await tab.state(ReportState)).report_status.get(str(declined_job))
            return got == "Reported: declined (The render matches the prompt)"

        assert await wait_for(declined)
        assert (await tab.state(ReportState)).report_status[str(accepted_job)] == waiting

        await asyncio.to_thread(decide, to_accept, True, None)

        async def accepted() -> bool:
            st = await tab.state(ReportState)
            return st.report_status.get(str(accepted_job)) == "Reported: credits returned"

        assert await wait_for(accepted)
        assert await wait_for(lambda: _balance_is(tab, balance + COST)), (
            "the returned credits show too"
        )
        # Bob's tab heard nothing about Ann's reports.
        assert (await other.state(ReportState)).report_status == {}
        assert other.token not in pushes.touched

    with_feed(scenario)


async def _balance_is(tab, n: int) -> bool:
    return (await tab.state(SessionState)).balance == n
