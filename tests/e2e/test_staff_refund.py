"""In Chromium: a finance-capable staff member (the demo admin) finds a user,
refunds part of an invoice with a reason, and the user sees it on Payment
History; the audit trail shows who did it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from tests.support.browser import log_in
from workroom_app.billing import accounts, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import InvoiceRefund, StaffAudit

pytestmark = pytest.mark.browser

USER = "refund-me@example.com"
PASSWORD = "correct horse battery"
REASON = "Charged twice by mistake, ticket 881"


@pytest.fixture
def paying_user(app_engine) -> int:
    with write_session(app_engine) as s:
        existing = accounts.find_account(s, USER)
        if existing is not None:
            return existing.id
        account = accounts.sign_up(s, USER, PASSWORD, "Refund Me")
        subscriptions.subscribe(
            s, account.id, "starter", card=CardForm("4242 4242 4242 4242", 12, 2031, "123", "R")
        )
        return account.id


def test_staff_refunds_an_invoice_and_the_user_sees_it(
    page, browser, base_url, app_engine, paying_user
):
    log_in(page, "staff@workroom.test", "workroom-staff")
    page.goto("/staff/accounts")
    page.get_by_test_id("staff-search-input").fill("refund-me@")
    page.get_by_test_id("staff-search").click()
    expect(page.get_by_test_id("staff-result")).to_have_count(1)
    page.get_by_test_id("staff-result").first.click()
    expect(page.get_by_test_id("staff-account-email")).to_have_text(USER)

    page.get_by_test_id("staff-invoice-refund").first.click()
    page.get_by_test_id("staff-refund-amount").fill("4.00")
    page.get_by_test_id("staff-refund-reason").fill(REASON)
    page.get_by_test_id("staff-refund-review").click()
    expect(page.get_by_test_id("staff-refund-confirm-text")).to_contain_text(
        "Refund $4.00 of invoice"
    )
    page.get_by_test_id("staff-refund-confirm").click()
    expect(page.get_by_text(re.compile(r"Refunded \$4\.00 of WR-")).first).to_be_visible()
    expect(page.get_by_test_id("staff-invoice-status").first).to_have_text("Partly refunded")
    expect(page.get_by_test_id("staff-account-audit")).to_contain_text(REASON)
    page.screenshot(path="/tmp/workroom-staff-refund.png", full_page=True)

    # The queues page lists the refund email in the outbox.
    page.goto("/staff/queues")
    expect(page.get_by_test_id("queue-email").first).to_contain_text("Refund of $4.00")
    page.screenshot(path="/tmp/workroom-staff-queues.png", full_page=True)

    # The user, in their own browser, sees it on Payment History.
    context = browser.new_context(base_url=base_url)
    user_page = context.new_page()
    try:
        log_in(user_page, USER, PASSWORD)
        user_page.goto("/subscription")
        row = user_page.get_by_test_id("payment-row").first
        expect(row.get_by_test_id("payment-status")).to_contain_text("Partly refunded ($4.00)")
        user_page.screenshot(path="/tmp/workroom-payment-history-refund.png", full_page=True)
    finally:
        context.close()

    with read_session(app_engine) as s:
        [refund] = s.exec(
            select(InvoiceRefund).where(InvoiceRefund.account_id == paying_user)
        ).all()
        assert (refund.amount_cents, refund.status, refund.reason) == (400, "succeeded", REASON)
        audit_row = s.exec(select(StaffAudit).where(StaffAudit.account_id == paying_user)).one()
        assert (
            audit_row.action == "refund_invoice" and audit_row.actor_email == "staff@workroom.test"
        )
