"""What the browser tests (tests/e2e) share: accounts made in the served app's database, logging
in and typing a card as a person does, the confirmation link from the outbox."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect
from sqlmodel import select

from workroom_app.billing import accounts, ledger, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import Invoice, OutboxEmail

PASSWORD = "a-long-password"
PHONE = {"width": 390, "height": 844}
JOB_TIMEOUT = 30_000  # the local renderer takes a few seconds per job by default


def log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_selector("[data-testid=balance]")


def confirmation_link(engine, email: str) -> str:
    """The link in the newest confirmation email to `email` (the outbox, no SMTP here)."""
    with read_session(engine) as s:
        mail = s.exec(
            select(OutboxEmail)
            .where(OutboxEmail.to_address == email)
            .order_by(OutboxEmail.id.desc())
        ).first()
    assert mail is not None, "no confirmation email in the outbox"
    found = re.search(r"https?://\S+confirm\S*", mail.body_text)
    assert found, mail.body_text
    return found.group(0)


def new_user(engine, plan: str | None = None) -> str:
    """A fresh account (50 trial credits), optionally already on `plan`."""
    email = f"plans-{uuid.uuid4().hex[:10]}@example.com"
    with write_session(engine) as s:
        account = accounts.sign_up(s, email, PASSWORD, "Plan Tester")
        if plan:
            out = subscriptions.subscribe(
                s,
                account.id,
                plan,
                card=CardForm("4242424242424242", 12, 2030, "123", "Plan Tester"),
            )
            assert out.ok, out.message
    return email


def new_user_with_credits(engine, credits: int) -> str:
    """A fresh Free-plan account holding exactly `credits`."""
    email = f"gen-{uuid.uuid4().hex[:10]}@example.com"
    with write_session(engine) as s:
        account = accounts.sign_up(s, email, PASSWORD, "Gen Tester")
        extra = credits - ledger.balance(s, account.id)
        if extra:
            ledger.staff_adjust(
                s,
                account.id,
                extra,
                reason="browser test",
                actor_id=account.id,
                idempotency_key=f"e2e-{email}",
            )
    return email


def account_id(engine, email: str) -> int:
    with read_session(engine) as s:
        return accounts.find_account(s, email).id


def balance(engine, email: str) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, accounts.find_account(s, email).id)


def invoices(engine, email: str) -> list[Invoice]:
    aid = account_id(engine, email)
    with read_session(engine) as s:
        return list(s.exec(select(Invoice).where(Invoice.account_id == aid).order_by(Invoice.id)))


def fill_card(
    page, number: str, expiry: str = "1230", cvc: str = "123", name: str = "Plan Tester"
) -> None:  # noqa: ANN001
    # Typed key by key, as a person would: the page formats as it goes.
    page.get_by_test_id("card-number").press_sequentially(number)
    page.get_by_test_id("card-expiry").press_sequentially(expiry)
    page.get_by_test_id("card-cvc").press_sequentially(cvc)
    page.get_by_test_id("card-name").fill(name)


def open_generate(page, email: str) -> None:
    log_in(page, email, PASSWORD)
    page.goto("/generate")
    expect(page.get_by_test_id("generate-button")).to_contain_text("Generate ·")


def button(page):
    return page.get_by_test_id("generate-button")
