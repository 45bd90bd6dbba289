"""In Chromium: a user's broken-result report beyond the month's free allowance
waits on /staff/reports; a staff member accepts it, and the user's balance and
Usage show the credits returned."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from tests.support.browser import log_in
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs, reports
from workroom_app.models import ActionType, GrantSource, ResultReport, StaffAudit

pytestmark = pytest.mark.browser

USER = "report-me@example.com"
PASSWORD = "correct horse battery"
IMAGE = {"feature": "image", "model": "flux_pro", "resolution": "2K", "count": 2, "prompt": "fox"}
COST = 16


@pytest.fixture
def waiting_report(app_engine) -> tuple[int, int]:
    """A user with four reported results: three refunded at once, the fourth waiting."""
    with write_session(app_engine) as s:
        account = accounts.sign_up(s, USER, PASSWORD, "Report Me")
        ledger.grant(
            s,
            account.id,
            4 * COST,
            action_type=ActionType.TRIAL_GRANT,
            source=GrantSource.TRIAL,
            idempotency_key=f"e2e-reports:{account.id}",
        )
        account_id = account.id
    outcomes = []
    for i in range(4):
        with write_session(app_engine) as s:
            job = jobs.submit(s, account_id, IMAGE, client_request_id=f"e2e-report-{i}")
            jobs.succeed(s, job.id, f"{account_id}/{job.id}.png", "image/png")
        with write_session(app_engine) as s:
            outcomes.append(reports.report(s, account_id, job.id, f"Melted faces {i}"))
    assert [o.status for o in outcomes] == ["refunded"] * 3 + ["pending"]
    return account_id, outcomes[3].report_id


def test_staff_accept_a_waiting_report_and_the_user_sees_the_refund(
    page, browser, base_url, app_engine, waiting_report
):
    account_id, report_id = waiting_report
    with read_session(app_engine) as s:
        before = ledger.balance(s, account_id)

    log_in(page, "staff@workroom.test", "workroom-staff")
    page.goto("/staff/reports")
    row = page.locator(f'[data-testid="report-row"][data-report-id="{report_id}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("report-reason")).to_contain_text("Melted faces 3")
    expect(row).to_contain_text(USER)
    row.get_by_test_id("report-accept").click()
    expect(
        page.get_by_text(re.compile(rf"Accepted report #{report_id}: 16 credits")).first
    ).to_be_visible()
    expect(row).to_have_count(0)
    page.get_by_test_id("reports-filter-accepted").click()
    expect(row.get_by_test_id("report-decided")).to_contain_text("16 credits returned")
    page.screenshot(path="/tmp/workroom-staff-reports.png", full_page=True)

    with read_session(app_engine) as s:
        refund_entry = s.get(ResultReport, report_id).refund_entry_id
    assert refund_entry is not None
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    user_page = context.new_page()
    try:
        log_in(user_page, USER, PASSWORD)
        expect(user_page.get_by_test_id("balance").first).to_contain_text(f"{before + COST:,}")
        user_page.goto("/usage")
        refund_row = user_page.locator(f'[data-testid="usage-row"][data-entry-id="{refund_entry}"]')
        expect(refund_row.get_by_test_id("usage-action")).to_have_text("Refund")
        expect(refund_row).to_contain_text(f"+{COST}")
        user_page.screenshot(path="/tmp/workroom-usage-report-refund.png", full_page=True)
    finally:
        context.close()

    with read_session(app_engine) as s:
        assert ledger.balance(s, account_id) == before + COST
        assert s.get(ResultReport, report_id).status == "refunded"
        row_audit = s.exec(
            select(StaffAudit).where(StaffAudit.target == f"report:{report_id}")
        ).one()
        assert (row_audit.action, row_audit.result) == ("decide_report", "done")
