"""Alerts and past due in Chromium: the balance's popover on Generate says
what expires next and breaks the balance down; a past-due account sees the
banner on every page, replaces the card, pays now, and the banner goes away."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, fill_card, log_in, new_user
from workroom_app.billing import accounts, clock, formatting, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session

pytestmark = pytest.mark.browser


def test_the_expiry_notice_and_the_balance_by_source_are_on_generate(page, app_engine):
    email = new_user(
        app_engine, "starter"
    )  # 50 trial + 800 plan credits, expiring at the period end
    with read_session(app_engine) as s:
        sub = subscriptions.live_subscription(s, accounts.find_account(s, email).id)
        end = sub.current_period_end
    log_in(page, email, PASSWORD)
    page.goto("/generate")
    page.get_by_test_id("balance-trigger").click()
    popover = page.get_by_test_id("balance-popover")
    expect(popover.get_by_test_id("header-expiry")).to_have_text(
        f"800 credits expire on {formatting.format_date(end)}"
    )
    expect(popover.get_by_test_id("balance-part-plan")).to_have_text("800")
    expect(popover.get_by_test_id("balance-part-trial")).to_have_text("50")


def test_past_due_banner_replace_card_pay_now_and_it_goes_away(page, app_engine):
    email = f"due-{uuid.uuid4().hex[:10]}@example.com"
    real_now = clock.now()
    # Subscribed 31 days ago; the renewal today fails (the card on file fails on charge).
    with clock.pinned(real_now - timedelta(days=31)), write_session(app_engine) as s:
        account = accounts.sign_up(s, email, PASSWORD, "Due Tester")
        assert subscriptions.subscribe(
            s, account.id, "starter", card=CardForm("4242424242424242", 12, 2030, "123", "D")
        ).ok
        subscriptions.save_card(s, account.id, CardForm("4000000000000341", 12, 2030, "123", "D"))
    with write_session(app_engine) as s:
        sub = subscriptions.live_subscription(s, account.id)
        out = subscriptions.renew(s, sub.id)
        assert out is not None and not out.ok
    log_in(page, email, PASSWORD)
    banner = page.get_by_test_id("past-due-banner")
    expect(banner).to_contain_text(
        "Your Starter renewal payment of $10.00 failed: Your card was declined."
    )
    page.goto("/usage")
    expect(banner).to_be_visible()  # every page
    banner.get_by_role("button", name="Fix payment").click()
    expect(page).to_have_url(re.compile(r"/subscription"))
    expect(page.get_by_test_id("sub-renewal-date")).to_have_text("Past due")
    expect(page.get_by_test_id("sub-renewal-amount")).to_have_text("$10.00 failed")
    expect(page.get_by_test_id("sub-auto-renew")).to_have_text("Past due")
    page.get_by_test_id("sub-replace-card").click()
    fill_card(page, "4242424242424242")
    page.get_by_test_id("replace-card-form").get_by_test_id("card-submit").click()
    page.get_by_test_id("sub-pay-now").click()
    expect(page.get_by_test_id("sub-auto-renew")).to_have_text("On")
    expect(banner).to_have_count(0)
    expect(page.get_by_test_id("balance")).to_have_text("850 credits")


def test_a_failed_jobs_row_links_to_its_refund_row_on_usage(page, app_engine):
    from workroom_app.generation import jobs
    from workroom_app.models import JobStatus

    email = new_user(app_engine)
    with write_session(app_engine) as s:
        account = accounts.find_account(s, email)
        job = jobs.submit(
            s,
            account.id,
            {
                "feature": "image",
                "model": "flux_pro",
                "resolution": "1K",
                "count": 1,
                "prompt": "a fox",
            },
            client_request_id="e2e-refund-link",
        )
    with write_session(app_engine) as s:
        jobs.fail(s, job.id, JobStatus.FAILED, "The provider failed.")
    for _ in range(3):  # older rows after it, so the link has to page
        with write_session(app_engine) as s:
            from workroom_app.billing import ledger

            ledger.debit(
                s, account.id, 1, feature="image", idempotency_key=f"e2e-after-{job.id}-{_}"
            )
    log_in(page, email, PASSWORD)
    page.goto("/generate")
    link = page.get_by_test_id("history-refund-link").first
    expect(link).to_contain_text("4 credits returned on")
    link.click()
    expect(page).to_have_url(re.compile(r"/usage\?entry=\d+"))
    first = page.get_by_test_id("usage-row").first
    expect(first.get_by_test_id("usage-action")).to_have_text("Refund")
    expect(first.get_by_test_id("usage-amount")).to_have_text("+4")
