"""The subscription engine: checkout, renewal, upgrade, downgrade, cancel, resume.

PRODUCT_RULES §5 in code. Gateway-neutral: a gateway takes money; this module
decides what a payment means (the plan activates, credits are granted or
burned, an invoice is written, a receipt is queued) and writes it in ONE
transaction: the caller's ``write_session``. Nothing here commits.

Two layers:
- the *verbs* (``subscribe``, ``renew``, ``change_plan``, ``cancel``, ``resume``)
  lock the account, check the request, charge the card through a gateway that
  can charge directly (the local test mode) and apply the outcome;
- the *record* functions (``activate_from_gateway``, ``record_renewal_paid``,
  ``record_payment_failed``, ``apply_upgrade``, ``apply_downgrade``,
  ``end_subscription``, ``set_cancel_at_period_end``) apply a payment some
  gateway has already taken. The verbs call them; the Stripe webhooks call
  them with what Stripe reports. Each is idempotent on the payment's
  idempotency key (one invoice per key), so a replayed request or a
  duplicated webhook changes nothing.

Locking: every verb first locks the account's balance row, the same row each
ledger write locks (SQLite: the write transaction already holds the database
lock). Two Upgrade clicks therefore run one after the other; the idempotency
key of a plan change is derived from the subscription state the user saw
(``upgrade:<sub>:<from>-><to>:<period start>:<failed attempts>``), so the
second click finds the first one's invoice and returns its answer instead of
charging again.

A declined payment writes a failed invoice (with the reason) and nothing else,
and the verb RETURNS an ``Outcome(ok=False)`` instead of raising, so the
caller's transaction commits that failed row. Bad input raises a
``SubscriptionError`` subclass whose message is shown to the user, before
anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import alerts, clock, formatting, invoices, ledger, periods, receipts
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.cards import BRAND_LABELS, CardInvalid
from workroom_app.billing.payments.gateway import CardOnFile, ChargeResult
from workroom_app.billing.periods import as_utc
from workroom_app.models import (
    Account,
    ActionType,
    GrantSource,
    CreditGrant,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
    Subscription,
    SubscriptionStatus,
)

log = logging.getLogger(__name__)

# Failed renewal: retried this many days after the due date; after the last
# failure the account returns to Free (PRODUCT_RULES §5).
RETRY_DAYS: tuple[int, ...] = (1, 3, 5)

ACTIVATION = "activation"
RENEWAL = "renewal"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"

_LIVE = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)

# Prebuilt Core statements for the renewal path, which a batch run executes
# 100,000 times (building a statement each time costs more than running it).
_S = Subscription.__table__
_PM = PaymentMethod.__table__
_A = Account.__table__
_sub_account_stmt = core_select(_S.c.account_id).where(_S.c.id == bindparam("sid"))
_sub_row_stmt = core_select(_S).where(_S.c.id == bindparam("sid"))
_sub_renewed_stmt = (
    update(_S)
    .where(_S.c.id == bindparam("sid"))
    .values(
        current_period_start=bindparam("p_start"),
        current_period_end=bindparam("p_end"),
        status=SubscriptionStatus.ACTIVE.value,
        failed_attempts=0,
        next_retry_at=None,
        updated_at=bindparam("p_now"),
    )
)
_card_stmt = (
    core_select(_PM.c.gateway_ref, _PM.c.brand, _PM.c.last4, _PM.c.exp_month, _PM.c.exp_year)
    .where(
        _PM.c.account_id == bindparam("aid"),
        _PM.c.is_default.is_(True),
        _PM.c.removed_at.is_(None),
    )
    .order_by(_PM.c.id.desc())
    .limit(1)
)
_email_stmt = core_select(_A.c.email, _A.c.timezone).where(_A.c.id == bindparam("aid"))


# --------------------------------------------------------------------- errors


class SubscriptionError(Exception):
    """A request the engine refuses; the message is shown to the user as is."""


class UnknownPlan(SubscriptionError):
    def __init__(self, plan_key: object = None) -> None:
        super().__init__("That plan does not exist. Choose a plan from the Plans page.")
        self.plan_key = plan_key


class NotAPaidPlan(SubscriptionError):
    """Free is not a plan you subscribe or downgrade to: cancel auto-renewal instead."""


class SamePlan(SubscriptionError):
    pass


class AlreadySubscribed(SubscriptionError):
    pass


class NoSubscription(SubscriptionError):
    pass


class NoPaymentMethod(SubscriptionError):
    pass


class PreviewOutdated(SubscriptionError):
    """What the user confirmed no longer matches the account: nothing was done."""


class PaymentPastDue(SubscriptionError):
    pass


class RenewalInProgress(SubscriptionError):
    pass


class CardRejected(SubscriptionError):
    """The card form or the card itself was refused before any payment."""

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


# ---------------------------------------------------------------- data shapes


@dataclass(frozen=True)
class CardForm:
    """A card typed into the local checkout form (never stored)."""

    number: str
    exp_month: int | str
    exp_year: int | str
    cvc: str
    name: str = ""


@dataclass(frozen=True)
class PaymentFacts:
    """What a gateway reports about one payment attempt; becomes an invoice.

    `idempotency_key` identifies the payment (one invoice per key): the local
    gateway's charge key, or e.g. "stripe:in_123" for a Stripe invoice."""

    ok: bool
    amount_cents: int
    idempotency_key: str
    currency: str = "usd"
    gateway: str = "local"
    gateway_ref: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    failure_reason: str | None = None
    failure_code: str | None = None
    # Neither paid nor failed: the card holder must confirm it (3-D Secure;
    # billing/payment_confirmation.py), at action_url with Stripe.
    requires_action: bool = False
    action_url: str | None = None


@dataclass(frozen=True)
class SubscribePreview:
    account_id: int
    plan_key: str
    plan_name: str
    charge_cents: int
    currency: str
    credits_added: int
    renewal_date: date
    idempotency_key: str

    def same_terms(self, other: SubscribePreview) -> bool:
        return _terms(self) == _terms(other)


@dataclass(frozen=True)
class ChangePreview:
    """Exactly what a plan change will do, shown before the user confirms."""

    kind: str  # "upgrade" | "downgrade"
    account_id: int
    subscription_id: int
    from_plan_key: str
    from_plan_name: str
    to_plan_key: str
    to_plan_name: str
    charge_cents: int
    currency: str
    credits_added: int
    credits_burned: int
    balance_before: int
    balance_after: int
    new_renewal_date: date
    renewal_amount_cents: int  # what each later renewal charges
    idempotency_key: str

    def same_terms(self, other: ChangePreview) -> bool:
        return _terms(self) == _terms(other)


def _terms(preview) -> tuple:
    # Everything the user was shown, balance included: a generation that ran
    # between preview and confirm changes how many credits burn.
    return tuple(
        getattr(preview, f)
        for f in preview.__dataclass_fields__
        if f not in ("plan_name", "from_plan_name", "to_plan_name")
    )


@dataclass(frozen=True)
class Outcome:
    """The result of a verb or record function. ok=False: the payment failed
    (message = the reason); a failed invoice was written and nothing else."""

    ok: bool
    action: str
    message: str
    subscription_id: int | None = None
    plan_key: str | None = None
    invoice_id: int | None = None
    invoice_number: str | None = None
    amount_cents: int = 0
    credits_added: int = 0
    credits_burned: int = 0
    failure_code: str | None = None
    replayed: bool = False  # the same request was already done: nothing changed now
    plan_ended: bool = False  # the account went back to Free
    # The payment waits for the card holder: send them to confirm_url ("Confirm this payment").
    requires_action: bool = False
    confirm_url: str | None = None


@dataclass(frozen=True)
class SubscriptionSummary:
    """What the Subscription page shows."""

    plan_key: str
    plan_name: str
    status: str  # "free" | "active" | "past_due"
    subscription_id: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    next_renewal_date: date | None  # None when not renewing (cancelled, free)
    renewal_amount_cents: int
    cancel_at_period_end: bool
    next_retry_at: datetime | None
    failed_attempts: int
    card: PaymentMethod | None


@dataclass
class RenewReport:
    renewed: int = 0
    failed: int = 0
    ended: int = 0
    errors: dict[int, str] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def processed(self) -> int:
        return self.renewed + self.failed + self.ended


# -------------------------------------------------------------------- helpers


def _catalog():
    from workroom_app.billing import catalog

    return catalog.get_catalog()


def _currency() -> str:
    return getattr(_catalog(), "currency", "usd") or "usd"


def get_plan(plan_key: object):
    """The catalog plan, or UnknownPlan (with a user message) for anything else."""
    if not isinstance(plan_key, str) or not plan_key or len(plan_key) > 32:
        raise UnknownPlan(plan_key)
    try:
        return _catalog().plan(plan_key)
    except LookupError:
        raise UnknownPlan(plan_key) from None


def _paid_plan(plan_key: object):
    plan = get_plan(plan_key)
    if not plan.paid:
        lowest = _catalog().lowest_paid_plan
        raise NotAPaidPlan(
            f"{plan.name} is not a paid plan"
            + (f"; {lowest.name} is the lowest paid plan." if lowest else ".")
            + " To go back to Free, cancel auto-renewal."
        )
    return plan


def _check_account_id(account_id: object) -> int:
    if isinstance(account_id, bool) or not isinstance(account_id, int) or account_id <= 0:
        raise SubscriptionError("Unknown account.")
    return account_id


def _money(cents: int) -> str:
    from workroom_app.billing.invoice_pdf import money

    return money(cents, _currency())


def _fmt_date(d: datetime | date, tz=None) -> str:  # noqa: ANN001  (a ZoneInfo or None: UTC)
    return formatting.format_date(d, tz)


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise SubscriptionError("Unknown account.")
    return account


def live_subscription(session: Session, account_id: int) -> Subscription | None:
    """The account's subscription that is not ended (at most one: a unique index)."""
    return session.exec(
        select(Subscription)
        .where(Subscription.account_id == account_id, Subscription.status.in_(_LIVE))
        .order_by(Subscription.id.desc())
    ).first()


def default_card(session: Session, account_id: int) -> PaymentMethod | None:
    return session.exec(
        select(PaymentMethod)
        .where(
            PaymentMethod.account_id == account_id,
            PaymentMethod.is_default.is_(True),
            PaymentMethod.removed_at.is_(None),
        )
        .order_by(PaymentMethod.id.desc())
    ).first()


def card_to_charge(
    session: Session,
    gateway,
    account_id: int,
    card: CardForm | None,
    *,  # noqa: ANN001
    unsupported: type[Exception],
    no_card_message: str,
) -> PaymentMethod:
    """The card a payment charges: the one typed in (stored by the gateway; a refused number
    raises CardRejected naming the field) or, with none typed, the card on file."""
    if card is None:
        on_file = default_card(session, account_id)
        if on_file is None:
            raise NoPaymentMethod(no_card_message)
        return on_file
    if not hasattr(gateway, "tokenize"):
        raise unsupported("This payment provider takes cards on its own checkout page.")
    try:
        stored, _ = gateway.tokenize(
            session, account_id, card.number, card.exp_month, card.exp_year, card.cvc
        )
    except CardInvalid as exc:
        raise CardRejected(str(exc), field=exc.field, code=exc.code) from None
    return stored


def _lock(session: Session, account_id: int) -> None:
    invoices.lock_account(session, account_id)


def _reload(session: Session, sub: Subscription) -> Subscription:
    """Re-read after taking the lock: the caller may hold a stale copy (or one
    from another session, e.g. a webhook handler's)."""
    session.flush()
    fresh = session.get(Subscription, sub.id, populate_existing=True)
    if fresh is None:
        raise NoSubscription("No such subscription.")
    return fresh


def _plan_credits_left(session: Session, subscription_id: int, now: datetime) -> int:
    """Credits left in the subscription's live grants (what a downgrade burns).
    Grants past their expiry are excluded: they are gone whatever happens."""
    total = session.exec(
        select(func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(
            CreditGrant.subscription_id == subscription_id,
            CreditGrant.amount_left > 0,
            or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
        )
    ).one()
    return int(total)


def _live_balance(session: Session, account_id: int, now: datetime) -> int:
    """The balance that can be spent now (grants past expiry not counted)."""
    total = session.exec(
        select(func.coalesce(func.sum(CreditGrant.amount_left), 0)).where(
            CreditGrant.account_id == account_id,
            CreditGrant.amount_left > 0,
            or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
        )
    ).one()
    return int(total)


def _failed_count(session: Session, account_id: int, kind: str, subscription_id: int | None) -> int:
    stmt = select(func.count()).where(
        Invoice.account_id == account_id,
        Invoice.kind == kind,
        Invoice.status == InvoiceStatus.FAILED.value,
    )
    if subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == subscription_id)
    return int(session.exec(stmt).one())


def _replay(invoice: Invoice, action: str) -> Outcome:
    ok = invoice.status != InvoiceStatus.FAILED
    return Outcome(
        ok=ok,
        action=action,
        message=(
            "This was already done: nothing changed."
            if ok
            else (invoice.failure_reason or "The payment failed.")
        ),
        subscription_id=invoice.subscription_id,
        plan_key=invoice.plan_key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        failure_code=invoice.failure_code,
        replayed=True,
    )


def _facts(
    charge: ChargeResult, card: Any, amount_cents: int, key: str, gateway_name: str
) -> PaymentFacts:
    return PaymentFacts(
        ok=charge.ok,
        amount_cents=amount_cents,
        idempotency_key=key,
        currency=_currency(),
        gateway=gateway_name,
        gateway_ref=charge.gateway_ref,
        card_brand=getattr(card, "brand", None),
        card_last4=getattr(card, "last4", None),
        failure_reason=charge.failure_reason,
        failure_code=charge.failure_code,
        requires_action=charge.requires_action,
        action_url=charge.action_url,
    )


def _no_card_facts(amount_cents: int, key: str, gateway_name: str) -> PaymentFacts:
    return PaymentFacts(
        ok=False,
        amount_cents=amount_cents,
        idempotency_key=key,
        currency=_currency(),
        gateway=gateway_name,
        failure_reason="No card on file. Add a card on the Subscription page.",
        failure_code="no_payment_method",
    )


def _charge(
    session: Session,
    gateway,
    account_id: int,
    card: Any,
    amount_cents: int,
    description: str,
    key: str,
    *,
    off_session: bool = False,
) -> PaymentFacts:
    if card is None:
        return _no_card_facts(amount_cents, key, gateway.name)
    result = gateway.charge(
        account_id,
        card,
        amount_cents,
        _currency(),
        description,
        key,
        session=session,
        off_session=off_session,
    )
    return _facts(result, card, amount_cents, key, gateway.name)


def _period_label(start: datetime, end: datetime) -> str:
    return f"{_fmt_date(as_utc(start))} to {_fmt_date(as_utc(end))}"


def _write_invoice(
    session: Session,
    account_id: int,
    *,
    kind: str,
    payment: PaymentFacts,
    lines: list[LineItem],
    subscription_id: int | None,
    plan_key: str | None,
    period_start: datetime | None,
    period_end: datetime | None,
) -> tuple[Invoice, bool]:
    if payment.amount_cents < 0:
        raise SubscriptionError("A payment amount cannot be negative.")
    return invoices.create_invoice(
        session,
        account_id,
        kind=kind,
        status=InvoiceStatus.PAID.value if payment.ok else InvoiceStatus.FAILED.value,
        amount_cents=payment.amount_cents,
        idempotency_key=payment.idempotency_key,
        lines=lines,
        currency=payment.currency,
        subscription_id=subscription_id,
        plan_key=plan_key,
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        period_start=period_start,
        period_end=period_end,
        failure_reason=None if payment.ok else (payment.failure_reason or "The payment failed."),
        failure_code=None if payment.ok else payment.failure_code,
        gateway=payment.gateway,
        gateway_ref=payment.gateway_ref,
    )


def _receipt(session: Session, invoice: Invoice, plan_name: str | None) -> None:
    row = session.connection().execute(_email_stmt, {"aid": invoice.account_id}).first()
    if row is not None and row.email is not None:
        # The zone comes with the address: no second query per renewal.
        receipts.queue_receipt(
            session,
            invoice,
            to_address=row.email,
            plan_name=plan_name,
            time_zone=formatting.zone(row.timezone),
        )


def _card_on_file(session: Session, account_id: int) -> CardOnFile | None:
    row = session.connection().execute(_card_stmt, {"aid": account_id}).first()
    return CardOnFile(*row) if row is not None else None


def _failed_outcome(
    invoice: Invoice, action: str, subscription_id: int | None, plan_key: str | None
) -> Outcome:
    return Outcome(
        ok=False,
        action=action,
        message=invoice.failure_reason or "The payment failed.",
        subscription_id=subscription_id,
        plan_key=plan_key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        failure_code=invoice.failure_code,
    )


def record_failed_attempt(
    session: Session,
    account_id: int,
    *,
    kind: str,
    payment: PaymentFacts,
    plan_key: str | None,
    subscription_id: int | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    description: str | None = None,
) -> Outcome:
    """A declined checkout/upgrade/downgrade: a failed invoice with the reason,
    nothing else (no plan change, no credits, no receipt)."""
    if payment.ok:
        raise SubscriptionError("record_failed_attempt needs a failed payment.")
    _lock(session, account_id)
    plan = get_plan(plan_key) if plan_key else None
    lines = [
        LineItem(description or (f"{plan.name} plan" if plan else "Payment"), payment.amount_cents)
    ]
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=kind,
        payment=payment,
        lines=lines,
        subscription_id=subscription_id,
        plan_key=plan_key,
        period_start=period_start,
        period_end=period_end,
    )
    return _failed_outcome(invoice, kind, subscription_id, plan_key)


# ------------------------------------------------------------------ payment methods


def store_card(
    session: Session, account_id: int, card: CardOnFile, *, gateway: str = "local"
) -> PaymentMethod:
    """Make `card` the account's card on file (the previous one is kept, removed)."""
    now = clock.now()
    for old in session.exec(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id, PaymentMethod.removed_at.is_(None)
        )
    ):
        old.is_default = False
        old.removed_at = now
        session.add(old)
    pm = PaymentMethod(
        account_id=account_id,
        gateway=gateway,
        gateway_ref=card.gateway_ref,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=True,
        created_at=now,
    )
    session.add(pm)
    session.flush()
    return pm


def save_card(session: Session, account_id: int, form: CardForm, *, gateway=None) -> PaymentMethod:
    """Replace the card on file from the local card form. Raises CardRejected
    (bad number/expiry/CVC, or a decline number) and then saves nothing."""
    from workroom_app.billing.payments.local import CardDeclined

    account_id = _check_account_id(account_id)
    _account(session, account_id)
    gateway = gateway or get_gateway()
    if not hasattr(gateway, "attach"):
        raise SubscriptionError("Cards are managed on the payment provider's page.")
    _lock(session, account_id)
    try:
        card = gateway.attach(
            session, account_id, form.number, form.exp_month, form.exp_year, form.cvc
        )
    except CardInvalid as exc:
        raise CardRejected(str(exc), field=exc.field, code=exc.code) from None
    except CardDeclined as exc:
        raise CardRejected(str(exc), field="number", code=exc.code) from None
    return store_card(session, account_id, card, gateway=gateway.name)


# -------------------------------------------------------------------- checkout


def _subscribe_key(session: Session, account_id: int, plan_key: str) -> str:
    # Derived from the account's state: a double submit shares it (charged
    # once); a retry after a decline or after a plan ended gets a new one.
    n_subs = session.exec(select(func.count()).where(Subscription.account_id == account_id)).one()
    n_failed = _failed_count(session, account_id, ACTIVATION, None)
    return f"activation:{account_id}:{plan_key}:{n_subs}:{n_failed}"


def preview_subscribe(session: Session, account_id: int, plan_key: str) -> SubscribePreview:
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    if live_subscription(session, account_id) is not None:
        raise AlreadySubscribed("You already have a plan. Upgrade or downgrade it instead.")
    now = clock.now()
    _, end, _ = periods.first_period(now)
    return SubscribePreview(
        account_id=account_id,
        plan_key=plan.key,
        plan_name=plan.name,
        charge_cents=plan.price_cents,
        currency=_currency(),
        credits_added=plan.monthly_credits,
        renewal_date=end.date(),
        idempotency_key=_subscribe_key(session, account_id, plan.key),
    )


def subscribe(
    session: Session,
    account_id: int,
    plan_key: str,
    *,
    card: CardForm | None = None,
    expected_preview: SubscribePreview | None = None,
    gateway=None,
) -> Outcome:
    """Checkout with a gateway that charges directly (local test mode).

    With `card`, that card is charged and, if the payment succeeds, saved as
    the card on file; without it the saved card is charged. The plan activates
    the moment the payment succeeds. Declined: a failed invoice, nothing else."""
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    _account(session, account_id)
    gateway = gateway or get_gateway()
    _lock(session, account_id)
    if expected_preview is not None:
        if expected_preview.account_id != account_id or expected_preview.plan_key != plan.key:
            raise PreviewOutdated(
                "This confirmation is for a different plan. Please review it again."
            )
        done = invoices.find_by_key(session, expected_preview.idempotency_key)
        if done is not None:
            return _replay(done, ACTIVATION)
    preview = preview_subscribe(session, account_id, plan.key)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise PreviewOutdated(
            "The price or terms changed since you reviewed them. Nothing was charged; please review again."
        )
    key = preview.idempotency_key
    done = invoices.find_by_key(session, key)
    if done is not None:
        return _replay(done, ACTIVATION)

    now = clock.now()
    start, end, anchor = periods.first_period(now)
    card_on_file = card_to_charge(
        session,
        gateway,
        account_id,
        card,
        unsupported=SubscriptionError,
        no_card_message="Add a card to subscribe.",
    )
    payment = _charge(
        session,
        gateway,
        account_id,
        card_on_file,
        plan.price_cents,
        f"Workroom {plan.name} plan",
        key,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            account_id,
            ACTIVATION,
            payment,
            f"the {plan.name} plan",
            {"plan_key": plan.key, **_card_details(card_on_file, "always" if card else None)},
            "/subscription",
        )
    if not payment.ok:
        return record_failed_attempt(
            session,
            account_id,
            kind=ACTIVATION,
            payment=payment,
            plan_key=plan.key,
            period_start=start,
            period_end=end,
        )
    if card is not None:
        store_card(session, account_id, card_on_file, gateway=gateway.name)
    return activate_from_gateway(
        session,
        account_id,
        plan.key,
        period_start=start,
        period_end=end,
        payment=payment,
        anchor_day=anchor,
    )


def activate_from_gateway(
    session: Session,
    account_id: int,
    plan_key: str,
    *,
    period_start: datetime,
    period_end: datetime,
    payment: PaymentFacts,
    gateway_subscription_id: str | None = None,
    anchor_day: int | None = None,
) -> Outcome:
    """A paid checkout: the subscription starts, its monthly credits are granted
    at once (Subscription credits, expiring at the period end), a paid invoice
    and a receipt are written. Idempotent on payment.idempotency_key and on
    gateway_subscription_id."""
    account_id = _check_account_id(account_id)
    plan = _paid_plan(plan_key)
    if not payment.ok:
        raise SubscriptionError("A subscription activates only after a successful payment.")
    period_start, period_end = as_utc(period_start), as_utc(period_end)
    if period_end <= period_start:
        raise SubscriptionError("The billing period must end after it starts.")
    _lock(session, account_id)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, ACTIVATION)
    if gateway_subscription_id:
        same = session.exec(
            select(Subscription).where(
                Subscription.gateway_subscription_id == gateway_subscription_id
            )
        ).first()
        if same is not None:
            return Outcome(
                ok=True,
                action=ACTIVATION,
                message="This subscription is already active.",
                subscription_id=same.id,
                plan_key=same.plan_key,
                replayed=True,
            )
    if live_subscription(session, account_id) is not None:
        raise AlreadySubscribed("You already have a plan. Upgrade or downgrade it instead.")
    now = clock.now()
    sub = Subscription(
        account_id=account_id,
        plan_key=plan.key,
        status=SubscriptionStatus.ACTIVE.value,
        gateway=payment.gateway,
        gateway_subscription_id=gateway_subscription_id,
        anchor_day=anchor_day or period_start.day,
        current_period_start=period_start,
        current_period_end=period_end,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    session.flush()
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=ACTIVATION,
        payment=payment,
        lines=[
            LineItem(
                f"{plan.name} plan, {_period_label(period_start, period_end)}", payment.amount_cents
            )
        ],
        subscription_id=sub.id,
        plan_key=plan.key,
        period_start=period_start,
        period_end=period_end,
    )
    credits = 0
    if plan.monthly_credits > 0:
        ledger.grant(
            session,
            account_id,
            plan.monthly_credits,
            action_type=ActionType.SUBSCRIPTION_CREDITS,
            source=GrantSource.SUBSCRIPTION,
            idempotency_key=f"activation-credits:{sub.id}",
            expires_at=period_end,
            subscription_id=sub.id,
            reference_type="invoice",
            reference_id=str(invoice.id),
        )
        credits = plan.monthly_credits
    _receipt(session, invoice, plan.name)
    alerts.forget(account_id)  # the default low-balance threshold follows the plan
    return Outcome(
        ok=True,
        action=ACTIVATION,
        message=f"You're on {plan.name}. {credits:,} credits were added to your balance.",
        subscription_id=sub.id,
        plan_key=plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=credits,
    )


# ---------------------------------------------------- payments the card holder must confirm


def _needs_confirmation(
    session: Session,
    account_id: int,
    kind: str,
    payment: PaymentFacts,
    description: str,
    details: dict,
    return_path: str,
) -> Outcome:
    """3-D Secure: the payment waits for its card holder (billing/payment_confirmation.py)."""
    from workroom_app.billing import payment_confirmation  # noqa: PLC0415  (it builds on this module)

    return payment_confirmation.require(
        session,
        account_id,
        kind=kind,
        payment=payment,
        description=description,
        details=details,
        return_path=return_path,
    )


def _card_details(card: Any, store: str | None) -> dict:
    """A typed-in card to save once its payment is confirmed ("always", "if_none")."""
    if store is None or card is None:
        return {}
    fields = ("gateway_ref", "brand", "last4", "exp_month", "exp_year")
    return {"store_card": store, "card": {f: getattr(card, f) for f in fields}}


def _renewal_details(
    sub_id: int, plan_key: str, due_at: datetime, start: datetime, end: datetime, *, pay_now: bool
) -> dict:
    return {
        "subscription_id": sub_id,
        "plan_key": plan_key,
        "due_at": as_utc(due_at).isoformat(),
        "period_start": as_utc(start).isoformat(),
        "period_end": as_utc(end).isoformat(),
        "pay_now": pay_now,
    }


def _waiting_renewal(session: Session, sub: Subscription) -> Outcome | None:
    """Pay now while this renewal already waits for confirmation: that one, not a second charge."""
    from workroom_app.billing import payment_confirmation  # noqa: PLC0415  (it builds on this module)

    return payment_confirmation.waiting_renewal(session, sub)


# -------------------------------------------------------------------- renewal


def _is_due(sub: Subscription, now: datetime) -> bool:
    if sub.status == SubscriptionStatus.ACTIVE:
        return as_utc(sub.current_period_end) <= now
    if sub.status == SubscriptionStatus.PAST_DUE:
        return sub.next_retry_at is not None and as_utc(sub.next_retry_at) <= now
    return False


def renew(
    session: Session, subscription_id: int, *, now: datetime | None = None, gateway=None
) -> Outcome | None:
    """Take a due renewal payment (or a scheduled retry) for a local subscription.

    Paid: the previous period's plan credits expire (an Expiry row) and the
    new Monthly credits are added. Failed: past due, retries on days 1, 3 and 5
    after the due date, then back to Free. A cancelled plan ends instead.
    Returns None when nothing is due (so running it twice does nothing twice)."""
    now = as_utc(now or clock.now())
    conn = session.connection()
    account_id = conn.execute(_sub_account_stmt, {"sid": subscription_id}).scalar()
    if account_id is None:
        raise NoSubscription("No such subscription.")
    _lock(session, account_id)
    session.flush()
    # A plain row (read after the lock), not an ORM object: this is the hot
    # path of a batch run. The ORM is used on the rare paths below.
    sub = conn.execute(_sub_row_stmt, {"sid": subscription_id}).first()
    if not _is_due(sub, now):
        return None
    if sub.cancel_at_period_end:
        return end_subscription(
            session, session.get(Subscription, sub.id), reason="cancelled", now=now
        )
    plan = get_plan(sub.plan_key)
    due_at = as_utc(sub.current_period_end)
    start, end = periods.period_containing(due_at, sub.anchor_day, now)
    attempt = sub.failed_attempts + 1
    key = f"renewal:{sub.id}:{due_at.isoformat()}:{attempt}"
    done = invoices.find_by_key(session, key)
    if done is not None:
        return _replay(done, RENEWAL)
    gateway = gateway or get_gateway(sub.gateway)
    payment = _charge(
        session,
        gateway,
        sub.account_id,
        _card_on_file(session, sub.account_id),
        plan.price_cents,
        f"Workroom {plan.name} plan renewal",
        key,
        off_session=True,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            sub.account_id,
            RENEWAL,
            payment,
            f"your {plan.name} renewal",
            _renewal_details(sub.id, plan.key, due_at, start, end, pay_now=False),
            "/subscription",
        )
    if payment.ok:
        return _apply_renewal(session, sub, period_start=start, period_end=end, payment=payment)
    return record_payment_failed(
        session, session.get(Subscription, sub.id), payment=payment, due_at=due_at, now=now
    )


def pay_now(session: Session, account_id: int, *, gateway=None) -> Outcome:
    """ "Pay now" on a past-due plan (after replacing the card): charge the failed
    renewal at once, without waiting for the next scheduled retry. Paid, it
    renews exactly as an on-time renewal would (the same period from the due
    date, the same Expiry and Monthly credits rows, the same invoice and
    receipt). Declined, it writes a failed invoice with the reason and leaves
    the retry schedule as it was (a user trying again never ends the plan
    sooner). Two clicks charge once: the key names the failed attempts so far."""
    account_id = _check_account_id(account_id)
    _account(session, account_id)
    _lock(session, account_id)
    sub = live_subscription(session, account_id)
    if sub is None or sub.status != SubscriptionStatus.PAST_DUE:
        raise NoSubscription("There is no failed payment to pay: your plan is paid up.")
    if sub.gateway != "local":
        raise SubscriptionError(
            "Stripe retries this payment with your new card on its own schedule; there is nothing to pay here."
        )
    waiting = _waiting_renewal(session, sub)
    if waiting is not None:
        return waiting
    card = _card_on_file(session, account_id)
    if card is None:
        raise NoPaymentMethod("Add a card to pay now.")
    now = clock.now()
    plan = get_plan(sub.plan_key)
    due_at = as_utc(sub.current_period_end)
    start, end = periods.period_containing(due_at, sub.anchor_day, now)
    n_failed = _failed_count(session, account_id, RENEWAL, sub.id)
    key = f"renewal:{sub.id}:{due_at.isoformat()}:pay-now:{n_failed}"
    done = invoices.find_by_key(session, key)
    if done is not None:
        return _replay(done, RENEWAL)
    gateway = gateway or get_gateway(sub.gateway)
    payment = _charge(
        session,
        gateway,
        account_id,
        card,
        plan.price_cents,
        f"Workroom {plan.name} plan renewal",
        key,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            account_id,
            RENEWAL,
            payment,
            f"your {plan.name} renewal",
            _renewal_details(sub.id, plan.key, due_at, start, end, pay_now=True),
            "/subscription",
        )
    if payment.ok:
        outcome = _apply_renewal(session, sub, period_start=start, period_end=end, payment=payment)
        session.expire(sub)  # updated below the ORM
        return outcome
    invoice, _ = _write_invoice(
        session,
        account_id,
        kind=RENEWAL,
        payment=payment,
        lines=[LineItem(f"{plan.name} plan, {_period_label(start, end)}", payment.amount_cents)],
        subscription_id=sub.id,
        plan_key=plan.key,
        period_start=start,
        period_end=end,
    )
    return _failed_outcome(invoice, RENEWAL, sub.id, plan.key)


def record_renewal_paid(
    session: Session,
    subscription: Subscription,
    *,
    period_start: datetime,
    period_end: datetime,
    payment: PaymentFacts,
) -> Outcome:
    """A paid renewal, in one transaction: paid invoice, the previous period's
    plan credits expire (Expiry row), the new Monthly credits are granted until
    `period_end`, the subscription moves to the new period, receipt queued."""
    if not payment.ok:
        raise SubscriptionError("record_renewal_paid needs a successful payment.")
    sub = subscription
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, RENEWAL)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    outcome = _apply_renewal(
        session, sub, period_start=period_start, period_end=period_end, payment=payment
    )
    session.expire(sub)  # updated below the ORM
    return outcome


def _start_paid_period(
    session: Session,
    sub: Any,
    plan: Any,
    *,
    kind: str,
    payment: PaymentFacts,
    period_start: datetime,
    period_end: datetime,
    burn_action: str,
    burn_key: str,
    grant_action: str,
    grant_source: str,
    grant_key: str,
):
    """A paid period of `plan` begins (renewal, downgrade): the invoice, the
    credits the subscription granted before burned, the plan's monthly credits
    granted until `period_end`. Ledger keys derive from the invoice, so a replay
    changes nothing. Returns (invoice, burn result or None, credits granted)."""
    invoice, _ = _write_invoice(
        session,
        sub.account_id,
        kind=kind,
        payment=payment,
        lines=[
            LineItem(
                f"{plan.name} plan, {_period_label(period_start, period_end)}", payment.amount_cents
            )
        ],
        subscription_id=sub.id,
        plan_key=plan.key,
        period_start=period_start,
        period_end=period_end,
    )
    burned = ledger.burn_subscription_grants(
        session,
        sub.account_id,
        sub.id,
        action_type=burn_action,
        idempotency_key=f"{burn_key}:{invoice.id}",
        reference_type="invoice",
        reference_id=str(invoice.id),
    )
    credits = 0
    if plan.monthly_credits > 0:
        ledger.grant(
            session,
            sub.account_id,
            plan.monthly_credits,
            action_type=grant_action,
            source=grant_source,
            idempotency_key=f"{grant_key}:{invoice.id}",
            expires_at=period_end,
            subscription_id=sub.id,
            reference_type="invoice",
            reference_id=str(invoice.id),
        )
        credits = plan.monthly_credits
    return invoice, burned, credits


def _apply_renewal(
    session: Session,
    sub: Any,
    *,
    period_start: datetime,
    period_end: datetime,
    payment: PaymentFacts,
) -> Outcome:
    """The renewal's writes; `sub` is a Subscription or a row of it, locked."""
    period_start, period_end = as_utc(period_start), as_utc(period_end)
    plan = get_plan(sub.plan_key)
    invoice, burned, credits = _start_paid_period(
        session,
        sub,
        plan,
        kind=RENEWAL,
        payment=payment,
        period_start=period_start,
        period_end=period_end,
        burn_action=ActionType.EXPIRY,
        burn_key="renewal-expiry",
        grant_action=ActionType.MONTHLY_CREDITS,
        grant_source=GrantSource.MONTHLY,
        grant_key="monthly-credits",
    )
    session.connection().execute(
        _sub_renewed_stmt,
        {"sid": sub.id, "p_start": period_start, "p_end": period_end, "p_now": clock.now()},
    )
    notifications.announce(session, sub.account_id, notifications.SUBSCRIPTION)
    _receipt(session, invoice, plan.name)
    return Outcome(
        ok=True,
        action=RENEWAL,
        message=f"Renewed {plan.name}: {credits:,} credits added.",
        subscription_id=sub.id,
        plan_key=plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=credits,
        credits_burned=-burned.amount if burned is not None and burned.created else 0,
    )


def record_payment_failed(
    session: Session,
    subscription: Subscription,
    *,
    payment: PaymentFacts,
    due_at: datetime | None = None,
    now: datetime | None = None,
    schedule_retries: bool = True,
) -> Outcome:
    """A renewal payment failed: a failed invoice (with the reason), the
    subscription is past due, the previous period's credits expire at its end
    (not before), no new credits. With schedule_retries (local gateway) the next
    retry is due_at + 1, 3, 5 days and the last failure ends the plan; a gateway
    that retries on its own (Stripe) passes False and ends it with
    end_subscription when it gives up."""
    if payment.ok:
        raise SubscriptionError("record_payment_failed needs a failed payment.")
    sub = subscription
    now = as_utc(now or clock.now())
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, RENEWAL)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    plan = get_plan(sub.plan_key)
    due_at = as_utc(due_at or sub.current_period_end)
    next_end = periods.period_end(due_at, sub.anchor_day)
    invoice, _ = _write_invoice(
        session,
        sub.account_id,
        kind=RENEWAL,
        payment=payment,
        lines=[
            LineItem(f"{plan.name} plan, {_period_label(due_at, next_end)}", payment.amount_cents)
        ],
        subscription_id=sub.id,
        plan_key=plan.key,
        period_start=due_at,
        period_end=next_end,
    )
    # The previous period's credits expire at its end whether or not we are paid.
    ledger.expire_due(session, now=now, account_id=sub.account_id)
    sub.failed_attempts += 1
    sub.status = SubscriptionStatus.PAST_DUE.value
    sub.updated_at = clock.now()
    if schedule_retries:
        if sub.failed_attempts > len(RETRY_DAYS):
            session.add(sub)
            end_subscription(session, sub, reason="payment_failed", now=now)
            return Outcome(
                ok=False,
                action=RENEWAL,
                message=f"{invoice.failure_reason} The last retry failed: the account is back on Free.",
                subscription_id=sub.id,
                plan_key=plan.key,
                invoice_id=invoice.id,
                invoice_number=invoice.number,
                amount_cents=invoice.amount_cents,
                failure_code=invoice.failure_code,
                plan_ended=True,
            )
        sub.next_retry_at = due_at + timedelta(days=RETRY_DAYS[sub.failed_attempts - 1])
    session.add(sub)
    alerts.payment_failed(
        session,
        sub.account_id,
        invoice_id=invoice.id,
        plan_name=plan.name,
        amount_text=_money(invoice.amount_cents),
        reason=invoice.failure_reason or "The payment failed.",
        next_retry_at=as_utc(sub.next_retry_at) if schedule_retries and sub.next_retry_at else None,
    )
    return _failed_outcome(invoice, RENEWAL, sub.id, plan.key)


def end_subscription(
    session: Session,
    subscription: Subscription,
    *,
    reason: str = "ended",
    now: datetime | None = None,
) -> Outcome:
    """The plan ends: its remaining credits expire (an Expiry row) and the
    account is on Free. Ending twice changes nothing."""
    sub = subscription
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    if sub.status == SubscriptionStatus.ENDED:
        return Outcome(
            ok=True,
            action="end",
            message="This plan has already ended.",
            subscription_id=sub.id,
            plan_key=sub.plan_key,
            replayed=True,
        )
    now = as_utc(now or clock.now())
    burned = ledger.burn_subscription_grants(
        session,
        sub.account_id,
        sub.id,
        action_type=ActionType.EXPIRY,
        idempotency_key=f"subscription-end:{sub.id}",
        reference_type="subscription",
        reference_id=str(sub.id),
    )
    sub.status = SubscriptionStatus.ENDED.value
    sub.ended_at = clock.now()
    sub.next_retry_at = None
    sub.updated_at = clock.now()
    session.add(sub)
    plan = get_plan(sub.plan_key)
    alerts.plan_ended(session, sub.account_id, subscription_id=sub.id, plan_name=plan.name)
    alerts.forget(sub.account_id)
    return Outcome(
        ok=True,
        action="end",
        message=f"Your {plan.name} plan has ended ({reason}). You're on Free.",
        subscription_id=sub.id,
        plan_key=sub.plan_key,
        credits_burned=-burned.amount if burned is not None else 0,
        plan_ended=True,
    )


def _due_ids(session: Session, now: datetime, gateway_name: str) -> list[int]:
    # All at once (ints: 100,000 of them is under a megabyte): paging this
    # query with "id > last LIMIT n" made the database re-scan and sort every
    # still-due row for each page, quadratic in the backlog.
    return list(
        session.exec(
            select(Subscription.id)
            .where(
                Subscription.gateway == gateway_name,
                or_(
                    (Subscription.status == SubscriptionStatus.ACTIVE.value)
                    & (Subscription.current_period_end <= now),
                    (Subscription.status == SubscriptionStatus.PAST_DUE.value)
                    & (Subscription.next_retry_at <= now),
                ),
            )
            .order_by(Subscription.id)
        )
    )


def _renew_batch(engine: Engine, ids: list[int], now: datetime, gateway) -> RenewReport:
    """One transaction for a batch; each renewal in its own savepoint."""
    from workroom_app.db import write_session

    report = RenewReport()
    with write_session(engine) as session:
        for sub_id in ids:
            try:
                with session.begin_nested():
                    outcome = renew(session, sub_id, now=now, gateway=gateway)
            except Exception as exc:  # one bad subscription must not stop the others
                invoices.forget_locks(session)
                log.exception("renewal of subscription %s failed", sub_id)
                report.errors[sub_id] = f"{exc.__class__.__name__}: {exc}"
                continue
            if outcome is None:
                continue
            if outcome.plan_ended:
                report.ended += 1
            elif outcome.ok:
                report.renewed += 1
            else:
                report.failed += 1
    return report


def renew_due(
    engine: Engine,
    now: datetime | None = None,
    *,
    batch_size: int = 200,
    gateway=None,
    max_passes: int = 24,
    workers: int = 1,
) -> RenewReport:
    """Renew every due local subscription and run every due retry.

    What the worker's scheduler and `workroom renew --due` call. Subscriptions
    are taken in id order, `batch_size` per transaction (one commit per batch
    instead of per renewal); each renewal runs in a savepoint, so one that
    errors is rolled back alone and reported. `workers` > 1 runs batches in
    parallel threads on PostgreSQL (batches hold disjoint accounts, so they
    never wait on each other's locks); SQLite has one writer, so it stays
    sequential there. Passes repeat while something was due (after a long
    clock jump one subscription may owe several retries)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from workroom_app.db import is_sqlite, read_session

    started = time.perf_counter()
    now = as_utc(now or clock.now())
    gateway = gateway or get_gateway("local")
    batch_size = max(1, int(batch_size))
    workers = 1 if is_sqlite(engine) else max(1, int(workers))
    report = RenewReport()

    def merge(part: RenewReport) -> int:
        report.renewed += part.renewed
        report.failed += part.failed
        report.ended += part.ended
        report.errors.update(part.errors)
        return part.processed

    def batches():
        with read_session(engine) as session:
            due = [i for i in _due_ids(session, now, gateway.name) if i not in report.errors]
        for k in range(0, len(due), batch_size):
            yield due[k : k + batch_size]

    for _ in range(max_passes):
        progress = 0
        if workers == 1:
            for ids in batches():
                progress += merge(_renew_batch(engine, ids, now, gateway))
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="renew") as pool:
                pending = []
                for ids in batches():
                    pending.append(pool.submit(_renew_batch, engine, ids, now, gateway))
                    if len(pending) >= 2 * workers:
                        progress += merge(pending.pop(0).result())
                for future in pending:
                    progress += merge(future.result())
        if not progress:
            break
    report.elapsed_seconds = time.perf_counter() - started
    return report


# ----------------------------------------------------------------- plan changes


def _change_key(kind: str, sub: Subscription, to_key: str, n_failed: int) -> str:
    start = as_utc(sub.current_period_start).isoformat()
    return f"{kind}:{sub.id}:{sub.plan_key}->{to_key}:{start}:{n_failed}"


def _preview_change(session: Session, sub: Subscription, new_plan, now: datetime) -> ChangePreview:
    current = get_plan(sub.plan_key)
    if new_plan.key == current.key:
        raise SamePlan(f"You're already on {current.name}.")
    if new_plan.rank == current.rank:
        raise SamePlan(f"{new_plan.name} is the same level as {current.name}.")
    balance = ledger.balance(session, sub.account_id)
    if new_plan.rank > current.rank:
        kind = UPGRADE
        charge = new_plan.price_cents - current.price_cents
        added = max(0, new_plan.monthly_credits - current.monthly_credits)
        burned = 0
        renewal = as_utc(sub.current_period_end).date()
    else:
        kind = DOWNGRADE
        charge = new_plan.price_cents
        added = new_plan.monthly_credits
        burned = _plan_credits_left(session, sub.id, now)
        _, end, _ = periods.first_period(now)
        renewal = end.date()
    if charge <= 0:
        raise SubscriptionError(
            f"{new_plan.name} does not cost more than {current.name}: nothing to charge for this change."
        )
    n_failed = _failed_count(session, sub.account_id, kind, sub.id)
    live = _live_balance(session, sub.account_id, now)
    return ChangePreview(
        kind=kind,
        account_id=sub.account_id,
        subscription_id=sub.id,
        from_plan_key=current.key,
        from_plan_name=current.name,
        to_plan_key=new_plan.key,
        to_plan_name=new_plan.name,
        charge_cents=charge,
        currency=_currency(),
        credits_added=added,
        credits_burned=burned,
        balance_before=balance,
        balance_after=live - burned + added,
        new_renewal_date=renewal,
        renewal_amount_cents=new_plan.price_cents,
        idempotency_key=_change_key(kind, sub, new_plan.key, n_failed),
    )


def _changeable_subscription(session: Session, account_id: int, now: datetime) -> Subscription:
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("You're on Free. Subscribe to a plan first.")
    if sub.status == SubscriptionStatus.PAST_DUE:
        raise PaymentPastDue(
            "Your last renewal payment failed. Update your card; we retry automatically, "
            "and you can change plans once it is paid."
        )
    if as_utc(sub.current_period_end) <= now:
        raise RenewalInProgress("Your plan is renewing right now. Try again in a minute.")
    return sub


def preview_change(session: Session, account_id: int, new_plan_key: str) -> ChangePreview:
    """What changing to `new_plan_key` would do now (kind, charge, credits
    added/burned, new renewal date). Raises for Free, the same plan, no plan."""
    account_id = _check_account_id(account_id)
    new_plan = _paid_plan(new_plan_key)
    now = clock.now()
    sub = _changeable_subscription(session, account_id, now)
    return _preview_change(session, sub, new_plan, now)


def change_plan(
    session: Session,
    account_id: int,
    new_plan_key: str,
    *,
    expected_preview: ChangePreview | None = None,
    gateway=None,
) -> Outcome:
    """Upgrade or downgrade now (PRODUCT_RULES §5), charging the saved card.

    With `expected_preview` (what the user confirmed): if the account no longer
    matches it, PreviewOutdated is raised and nothing happens; the same
    confirmation sent twice returns the first answer (charged once)."""
    account_id = _check_account_id(account_id)
    new_plan = _paid_plan(new_plan_key)
    _account(session, account_id)
    _lock(session, account_id)
    if expected_preview is not None:
        if (
            expected_preview.account_id != account_id
            or expected_preview.to_plan_key != new_plan.key
        ):
            raise PreviewOutdated(
                "This confirmation is for a different change. Please review it again."
            )
        done = invoices.find_by_key(session, expected_preview.idempotency_key)
        if done is not None:
            return _replay(done, expected_preview.kind)
    now = clock.now()
    sub = _changeable_subscription(session, account_id, now)
    preview = _preview_change(session, sub, new_plan, now)
    if expected_preview is not None and not preview.same_terms(expected_preview):
        raise PreviewOutdated(
            "Your plan or balance changed since you reviewed this change. Nothing was charged; "
            "please review it again."
        )
    done = invoices.find_by_key(session, preview.idempotency_key)
    if done is not None:
        return _replay(done, preview.kind)
    gateway = gateway or get_gateway(sub.gateway)
    card = default_card(session, account_id)
    if card is None:
        raise NoPaymentMethod("Add a card to change plans.")
    current = get_plan(sub.plan_key)
    payment = _charge(
        session,
        gateway,
        account_id,
        card,
        preview.charge_cents,
        f"Workroom {current.name} to {new_plan.name}",
        preview.idempotency_key,
    )
    if payment.requires_action:
        return _needs_confirmation(
            session,
            account_id,
            preview.kind,
            payment,
            f"the change from {current.name} to {new_plan.name}",
            {"plan_key": new_plan.key, "from_plan": current.key, "subscription_id": sub.id},
            "/subscription",
        )
    if preview.kind == UPGRADE:
        if not payment.ok:
            return record_failed_attempt(
                session,
                account_id,
                kind=UPGRADE,
                payment=payment,
                plan_key=new_plan.key,
                subscription_id=sub.id,
                period_start=sub.current_period_start,
                period_end=sub.current_period_end,
                description=f"Upgrade from {current.name} to {new_plan.name} (price difference)",
            )
        return apply_upgrade(session, sub, new_plan.key, payment=payment)
    start, end, _ = periods.first_period(now)
    if not payment.ok:
        return record_failed_attempt(
            session,
            account_id,
            kind=DOWNGRADE,
            payment=payment,
            plan_key=new_plan.key,
            subscription_id=sub.id,
            period_start=start,
            period_end=end,
            description=f"{new_plan.name} plan, {_period_label(start, end)}",
        )
    return apply_downgrade(
        session, sub, new_plan.key, payment=payment, period_start=start, period_end=end
    )


def apply_upgrade(
    session: Session, subscription: Subscription, new_plan_key: str, *, payment: PaymentFacts
) -> Outcome:
    """A paid upgrade: the plan changes now, the difference in monthly credits is
    granted (a Plan change row, expiring with the current period), the renewal
    date stays. Idempotent on payment.idempotency_key."""
    if not payment.ok:
        raise SubscriptionError("An upgrade applies only after a successful payment.")
    sub = subscription
    new_plan = _paid_plan(new_plan_key)
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, UPGRADE)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    current = get_plan(sub.plan_key)
    if new_plan.rank <= current.rank:
        raise SamePlan(f"{new_plan.name} is not an upgrade from {current.name}.")
    invoice, _ = _write_invoice(
        session,
        sub.account_id,
        kind=UPGRADE,
        payment=payment,
        lines=[
            LineItem(
                f"Upgrade from {current.name} to {new_plan.name} (price difference)",
                payment.amount_cents,
            )
        ],
        subscription_id=sub.id,
        plan_key=new_plan.key,
        period_start=sub.current_period_start,
        period_end=sub.current_period_end,
    )
    added = new_plan.monthly_credits - current.monthly_credits
    if added > 0:
        ledger.grant(
            session,
            sub.account_id,
            added,
            action_type=ActionType.PLAN_CHANGE,
            source=GrantSource.PLAN_CHANGE,
            idempotency_key=f"upgrade-credits:{invoice.id}",
            expires_at=as_utc(sub.current_period_end),
            subscription_id=sub.id,
            reference_type="invoice",
            reference_id=str(invoice.id),
        )
    else:
        added = 0
    sub.plan_key = new_plan.key
    sub.updated_at = clock.now()
    session.add(sub)
    _receipt(session, invoice, new_plan.name)
    alerts.forget(sub.account_id)
    return Outcome(
        ok=True,
        action=UPGRADE,
        message=f"You're on {new_plan.name}. {added:,} credits were added to your balance.",
        subscription_id=sub.id,
        plan_key=new_plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=added,
    )


def apply_downgrade(
    session: Session,
    subscription: Subscription,
    new_plan_key: str,
    *,
    payment: PaymentFacts,
    period_start: datetime,
    period_end: datetime,
) -> Outcome:
    """A paid downgrade: every credit the current plan granted is burned (a Plan
    change row), the lower plan starts a new period at `period_start` with its
    monthly credits (Subscription credits), renewals move to that day. Trial
    and refunded credits are kept. Idempotent on payment.idempotency_key."""
    if not payment.ok:
        raise SubscriptionError("A downgrade applies only after a successful payment.")
    sub = subscription
    new_plan = _paid_plan(new_plan_key)
    period_start, period_end = as_utc(period_start), as_utc(period_end)
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    done = invoices.find_by_key(session, payment.idempotency_key)
    if done is not None:
        return _replay(done, DOWNGRADE)
    if sub.status == SubscriptionStatus.ENDED:
        raise NoSubscription("This subscription has ended.")
    current = get_plan(sub.plan_key)
    if new_plan.rank >= current.rank:
        raise SamePlan(f"{new_plan.name} is not a downgrade from {current.name}.")
    invoice, burned, _ = _start_paid_period(
        session,
        sub,
        new_plan,
        kind=DOWNGRADE,
        payment=payment,
        period_start=period_start,
        period_end=period_end,
        burn_action=ActionType.PLAN_CHANGE,
        burn_key="downgrade-burn",
        grant_action=ActionType.SUBSCRIPTION_CREDITS,
        grant_source=GrantSource.SUBSCRIPTION,
        grant_key="downgrade-credits",
    )
    sub.plan_key = new_plan.key
    sub.current_period_start = period_start
    sub.current_period_end = period_end
    sub.anchor_day = period_start.day
    sub.updated_at = clock.now()
    session.add(sub)
    _receipt(session, invoice, new_plan.name)
    alerts.forget(sub.account_id)
    burned_amount = -burned.amount if burned is not None else 0
    return Outcome(
        ok=True,
        action=DOWNGRADE,
        message=(
            f"You're on {new_plan.name}. {burned_amount:,} credits from {current.name} were burned "
            f"and {new_plan.monthly_credits:,} credits were added. Your plan now renews on "
            f"{_fmt_date(period_end, formatting.account_zone(session, sub.account_id))}."
        ),
        subscription_id=sub.id,
        plan_key=new_plan.key,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        amount_cents=invoice.amount_cents,
        credits_added=new_plan.monthly_credits,
        credits_burned=burned_amount,
    )


# ------------------------------------------------------------- cancel / resume


def set_cancel_at_period_end(session: Session, subscription: Subscription, cancel: bool) -> bool:
    """Record whether the plan stops at the period end. True when it changed."""
    sub = subscription
    _lock(session, sub.account_id)
    sub = _reload(session, sub)
    if sub.status == SubscriptionStatus.ENDED or bool(sub.cancel_at_period_end) == bool(cancel):
        return False
    sub.cancel_at_period_end = bool(cancel)
    sub.updated_at = clock.now()
    session.add(sub)
    return True


def cancel(session: Session, account_id: int) -> Outcome:
    """Stop auto-renewal: plan, features and credits stay until the period end,
    then the plan's credits expire and the account is on Free. A past-due plan
    (its paid period is already over) ends now."""
    account_id = _check_account_id(account_id)
    _lock(session, account_id)
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("You're on Free: there is no auto-renewal to stop.")
    plan = get_plan(sub.plan_key)
    if sub.status == SubscriptionStatus.PAST_DUE:
        set_cancel_at_period_end(session, sub, True)
        return end_subscription(session, sub, reason="cancelled")
    changed = set_cancel_at_period_end(session, sub, True)
    end = as_utc(sub.current_period_end)
    return Outcome(
        ok=True,
        action="cancel",
        message=(
            f"Auto-renewal is off. {plan.name} and its credits stay until "
            f"{_fmt_date(end, formatting.account_zone(session, account_id))}; "
            "then you're on Free."
        ),
        subscription_id=sub.id,
        plan_key=sub.plan_key,
        replayed=not changed,
    )


def resume(session: Session, account_id: int) -> Outcome:
    """Turn auto-renewal back on before the period ends."""
    account_id = _check_account_id(account_id)
    _lock(session, account_id)
    sub = live_subscription(session, account_id)
    if sub is None:
        raise NoSubscription("Your plan has ended. Subscribe again from the Plans page.")
    plan = get_plan(sub.plan_key)
    if as_utc(sub.current_period_end) <= clock.now() and sub.cancel_at_period_end:
        raise NoSubscription("Your plan has ended. Subscribe again from the Plans page.")
    changed = set_cancel_at_period_end(session, sub, False)
    return Outcome(
        ok=True,
        action="resume",
        message=(
            f"Auto-renewal is on. {plan.name} renews on "
            f"{_fmt_date(as_utc(sub.current_period_end), formatting.account_zone(session, account_id))}."
        ),
        subscription_id=sub.id,
        plan_key=sub.plan_key,
        replayed=not changed,
    )


# --------------------------------------------------------------------- reading


def summary(session: Session, account_id: int) -> SubscriptionSummary:
    sub = live_subscription(session, account_id)
    card = default_card(session, account_id)
    if sub is None:
        free = _catalog().default_plan
        return SubscriptionSummary(
            plan_key=free.key,
            plan_name=free.name,
            status="free",
            subscription_id=None,
            current_period_start=None,
            current_period_end=None,
            next_renewal_date=None,
            renewal_amount_cents=0,
            cancel_at_period_end=False,
            next_retry_at=None,
            failed_attempts=0,
            card=card,
        )
    plan = get_plan(sub.plan_key)
    end = as_utc(sub.current_period_end)
    return SubscriptionSummary(
        plan_key=plan.key,
        plan_name=plan.name,
        status=sub.status,
        subscription_id=sub.id,
        current_period_start=as_utc(sub.current_period_start),
        current_period_end=end,
        next_renewal_date=None if sub.cancel_at_period_end else end.date(),
        renewal_amount_cents=0 if sub.cancel_at_period_end else plan.price_cents,
        cancel_at_period_end=bool(sub.cancel_at_period_end),
        next_retry_at=as_utc(sub.next_retry_at) if sub.next_retry_at else None,
        failed_attempts=sub.failed_attempts,
        card=card,
    )


@dataclass(frozen=True)
class PastDue:
    """A renewal payment that is failing: what the banner on every page says."""

    plan_name: str
    amount_cents: int
    reason: str
    next_retry_at: datetime | None
    gateway: str

    def message(self) -> str:
        retry = (
            f" We'll try again on {_fmt_date(self.next_retry_at)}."
            if self.next_retry_at is not None
            else ""
        )
        fix = (
            "Replace your card and pay now on the Subscription page to keep your plan."
            if self.gateway == "local"
            else "Update your card with Stripe from the Subscription page; Stripe retries with it."
        )
        return f"Your {self.plan_name} renewal payment of {_money(self.amount_cents)} failed: {self.reason}{retry} {fix}"


def past_due(session: Session, account_id: int) -> PastDue | None:
    sub = live_subscription(session, account_id)
    if sub is None or sub.status != SubscriptionStatus.PAST_DUE:
        return None
    plan = get_plan(sub.plan_key)
    failed = session.exec(
        select(Invoice)
        .where(
            Invoice.subscription_id == sub.id,
            Invoice.kind == RENEWAL,
            Invoice.status == InvoiceStatus.FAILED.value,
        )
        .order_by(Invoice.seq.desc())
    ).first()
    return PastDue(
        plan_name=plan.name,
        amount_cents=failed.amount_cents if failed is not None else plan.price_cents,
        reason=(
            failed.failure_reason
            if failed is not None and failed.failure_reason
            else "The payment failed."
        ),
        next_retry_at=as_utc(sub.next_retry_at) if sub.next_retry_at else None,
        gateway=sub.gateway,
    )


def card_label(card: PaymentMethod | CardOnFile | None) -> str:
    if card is None:
        return "No card on file"
    brand = BRAND_LABELS.get(card.brand, card.brand.title())
    return (
        f"{brand} ending in {card.last4} (expires {card.exp_month:02d}/{card.exp_year % 100:02d})"
    )


def scheduled_tick(engine: Engine, *, send_receipts: bool = True, receipt_limit: int = 100):
    """One pass of the billing scheduler (the worker calls it every poll, in a
    thread): renew what fell due, run due retries, then send pending receipts
    when SMTP is configured. Returns (RenewReport, SendReport | None)."""
    try:
        from workroom_app.billing import payment_confirmation  # noqa: PLC0415  (builds on this module)

        # Unconfirmed payments past their deadline fail first, so the renewals below see it.
        payment_confirmation.expire_due(engine)
    except Exception:  # noqa: BLE001  (must never stop renewals)
        log.exception("expiring payment confirmations failed")
    report = renew_due(engine)
    try:
        alerts.scheduled_scan(engine)  # "N credits expire on DATE", 7 days and 1 day before
    except Exception:  # noqa: BLE001  (alerts must never stop renewals)
        log.exception("expiry alert scan failed")
    sent = receipts.send_pending(engine, receipt_limit) if send_receipts else None
    return report, sent
