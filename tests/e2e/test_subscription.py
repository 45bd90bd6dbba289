"""The Subscription page in Chromium: Payment History, Download PDF (its number
and amount are in the file), replacing the card, the empty state, a phone."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, PHONE, fill_card, invoices, log_in, new_user

pytestmark = pytest.mark.browser


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_download_an_invoice_pdf_with_its_number_and_amount(page, app_engine):
    email = new_user(app_engine, plan="pro")
    invoice = invoices(app_engine, email)[0]
    log_in(page, email, PASSWORD)
    page.goto("/subscription")
    row = page.get_by_test_id("payment-row").first
    expect(row.get_by_test_id("payment-amount")).to_have_text("$30.00")
    expect(row.get_by_test_id("payment-number")).to_have_text(invoice.number)
    page.screenshot(path="/tmp/workroom-subscription-desktop.png", full_page=True)
    with page.expect_download() as info:
        row.get_by_test_id("payment-pdf").click()
    download = info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert invoice.number in text and "$30.00" in text


def test_invoice_details_and_another_users_pdf_is_404(page, app_engine):
    other = invoices(app_engine, new_user(app_engine, plan="studio"))[0]
    email = new_user(app_engine, plan="starter")
    log_in(page, email, PASSWORD)
    page.goto("/subscription")
    page.get_by_test_id("payment-number").first.click()
    dialog = page.get_by_test_id("invoice-dialog")
    expect(dialog).to_contain_text("Starter plan")
    expect(dialog).to_contain_text("$10.00")
    page.keyboard.press("Escape")
    # The same browser session asking for someone else's invoice: not found.
    response = page.request.get(f"/api/invoices/{other.id}/pdf")
    assert response.status == 404 and not response.body().startswith(b"%PDF")
    own = invoices(app_engine, email)[0]
    assert page.request.get(f"/api/invoices/{own.id}/pdf").status == 200


def test_replace_the_card_on_file(page, app_engine):
    email = new_user(app_engine, plan="starter")
    log_in(page, email, PASSWORD)
    page.goto("/subscription")
    expect(page.get_by_test_id("sub-card")).to_contain_text("Visa ending in 4242")
    page.get_by_test_id("sub-replace-card").click()
    fill_card(page, "4000000000000002")
    page.get_by_test_id("card-submit").click()
    expect(page.get_by_test_id("card-number-error")).to_have_text("Your card was declined.")
    expect(page.get_by_test_id("sub-card")).to_contain_text("Visa ending in 4242")
    for field in ("card-number", "card-expiry", "card-cvc"):
        page.get_by_test_id(field).fill("")
    fill_card(page, "5555555555554444", expiry="0731", cvc="321", name="Ann")
    page.get_by_test_id("card-submit").click()
    expect(page.get_by_test_id("sub-card")).to_contain_text("Mastercard ending in 4444")


def test_empty_payment_history_and_phone_layout(page, app_engine, base_url):
    email = new_user(app_engine)
    log_in(page, email, PASSWORD)
    page.goto("/subscription")
    expect(page.get_by_test_id("payments-empty")).to_be_visible()
    expect(page.get_by_test_id("sub-plan")).to_have_text("Free")
    page.set_viewport_size(PHONE)
    page.goto("/checkout?plan=studio")
    expect(page.get_by_test_id("checkout-charge")).to_have_text("$80.00")
    page.screenshot(path="/tmp/workroom-checkout-phone.png", full_page=True)
    paid = new_user(app_engine, plan="pro")
    # Another person on another phone (a fresh browser profile).
    page = page.context.browser.new_context(base_url=base_url, viewport=PHONE).new_page()
    page.set_default_timeout(15_000)
    log_in(page, paid, PASSWORD)
    page.goto("/subscription")
    card = page.get_by_test_id("payment-card-mobile").first
    expect(card).to_be_visible()
    expect(card.get_by_test_id("payment-amount")).to_have_text("$30.00")
    page.screenshot(path="/tmp/workroom-subscription-phone.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
