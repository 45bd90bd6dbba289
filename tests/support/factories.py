"""The accounts, logins, credits and subscriptions tests start from, made through the real
billing code (sign-up, ledger, subscriptions), and the reads tests check them with.

One place for them, so every test builds "a user on Starter with a card" the same way. Tests
that need a bare row without the sign-up's side effects use tests/support/ledger.py."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from workroom_app.billing import accounts, clock, ledger, packs, subscriptions
from workroom_app.billing.subscriptions import CardForm
from workroom_app.db import read_session, write_session
from workroom_app.models import AccountAlert, Invoice, Role

# "Today" in the tests of the pages (a Tuesday afternoon, mid-period for the plans).
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
VISA = CardForm("4242 4242 4242 4242", 12, 2030, "123", "Ann")
# The same card as the Plans and Buy credits forms send it.
VISA_FORM = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "Ann Lee"}

_counter = iter(range(1, 10**9))


def sign_up(
    engine: Engine,
    email: str | None = None,
    *,
    role: str = Role.USER,
    name: str = "User",
    password: str = PASSWORD,
    extra_credits: int = 0,
) -> int:
    """An account made by the real sign-up (with its trial grant), plus `extra_credits` from a
    staff adjustment; returns its id."""
    email = email or f"user{next(_counter)}@example.com"
    with write_session(engine) as s:
        account_id = accounts.sign_up(s, email, password, name, role=role).id
    if extra_credits:
        add_credits(engine, account_id, extra_credits)
    return account_id


def make_user(
    engine: Engine, email: str, role: str = Role.USER, *, at: datetime | None = NOW
) -> tuple[int, str]:
    """A signed-up account and a login for it (the cookie a browser would carry), both made at
    `at` (None: the clock as it is); returns (account id, login token)."""
    with clock.pinned(at) if at else nullcontext(), write_session(engine) as s:
        acc = accounts.sign_up(s, email, PASSWORD, email.split("@")[0], role=role)
        return acc.id, accounts.create_login(s, acc.id)


def login(engine: Engine | None, email: str) -> str:
    """A new login for an existing account: the cookie a browser that logged in would carry."""
    with write_session(engine) as s:
        return accounts.create_login(s, accounts.find_account(s, email).id)


def add_credits(engine: Engine, account_id: int, credits: int) -> None:
    """`credits` more (or fewer), as one staff adjustment: a ledger row, as staff would."""
    with write_session(engine) as s:
        ledger.staff_adjust(
            s,
            account_id,
            credits,
            reason="test credits",
            actor_id=account_id,
            idempotency_key=f"test-credits-{account_id}",
        )


def set_credits(engine: Engine, account_id: int, credits: int) -> None:
    """Bring the balance to exactly `credits` (one staff adjustment, if it differs)."""
    extra = credits - balance(engine, account_id)
    if extra:
        add_credits(engine, account_id, extra)


def subscribe(
    engine: Engine,
    account_id: int,
    plan: str = "pro",
    card: CardForm | None = VISA,
    *,
    at: datetime | None = None,
):
    """Subscribe through the engine (a card saved, the first period paid) at `at` (None: the
    clock as it is); returns its outcome."""
    with clock.pinned(at) if at else nullcontext(), write_session(engine) as s:
        return subscriptions.subscribe(s, account_id, plan, card=card)


def balance(engine: Engine, account_id: int) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, account_id)


def invoices_of(engine: Engine, account_id: int) -> list[Invoice]:
    with read_session(engine) as s:
        return list(
            s.exec(select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.id))
        )


def spend(engine: Engine, account_id: int, amount: int, key: str):
    """A generation's debit of `amount` credits (an image), idempotent on `key`."""
    with write_session(engine) as s:
        return ledger.debit(s, account_id, amount, feature="image", idempotency_key=key)


def pack_preview(engine: Engine, account_id: int, pack_key: str = "credits_500"):
    with read_session(engine) as s:
        return packs.preview(s, account_id, pack_key)


def buy(
    engine: Engine,
    account_id: int,
    pack_key: str = "credits_500",
    *,
    card: CardForm | None = VISA,
    expected=None,  # noqa: ANN001
):
    """Buy a credit pack as its dialog does: at the price previewed (or `expected`)."""
    expected = expected or pack_preview(engine, account_id, pack_key)
    with write_session(engine) as s:
        return packs.buy(s, account_id, pack_key, card=card, expected_preview=expected)


def alerts_of(engine: Engine, account_id: int, kind: str | None = None) -> list[AccountAlert]:
    with read_session(engine) as s:
        stmt = select(AccountAlert).where(AccountAlert.account_id == account_id)
        if kind:
            stmt = stmt.where(AccountAlert.kind == kind)
        return list(s.exec(stmt.order_by(AccountAlert.id)))
