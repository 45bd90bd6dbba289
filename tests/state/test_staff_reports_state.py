"""The staff Reports queue (/staff/reports) through the real event path, on
SQLite and PostgreSQL: support accept a waiting report and its credits come
back once (two tabs accepting the same report refund once); a declined report
shows the staff note on the user's job card; finance read but are refused
(and audited); forged or unlisted ids and a missing note change nothing; a
non-staff caller is sent away without an audit row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from tests.support.generation import IMAGE
from tests.support.pages import NOW, StaffTab, make_user, runner
from workroom_app.billing import clock, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs, reports
from workroom_app.models import ActionType, GrantSource, LedgerEntry, ResultReport, Role, StaffAudit
from workroom_app.state.reports import read_reports
from workroom_app.state.staff_reports import NOT_LISTED, StaffReportsState

COST = 16  # IMAGE: 2 images at 2K

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


def _finished_and_reported(engine, account_id: int, n: int) -> list[int]:
    """n finished jobs of the account, each reported; returns the report ids (the first
    three of the month are refunded at once, the rest wait for staff)."""
    out = []
    with clock.pinned(NOW - timedelta(hours=2)), write_session(engine) as s:
        ledger.grant(
            s,
            account_id,
            COST * n,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key=f"test-reports:{account_id}",
        )
    for i in range(n):
        with clock.pinned(NOW - timedelta(hours=2)), write_session(engine) as s:
            job = jobs.submit(s, account_id, IMAGE, client_request_id=f"r{account_id}-{i}")
            jobs.succeed(s, job.id, f"{account_id}/{job.id}.png", "image/png")
        with clock.pinned(NOW - timedelta(hours=1)), write_session(engine) as s:
            out.append(reports.report(s, account_id, job.id, f"Broken render {i}").report_id)
    return out


def _balance(engine, account_id: int) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, account_id)


def _trail(engine) -> list[tuple[str, str]]:
    with read_session(engine) as s:
        return [(a.action, a.result) for a in s.exec(select(StaffAudit).order_by(StaffAudit.id))]


async def _open(tab, path: str = "/staff/reports") -> str:
    tab.path = path
    return await tab.send(StaffReportsState, "load")


@pytest.mark.parametrize("which", ["sqlite", "postgres"])
def test_support_accepts_a_waiting_report_once_even_from_two_tabs(request, which):
    engine = request.getfixturevalue("app_db" if which == "sqlite" else "pg_app_db")
    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    user, _ = make_user(engine, "ann@example.com")
    ids = _finished_and_reported(engine, user, 4)
    waiting = ids[3]
    before = _balance(engine, user)

    async def scenario(new_tab):
        first, second = new_tab(), new_tab()
        for tab in (first, second):
            await tab.sign_in(token)
            await _open(tab)
        st = await first.state(StaffReportsState)
        # Only the report beyond the allowance waits; the three refunded at once are not here.
        assert st.allowed and st.can_decide
        assert [r["id"] for r in st.rows] == [str(waiting)]
        row = st.rows[0]
        assert row["email"] == "ann@example.com" and row["reason"] == "Broken render 3"
        assert row["result_href"].startswith("/api/media/jobs/")
        sent = await first.send(StaffReportsState, "accept", report_id=str(waiting))
        assert f"{COST:,} credits returned" in sent
        # The other tab still lists it: its accept is the same decision again, refunds nothing.
        sent = await second.send(StaffReportsState, "accept", report_id=str(waiting))
        assert "already accepted" in sent and "nothing more" in sent
        st = await first.state(StaffReportsState)
        assert st.rows == []
        await first.send(StaffReportsState, "show", which="accepted")
        st = await first.state(StaffReportsState)
        assert [r["id"] for r in st.rows] == [str(waiting)]
        assert st.rows[0]["returned"] == f"{COST:,} credits returned"
        assert st.rows[0]["decided_by"] == "help@staff.test"

    run(scenario)
    assert _balance(engine, user) == before + COST
    with read_session(engine) as s:
        report = s.get(ResultReport, waiting)
        assert report.status == "refunded" and report.refund_entry_id is not None
        refunds = s.exec(
            select(LedgerEntry).where(
                LedgerEntry.account_id == user, LedgerEntry.action_type == ActionType.REFUND
            )
        ).all()
    assert len(refunds) == 4  # three at once, one accepted
    assert _trail(engine) == [("decide_report", "done"), ("decide_report", "repeat")]
    assert read_reports(user)[str(report.job_id)] == "Reported: credits returned"


def test_a_declined_report_needs_a_note_and_the_user_reads_it(request):
    engine = request.getfixturevalue("app_db")
    _, token = make_user(engine, "boss@staff.test", Role.ADMIN)
    user, _ = make_user(engine, "ann@example.com")
    waiting = _finished_and_reported(engine, user, 4)[3]
    before = _balance(engine, user)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await _open(tab)
        # No form open: a forged decline does nothing.
        sent = await tab.send(StaffReportsState, "decline", form_data={"note": "No"})
        assert "Open the decline form first" in sent
        await tab.send(StaffReportsState, "open_decline", report_id=str(waiting))
        st = await tab.state(StaffReportsState)
        assert st.decline_open and f"Report #{waiting}" in st.decline_label
        for note in ("", "   ", None, 42, "x" * (reports.MAX_NOTE + 1)):
            await tab.send(StaffReportsState, "decline", form_data={"note": note})
            st = await tab.state(StaffReportsState)
            assert "Write a note" in st.error and st.decline_open
        sent = await tab.send(
            StaffReportsState, "decline", form_data={"note": "The result matches the prompt."}
        )
        assert "Declined report" in sent
        await tab.send(StaffReportsState, "show", which="declined")
        st = await tab.state(StaffReportsState)
        assert [r["note"] for r in st.rows] == ["The result matches the prompt."]

    run(scenario)
    assert _balance(engine, user) == before
    with read_session(engine) as s:
        job_id = s.get(ResultReport, waiting).job_id
    assert read_reports(user)[str(job_id)] == (
        "Reported: declined (The result matches the prompt.)"
    )
    assert _trail(engine) == [("decide_report", "done")]


def test_finance_reads_reports_but_cannot_decide(request):
    engine = request.getfixturevalue("app_db")
    _, token = make_user(engine, "money@staff.test", Role.FINANCE)
    user, _ = make_user(engine, "ann@example.com")
    waiting = _finished_and_reported(engine, user, 4)[3]
    before = _balance(engine, user)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await _open(tab)
        st = await tab.state(StaffReportsState)
        assert st.allowed and not st.can_decide and [r["id"] for r in st.rows] == [str(waiting)]
        sent = await tab.send(StaffReportsState, "accept", report_id=str(waiting))
        assert "Only support and admin staff can decide reports" in sent
        sent = await tab.send(StaffReportsState, "open_decline", report_id=str(waiting))
        assert "Only support and admin" in sent
        st = await tab.state(StaffReportsState)
        assert not st.decline_open

    run(scenario)
    assert _balance(engine, user) == before
    with read_session(engine) as s:
        assert s.get(ResultReport, waiting).status == "pending"
    assert _trail(engine) == [("decide_report", "refused"), ("decide_report", "refused")]


def test_forged_ids_own_reports_and_non_staff_change_nothing(request):
    engine = request.getfixturevalue("app_db")
    support, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    other_support, other_token = make_user(engine, "help2@staff.test", Role.SUPPORT)
    user, user_token = make_user(engine, "ann@example.com")
    waiting = _finished_and_reported(engine, user, 4)[3]
    # A staff member's own report (they use the product too) waits like anyone's.
    own = _finished_and_reported(engine, support, 4)[3]
    before = {a: _balance(engine, a) for a in (user, support)}

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await _open(tab)
        st = await tab.state(StaffReportsState)
        assert {r["id"] for r in st.rows} == {str(waiting), str(own)}
        for forged in ("999999", "0", "-1", "1; drop table", None, ["1"], {"id": 1}, True, 1.5):
            sent = await tab.send(StaffReportsState, "accept", report_id=forged)
            assert NOT_LISTED in sent, forged
        sent = await tab.send(StaffReportsState, "show", which="everything")
        assert "Choose waiting, accepted or declined" in sent
        sent = await tab.send(StaffReportsState, "accept", report_id=str(own))
        assert "cannot decide their own reports" in sent
        # A plain user calling the staff handlers is sent away; nothing is decided or audited.
        intruder = new_tab()
        await intruder.sign_in(user_token)
        sent = await _open(intruder)
        assert "redirect" in sent
        sent = await intruder.send(StaffReportsState, "accept", report_id=str(waiting))
        assert "redirect" in sent
        # Another staff member may decide the first one's report.
        colleague = new_tab()
        await colleague.sign_in(other_token)
        await _open(colleague)
        sent = await colleague.send(StaffReportsState, "accept", report_id=str(own))
        assert "credits returned" in sent

    run(scenario)
    assert _balance(engine, user) == before[user]
    assert _balance(engine, support) == before[support] + COST
    with read_session(engine) as s:
        assert s.get(ResultReport, waiting).status == "pending"
    assert _trail(engine) == [("decide_report", "refused"), ("decide_report", "done")]
    del other_support
