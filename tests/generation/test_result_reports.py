"""Report a broken result, on SQLite and PostgreSQL: within
24 hours, the first K a calendar month refunded at once as a Refund row naming
the report, later ones wait for staff, who accept or decline with a note; a
result already refunded refunds nothing; someone else's job reads as not found."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.generation import IMAGE, T0, balance, entries, make_account, submit
from workroom_app.billing import clock
from workroom_app.billing.staff import StaffError
from workroom_app.db import write_session
from workroom_app.generation import jobs, reports
from workroom_app.generation.errors import JobNotFound
from workroom_app.models import Account, ActionType, ReportStatus, Role

COST = 16


def finished_job(engine, acct, *, at=T0):
    with clock.pinned(at):
        job = submit(engine, acct, IMAGE)
        with write_session(engine) as s:
            jobs.succeed(s, job.id, f"{acct}/{job.id}.png", "image/png")
    return job.id


def report(engine, acct, job_id, reason="The face is melted", *, at=T0 + timedelta(hours=1)):
    with clock.pinned(at), write_session(engine) as s:
        return reports.report(s, acct, job_id, reason)


def staff_member(engine) -> int:
    with write_session(engine) as s:
        a = Account(
            email=f"staff-{uuid.uuid4().hex[:8]}@example.test",
            password_hash="x",
            role=Role.STAFF,
            created_at=T0,
        )
        s.add(a)
        s.flush()
        return a.id


def test_the_first_three_reports_of_a_month_are_refunded_at_once_then_staff_decide(engine):
    acct = make_account(engine, 200)
    ids = [finished_job(engine, acct) for _ in range(5)]
    assert balance(engine, acct) == 200 - 5 * COST
    outs = [report(engine, acct, job_id) for job_id in ids]
    assert [o.status for o in outs] == ["refunded"] * 3 + ["pending"] * 2
    assert outs[0].message == "Thanks. 16 credits were returned to your balance."
    assert balance(engine, acct) == 200 - 2 * COST
    refunds = [e for e in entries(engine, acct) if e.action_type == ActionType.REFUND.value]
    assert len(refunds) == 3 and all(
        f"report #{o.report_id}" in r.reason for o, r in zip(outs[:3], refunds, strict=True)
    )
    staff = staff_member(engine)
    with clock.pinned(T0 + timedelta(hours=3)), write_session(engine) as s:
        reports.decide(
            s, outs[3].report_id, staff, accept=True, note="Confirmed: the render was corrupt."
        )
        reports.decide(
            s, outs[4].report_id, staff, accept=False, note="The result matches the prompt."
        )
    assert balance(engine, acct) == 200 - COST
    with write_session(engine) as s:
        declined = s.get(reports.ResultReport, outs[4].report_id)
        assert (declined.status, declined.staff_note) == (
            ReportStatus.DECLINED.value,
            "The result matches the prompt.",
        )
        # The same decision again (a double click) refunds nothing more; the other one is refused.
        again = reports.decide(s, outs[3].report_id, staff, accept=True, note="again")
        assert again.created is False and again.credits_returned == 0
        with pytest.raises(reports.ReportError, match="already accepted"):
            reports.decide(s, outs[3].report_id, staff, accept=False, note="changed my mind")
    assert balance(engine, acct) == 200 - COST


def test_a_new_calendar_month_has_a_new_allowance(engine):
    acct = make_account(engine, 200)
    first = [finished_job(engine, acct) for _ in range(3)]
    for job_id in first:
        report(engine, acct, job_id)
    april = T0.replace(month=4, day=1, hour=0, minute=30)
    job_id = finished_job(engine, acct, at=april)
    assert report(engine, acct, job_id, at=april + timedelta(minutes=5)).status == "refunded"


def test_only_within_24_hours_and_only_finished_results(engine):
    acct = make_account(engine, 200)
    old = finished_job(engine, acct)
    with pytest.raises(reports.ReportError, match="within 24 hours"):
        report(engine, acct, old, at=T0 + timedelta(hours=24, minutes=1))
    with clock.pinned(T0):
        running = submit(engine, acct, IMAGE)
    with pytest.raises(reports.ReportError, match="Only a finished result"):
        report(engine, acct, running.id)


def test_a_result_already_refunded_refunds_nothing_and_one_report_per_result(engine):
    acct = make_account(engine, 200)
    job_id = finished_job(engine, acct)
    report(engine, acct, job_id)
    before = balance(engine, acct)
    with pytest.raises(reports.ReportError, match="already reported"):
        report(engine, acct, job_id)
    assert balance(engine, acct) == before


@pytest.mark.parametrize("bad_reason", ["", "  ", "x", None, 42, ["broken"], "y" * 501])
def test_a_reason_is_required(engine, bad_reason):
    acct = make_account(engine, 200)
    job_id = finished_job(engine, acct)
    with pytest.raises(reports.ReportError):
        report(engine, acct, job_id, bad_reason)
    assert balance(engine, acct) == 200 - COST


@pytest.mark.parametrize("bad_id", [-1, 0, "1; drop", 1.5, None, 10**12])
def test_forged_or_someone_elses_job_reads_as_not_found(engine, bad_id):
    owner, other = make_account(engine, 200), make_account(engine, 200)
    job_id = finished_job(engine, owner)
    with pytest.raises((JobNotFound, reports.ReportError, jobs.GenerationError)):
        report(engine, other, job_id)
    with pytest.raises((JobNotFound, reports.ReportError, jobs.GenerationError)):
        report(engine, other, bad_id)
    assert balance(engine, owner) == 200 - COST and balance(engine, other) == 200


def test_only_another_staff_member_decides(engine):
    acct = make_account(engine, 500)
    ids = [finished_job(engine, acct) for _ in range(4)]
    outs = [report(engine, acct, i) for i in ids]
    staff = staff_member(engine)
    with write_session(engine) as s:
        with pytest.raises(StaffError, match="Only staff"):
            reports.decide(s, outs[3].report_id, acct, accept=True, note="me")
        with pytest.raises(reports.ReportError, match="note"):
            reports.decide(s, outs[3].report_id, staff, accept=False, note="  ")


def test_the_cli_lists_and_decides_with_the_same_rules(sqlite_engine, monkeypatch, capsys):
    """`workroom reports pending|accept|decline`: the staff member's role is checked
    (finance may not), accept twice refunds once, decline needs a note."""
    from workroom_app.cli import main as cli

    monkeypatch.setattr(cli, "_engine", lambda: sqlite_engine)
    acct = make_account(sqlite_engine, 200)
    outs = [report(sqlite_engine, acct, finished_job(sqlite_engine, acct)) for _ in range(5)]
    waiting = [o.report_id for o in outs if o.status == "pending"]
    staff = staff_member(sqlite_engine)
    with write_session(sqlite_engine) as s:
        support = s.get(Account, staff)
        support.role = Role.SUPPORT
        finance = Account(
            email="fin@example.test", password_hash="x", role=Role.FINANCE, created_at=T0
        )
        s.add(finance)
        s.flush()
        support_email, finance_email = support.email, finance.email

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("reports", "pending")
    assert code == 0 and all(f"#{i} " in out for i in waiting)
    code, _, err = run("reports", "accept", str(waiting[0]), "--staff", finance_email)
    assert code == 1 and "Only support and admin" in err
    before = balance(sqlite_engine, acct)
    with clock.pinned(T0 + timedelta(hours=2)):
        code, out, _ = run("reports", "accept", str(waiting[0]), "--staff", support_email)
        assert code == 0 and "16 credits returned" in out
        code, out, _ = run("reports", "accept", str(waiting[0]), "--staff", support_email)
        assert code == 0 and "already accepted" in out
        with pytest.raises(SystemExit):  # argparse: --note is required to decline
            run("reports", "decline", str(waiting[1]), "--staff", support_email)
        code, out, _ = run(
            "reports", "decline", str(waiting[1]), "--staff", support_email, "--note", "Fine."
        )
        assert code == 0 and "Declined" in out
    assert balance(sqlite_engine, acct) == before + COST
    code, out, _ = run("reports", "pending")
    assert "No reports wait for staff." in out
