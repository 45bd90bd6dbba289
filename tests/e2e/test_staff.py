"""The staff dashboard in Chromium: a staff member finds an account and adds
credits with a reason; a non-staff user sees no Staff link and is bounced."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from tests.support.browser import log_in
from workroom_app.billing import accounts, ledger
from workroom_app.db import read_session
from workroom_app.models import LedgerEntry

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/workroom-staff.png"
CONFIRM_SCREENSHOT = "/tmp/workroom-staff-confirm.png"
TARGET = "free@workroom.test"
REASON = "Goodwill: render failed on ticket 4711"


def _balance_of(engine, email: str) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, accounts.find_account(s, email).id)


def test_staff_adds_credits_to_an_account_with_a_reason(page, app_engine):
    before = _balance_of(app_engine, TARGET)
    log_in(page, "staff@workroom.test", "workroom-staff")
    expect(page).to_have_url(re.compile(r"/staff/?$"))  # staff land on the overview
    page.get_by_test_id("nav-staff").click()
    expect(page).to_have_url(re.compile(r"/staff/?$"))
    expect(page.get_by_test_id("ov-revenue")).to_be_visible()
    page.screenshot(path="/tmp/workroom-staff-overview.png", full_page=True)
    page.get_by_test_id("nav-staff-accounts").click()
    expect(page).to_have_url(re.compile(r"/staff/accounts/?$"))

    page.get_by_test_id("staff-search-input").fill("free@")
    page.get_by_test_id("staff-search").click()
    results = page.get_by_test_id("staff-result")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text(TARGET)
    results.first.click()
    expect(page.get_by_test_id("staff-account-email")).to_have_text(TARGET)
    expect(page.get_by_test_id("staff-account-balance")).to_have_text(f"{before:,}")

    page.get_by_test_id("staff-adjust-open").click()
    page.get_by_test_id("staff-adjust-amount").fill("25")
    page.get_by_test_id("staff-adjust-reason").fill(REASON)
    page.get_by_test_id("staff-adjust-review").click()
    dialog = page.get_by_test_id("staff-confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("staff-confirm-text")).to_have_text(
        f"Add 25 credits to {TARGET}: balance {before:,} \u2192 {before + 25:,}"
    )
    page.screenshot(path=CONFIRM_SCREENSHOT)
    page.get_by_test_id("staff-confirm-apply").click()

    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("staff-account-balance")).to_have_text(f"{before + 25:,}")
    first_row = page.get_by_test_id("staff-ledger-row").first
    expect(first_row.get_by_test_id("staff-ledger-action")).to_have_text("Staff adjustment")
    expect(first_row.get_by_test_id("staff-ledger-amount")).to_have_text("+25")
    expect(first_row).to_contain_text(REASON)
    expect(page.get_by_test_id("staff-result").first).to_contain_text(f"{before + 25:,}")
    expect(page.get_by_text(f"Added 25 credits to {TARGET}")).to_be_visible()
    page.screenshot(path=SCREENSHOT, full_page=True)

    assert _balance_of(app_engine, TARGET) == before + 25
    with read_session(app_engine) as s:
        target = accounts.find_account(s, TARGET)
        staff_member = accounts.find_account(s, "staff@workroom.test")
        row = s.exec(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == target.id)
            .order_by(LedgerEntry.id.desc())
        ).first()
    assert (row.action_type, row.amount, row.reason, row.actor_id) == (
        "staff_adjustment",
        25,
        REASON,
        staff_member.id,
    )


def test_a_non_staff_user_has_no_staff_link_and_is_bounced(page):
    log_in(page, "demo@workroom.test", "workroom-demo")
    expect(page.get_by_test_id("nav-home")).to_be_visible()
    expect(page.get_by_test_id("nav-staff")).to_have_count(0)
    page.goto("/staff")
    expect(page).to_have_url(re.compile(r"/generate/?$"))
    expect(page.get_by_text("The staff dashboard is for staff members only.")).to_be_visible()
    expect(page.get_by_test_id("staff-search-input")).to_have_count(0)
