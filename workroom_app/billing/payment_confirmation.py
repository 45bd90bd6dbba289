"""Payments the card holder must confirm (3-D Secure), paid for exactly once.

One concept kept whole (about 660 lines): the life of one payment_confirmation row, from
require to succeed, abandon or expire, each step settling the row under the same lock and
idempotency key, so the exactly-once rule is read across them side by side.

A payment that needs the card holder to authenticate is neither a success nor a
decline. Rules, in the words the UI uses (README "Decisions"):
- "Your bank asks you to confirm this payment." The user sees "Confirm this
  payment" (a banner on every page, and the past-due banner for a renewal) and
  completes it on a confirmation step: Stripe's hosted page, or with the local
  test-mode gateway its stand-in at /api/payments/confirm?token=… (Confirm /
  Fail authentication).
- Confirmed, what it pays for (a credit pack, an auto top-up, a new plan, an
  upgrade or downgrade, a renewal) proceeds exactly as a payment that went
  through at once would, once: the record functions are keyed on the payment's
  idempotency key, and the confirmation row is settled in the same transaction
  under the account lock, so a second confirm changes nothing.
- "Confirm it within 24 hours." A failed authentication, or no confirmation
  within CONFIRM_WITHIN, follows the failed-payment path: a declined-payment row
  with the reason; for a renewal the plan is past due and dunning goes on; a
  declined auto top-up turns auto top-up off and emails the reason.
- While a renewal waits for confirmation the plan is past due and the scheduled
  retry is the confirmation's deadline, so the scheduler does not ask again.

The local test cards (billing/payments/cards.py): 4000 0027 6000 3184 always asks;
4000 0025 0000 3155 asks for payments made on the page and lets off-session ones
(renewals, auto top-up) through. Nothing here commits.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app import notifications
from workroom_app.billing import alerts, auto_top_up, clock, formatting, invoices, packs, periods
from workroom_app.billing import subscriptions as subs
from workroom_app.billing.catalog import CreditPack
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import CardOnFile
from workroom_app.billing.payments.local import LocalGateway
from workroom_app.billing.subscriptions.lookup import _money
from workroom_app.billing.subscriptions.payment_records import _failed_outcome, _write_invoice
from workroom_app.billing.subscriptions.payment_records import _replay as _replay_invoice
from workroom_app.models import (
    AlertKind,
    PaymentConfirmation,
    PaymentConfirmationStatus,
    Subscription,
    SubscriptionStatus,
)

log = logging.getLogger(__name__)

CONFIRM_WITHIN = timedelta(hours=24)
CONFIRM_PATH = "/api/payments/confirm"

PENDING = PaymentConfirmationStatus.PENDING.value
PROCESSING = PaymentConfirmationStatus.PROCESSING.value
SUCCEEDED = PaymentConfirmationStatus.SUCCEEDED.value
FAILED = PaymentConfirmationStatus.FAILED.value
EXPIRED = PaymentConfirmationStatus.EXPIRED.value
OPEN = (PENDING, PROCESSING)

AUTO_TOP_UP = "auto_top_up"
KINDS = (subs.ACTIVATION, subs.UPGRADE, subs.DOWNGRADE, subs.RENEWAL, packs.PACK, AUTO_TOP_UP)

AUTH_FAILED_CODE = "payment_intent_authentication_failure"
AUTH_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)
EXPIRED_CODE = "authentication_expired"
EXPIRED_REASON = "This payment was not confirmed within 24 hours."


class ConfirmationError(Exception):
    """A confirmation that cannot be used; the message is shown on the page."""


@dataclass(frozen=True)
class PendingView:
    """A payment waiting for its card holder, as the banner shows it."""

    token: str
    kind: str
    description: str
    amount_text: str
    deadline_text: str
    url: str

    def message(self) -> str:
        return (
            f"Your bank asks you to confirm your payment of {self.amount_text} for "
            f"{self.description}. Confirm it by {self.deadline_text}; until then nothing is charged."
        )


def confirm_path(token: str) -> str:
    return f"{CONFIRM_PATH}?token={token}"  # token_urlsafe: nothing to quote


def _url(row: PaymentConfirmation) -> str:
    return row.confirm_url or confirm_path(row.token)


def _details(row: PaymentConfirmation) -> dict[str, Any]:
    try:
        data = json.loads(row.details or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _lock_row(session: Session, row_id: int | None) -> PaymentConfirmation:
    """The row read again after the account lock was taken (the caller's copy may be stale)."""
    session.flush()
    row = session.get(PaymentConfirmation, row_id, populate_existing=True)
    if row is None:
        raise ConfirmationError("This payment confirmation does not exist.")
    return row


def _local_gateway() -> LocalGateway:
    gateway = get_gateway("local")
    assert isinstance(gateway, LocalGateway)  # settings name "local" for the test-mode gateway
    return gateway


def _subscription(session: Session, d: dict[str, Any]) -> Subscription:
    sub = session.get(Subscription, d.get("subscription_id"), populate_existing=True)
    if sub is None:
        raise ConfirmationError("This plan no longer exists.")
    return sub


def by_key(session: Session, charge_key: str) -> PaymentConfirmation | None:
    return session.exec(
        select(PaymentConfirmation).where(PaymentConfirmation.charge_key == charge_key)
    ).first()


def by_token(session: Session, token: object) -> PaymentConfirmation | None:
    if not isinstance(token, str) or not 10 <= len(token) <= 64:
        return None
    return session.exec(
        select(PaymentConfirmation).where(PaymentConfirmation.token == token)
    ).first()


def _pending_outcome(row: PaymentConfirmation, action: str) -> subs.Outcome:
    return subs.Outcome(
        ok=False,
        action=action,
        message=(
            f"Your bank asks you to confirm this payment of {_money(row.amount_cents)}. "
            "Nothing is charged until you do."
        ),
        amount_cents=row.amount_cents,
        failure_code="requires_action",
        requires_action=True,
        confirm_url=_url(row),
    )


def _action(kind: str) -> str:
    return packs.PACK if kind == AUTO_TOP_UP else kind


# ----------------------------------------------------------------- a payment asks for confirmation


def require(
    session: Session,
    account_id: int,
    *,
    kind: str,
    payment: subs.PaymentFacts,
    description: str,
    details: dict[str, Any],
    return_path: str,
) -> subs.Outcome:
    """The charge `payment` is waiting for its card holder: keep it (once per
    payment key) and answer "confirm this payment". An earlier one for the same key
    is returned as it stands; one past its deadline is settled as failed first."""
    if kind not in KINDS:
        raise ValueError(f"unknown payment kind {kind!r}")
    invoices.lock_account(session, account_id)
    row = by_key(session, payment.idempotency_key)
    now = clock.now()
    if row is not None:
        if row.status == PENDING and periods.as_utc(row.expires_at) <= now:
            return abandon(session, row, code=EXPIRED_CODE, reason=EXPIRED_REASON, status=EXPIRED)
        if row.status in OPEN:
            return _pending_outcome(row, _action(kind))
        return _replay(session, row)
    row = PaymentConfirmation(
        token=secrets.token_urlsafe(32),
        account_id=account_id,
        kind=kind,
        charge_key=payment.idempotency_key,
        gateway=payment.gateway,
        gateway_ref=payment.gateway_ref,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        description=description[:300],
        card_brand=payment.card_brand,
        card_last4=payment.card_last4,
        details=json.dumps(details, default=str),
        status=PENDING,
        confirm_url=payment.action_url,
        return_path=return_path,
        created_at=now,
        expires_at=now + CONFIRM_WITHIN,
    )
    session.add(row)
    session.flush()
    if kind == subs.RENEWAL and not details.get("pay_now"):
        _renewal_waits(session, row, details)
    elif kind == AUTO_TOP_UP:
        _ask_by_email(
            session,
            row,
            AlertKind.AUTO_TOP_UP,
            "Confirm your auto top-up",
            f"Your bank asks you to confirm the auto top-up of {description} "
            f"({_money(row.amount_cents)}).",
        )
    notifications.announce(session, account_id, notifications.SUBSCRIPTION)
    return _pending_outcome(row, _action(kind))


def _deadline_text(session: Session, row: PaymentConfirmation) -> str:
    zone = formatting.account_zone(session, row.account_id)
    return formatting.format_datetime(periods.as_utc(row.expires_at), zone)


def _ask_by_email(
    session: Session, row: PaymentConfirmation, kind: AlertKind, title: str, first: str
) -> None:
    alerts.notify(
        session,
        row.account_id,
        kind,
        title=title,
        body=(
            f"{first} Confirm it by {_deadline_text(session, row)} with the Confirm this payment "
            "button at the top of any Workroom page; after that it counts as a failed payment."
        ),
        link=alerts.SUBSCRIPTION_LINK,
        dedupe_key=f"payment_action:{row.id}",
    )


def _renewal_waits(session: Session, row: PaymentConfirmation, details: dict[str, Any]) -> None:
    """A renewal that waits for confirmation: the plan is past due (its period is
    over and unpaid) and its next scheduled attempt is the deadline."""
    sub = session.get(Subscription, details["subscription_id"])
    if sub is None:
        return
    sub.status = SubscriptionStatus.PAST_DUE.value
    if row.gateway == "local":
        # Our scheduler retries local renewals; Stripe keeps its own schedule.
        sub.next_retry_at = row.expires_at
    sub.updated_at = clock.now()
    session.add(sub)
    plan = subs.get_plan(sub.plan_key)
    _ask_by_email(
        session,
        row,
        AlertKind.PAYMENT_FAILED,
        "Confirm your renewal payment",
        f"Your bank asks you to confirm your {plan.name} renewal payment of "
        f"{_money(row.amount_cents)}.",
    )


# ----------------------------------------------------------------- the card holder answers


def confirm(
    session: Session, token: object, *, confirmed: bool, gateway: LocalGateway | None = None
) -> subs.Outcome:
    """The local confirmation step: Confirm (the charge is taken and what it pays
    for proceeds) or Fail authentication (the failed-payment path). Only the
    first answer counts; a later one replays it."""
    row = by_token(session, token)
    if row is None:
        raise ConfirmationError("This payment confirmation does not exist.")
    if row.gateway != "local":
        raise ConfirmationError("This payment is confirmed on the payment provider's page.")
    invoices.lock_account(session, row.account_id)
    row = _lock_row(session, row.id)
    if row.status != PENDING:
        return _replay(session, row)
    if periods.as_utc(row.expires_at) <= clock.now():
        return abandon(session, row, code=EXPIRED_CODE, reason=EXPIRED_REASON, status=EXPIRED)
    if not confirmed:
        return abandon(session, row, code=AUTH_FAILED_CODE, reason=AUTH_FAILED)
    stale = _stale_reason(session, row)
    if stale is not None:
        return abandon(session, row, code="payment_no_longer_needed", reason=stale)
    gateway = gateway or _local_gateway()
    charge = gateway.settle_authentication(row.charge_key, confirmed=True, session=session)
    if not charge.ok:
        return abandon(
            session,
            row,
            code=charge.failure_code or "card_declined",
            reason=charge.failure_reason or "The payment failed.",
            settle=False,
        )
    return succeed(session, row, gateway_ref=charge.gateway_ref)


def _stale_reason(session: Session, row: PaymentConfirmation) -> str | None:
    """Why this payment is no longer wanted (what it paid for happened another
    way meanwhile), so confirming it must not charge; None when it still applies."""
    d = _details(row)
    if row.kind == subs.ACTIVATION:
        if subs.live_subscription(session, row.account_id) is not None:
            return "You already have a plan: nothing was charged."
        return None
    if row.kind in (subs.UPGRADE, subs.DOWNGRADE, subs.RENEWAL):
        sub = session.get(Subscription, d.get("subscription_id"), populate_existing=True)
        if sub is None or sub.status == SubscriptionStatus.ENDED:
            return "This plan has ended: nothing was charged."
        if row.kind == subs.RENEWAL:
            due = periods.as_utc(sub.current_period_end).isoformat()
            if sub.status != SubscriptionStatus.PAST_DUE or due != d.get("due_at"):
                return "This renewal was already paid: nothing was charged."
        elif sub.plan_key != d.get("from_plan") or sub.status != SubscriptionStatus.ACTIVE:
            return "Your plan changed since this payment was asked for: nothing was charged."
    return None


def _facts(
    row: PaymentConfirmation,
    *,
    ok: bool,
    gateway_ref: str | None,
    code: str | None = None,
    reason: str | None = None,
) -> subs.PaymentFacts:
    return subs.PaymentFacts(
        ok=ok,
        amount_cents=row.amount_cents,
        # A Stripe invoice given up on may still be paid later (a renewal stays with
        # Stripe's retries): its paid key must stay free for that.
        idempotency_key=row.charge_key
        if ok or row.gateway == "local"
        else f"{row.charge_key}:failed",
        currency=row.currency,
        gateway=row.gateway,
        gateway_ref=gateway_ref or row.gateway_ref,
        card_brand=row.card_brand,
        card_last4=row.card_last4,
        failure_reason=None if ok else reason,
        failure_code=None if ok else code,
    )


def _pack(d: dict[str, Any]) -> CreditPack:
    p = d["pack"]
    return CreditPack(
        key=p["key"], label=p["label"], credits=int(p["credits"]), price_cents=int(p["price_cents"])
    )


def _store_card_if_asked(session: Session, row: PaymentConfirmation, d: dict[str, Any]) -> None:
    card = d.get("card")
    mode = d.get("store_card")
    if not card or mode not in ("always", "if_none"):
        return
    if mode == "if_none" and subs.default_card(session, row.account_id) is not None:
        return
    subs.store_card(session, row.account_id, CardOnFile(**card), gateway=row.gateway)


def succeed(session: Session, row: PaymentConfirmation, *, gateway_ref: str | None) -> subs.Outcome:
    """The payment went through after confirmation: apply what it pays for (once:
    every record function is keyed on the payment key) and settle the row."""
    d = _details(row)
    payment = _facts(row, ok=True, gateway_ref=gateway_ref)
    now = clock.now()
    if row.kind in (packs.PACK, AUTO_TOP_UP):
        pack = _pack(d)
        outcome = packs.record_paid(session, row.account_id, pack, payment=payment)
        if row.kind == AUTO_TOP_UP:
            alerts.notify(
                session,
                row.account_id,
                AlertKind.AUTO_TOP_UP,
                title=f"Auto top-up: {pack.credits:,} credits added",
                body=f"You confirmed the payment, so we bought {pack.label} with your card on file. "
                "The receipt is in your email.",
                link=alerts.USAGE_LINK,
                dedupe_key=f"auto_top_up_done:{row.charge_key}",
                send_email=False,
            )
    elif row.kind == subs.ACTIVATION:
        start, end, anchor = periods.first_period(now)
        outcome = subs.activate_from_gateway(
            session,
            row.account_id,
            d["plan_key"],
            period_start=start,
            period_end=end,
            payment=payment,
            anchor_day=anchor,
        )
    else:
        sub = _subscription(session, d)
        if row.kind == subs.UPGRADE:
            outcome = subs.apply_upgrade(session, sub, d["plan_key"], payment=payment)
        elif row.kind == subs.DOWNGRADE:
            start, end, _ = periods.first_period(now)
            outcome = subs.apply_downgrade(
                session, sub, d["plan_key"], payment=payment, period_start=start, period_end=end
            )
        else:
            outcome = subs.record_renewal_paid(
                session,
                sub,
                period_start=datetime.fromisoformat(d["period_start"]),
                period_end=datetime.fromisoformat(d["period_end"]),
                payment=payment,
            )
    _store_card_if_asked(session, row, d)
    row.status = SUCCEEDED
    row.resolved_at = now
    if gateway_ref:
        row.gateway_ref = gateway_ref
    session.add(row)
    notifications.announce(session, row.account_id, notifications.SUBSCRIPTION)
    return outcome


def abandon(
    session: Session,
    row: PaymentConfirmation,
    *,
    code: str,
    reason: str,
    status: str = FAILED,
    settle: bool = True,
) -> subs.Outcome:
    """The payment was not confirmed (authentication failed, or its deadline
    passed) or was declined: the failed-payment path, once."""
    invoices.lock_account(session, row.account_id)
    row = _lock_row(session, row.id)
    if row.status not in OPEN:
        return _replay(session, row)
    if settle and row.gateway == "local":
        _local_gateway().settle_authentication(
            row.charge_key,
            confirmed=False,
            failure_code=code,
            failure_reason=reason,
            session=session,
        )
    d = _details(row)
    payment = _facts(row, ok=False, gateway_ref=None, code=code, reason=reason)
    row.status = status
    row.failure_reason = reason
    row.resolved_at = clock.now()
    session.add(row)
    notifications.announce(session, row.account_id, notifications.SUBSCRIPTION)
    if invoices.find_by_key(session, row.charge_key) is not None:
        return _replay(session, row)
    if row.kind in (packs.PACK, AUTO_TOP_UP):
        pack = _pack(d)
        prefix = "Auto top-up: " if row.kind == AUTO_TOP_UP else ""
        invoice, _ = _write_invoice(
            session,
            row.account_id,
            kind=packs.PACK,
            payment=payment,
            lines=[LineItem(f"{prefix}{packs.pack_line(pack)}", payment.amount_cents)],
            subscription_id=None,
            plan_key=None,
            period_start=None,
            period_end=None,
        )
        if row.kind == AUTO_TOP_UP:
            auto_top_up.turn_off(
                session, row.account_id, reason, f"auto_top_up_off:{row.charge_key}"
            )
            alerts.forget(row.account_id)
        return _failed_outcome(invoice, packs.PACK, None, None)
    if row.kind == subs.RENEWAL:
        sub = session.get(Subscription, d["subscription_id"], populate_existing=True)
        due_at = datetime.fromisoformat(d["due_at"])
        if (
            not d.get("pay_now")
            and sub is not None
            and sub.status != SubscriptionStatus.ENDED
            and periods.as_utc(sub.current_period_end) == due_at
        ):
            return subs.record_payment_failed(
                session,
                sub,
                payment=payment,
                due_at=due_at,
                schedule_retries=row.gateway == "local",
            )
        # A Pay now that was not confirmed: recorded, but the retry schedule stays.
        return subs.record_failed_attempt(
            session,
            row.account_id,
            kind=subs.RENEWAL,
            payment=payment,
            plan_key=d.get("plan_key"),
            subscription_id=d.get("subscription_id"),
            period_start=datetime.fromisoformat(d["period_start"]),
            period_end=datetime.fromisoformat(d["period_end"]),
            description=row.description,
        )
    return subs.record_failed_attempt(
        session,
        row.account_id,
        kind=row.kind,
        payment=payment,
        plan_key=d.get("plan_key"),
        subscription_id=d.get("subscription_id"),
        description=row.description,
    )


def _replay(session: Session, row: PaymentConfirmation) -> subs.Outcome:
    if row.status in OPEN:
        return _pending_outcome(row, _action(row.kind))
    invoice = invoices.find_by_key(session, row.charge_key)
    if invoice is not None:
        return _replay_invoice(invoice, _action(row.kind))
    return subs.Outcome(
        ok=False,
        action=_action(row.kind),
        message=row.failure_reason or "The payment failed.",
        amount_cents=row.amount_cents,
        replayed=True,
    )


# ----------------------------------------------------------------- reading and the deadline


def pending_for_account(session: Session, account_id: int) -> list[PendingView]:
    rows = session.exec(
        select(PaymentConfirmation)
        .where(
            PaymentConfirmation.account_id == account_id,
            PaymentConfirmation.status == PENDING,
            PaymentConfirmation.expires_at > clock.now(),
        )
        .order_by(PaymentConfirmation.id)
    ).all()
    return [
        PendingView(
            token=row.token,
            kind=row.kind,
            description=row.description,
            amount_text=_money(row.amount_cents),
            deadline_text=_deadline_text(session, row),
            url=_url(row),
        )
        for row in rows
    ]


def open_top_up(session: Session, account_id: int) -> bool:
    """An auto top-up is waiting for confirmation or under way (none other starts)."""
    return (
        session.exec(
            select(PaymentConfirmation.id).where(
                PaymentConfirmation.account_id == account_id,
                PaymentConfirmation.kind == AUTO_TOP_UP,
                PaymentConfirmation.status.in_(OPEN),
            )
        ).first()
        is not None
    )


def expire_due(engine: Engine, *, now: datetime | None = None, limit: int = 500) -> int:
    """Settle every confirmation past its deadline as failed (the scheduler calls
    this; each in its own transaction, so one that fails does not hold up others)."""
    from workroom_app.db import read_session, write_session  # noqa: PLC0415  (db imports billing)

    now = now or clock.now()
    with read_session(engine) as session:
        ids = session.exec(
            select(PaymentConfirmation.id)
            .where(PaymentConfirmation.status == PENDING, PaymentConfirmation.expires_at <= now)
            .order_by(PaymentConfirmation.id)
            .limit(limit)
        ).all()
    with read_session(engine) as session:
        stuck = session.exec(
            select(PaymentConfirmation.id)
            .where(PaymentConfirmation.status == PROCESSING, PaymentConfirmation.expires_at <= now)
            .limit(limit)
        ).all()
    if stuck:
        # Off-session Stripe top-ups whose process died before Stripe answered: asked
        # again with the same idempotency keys, so Stripe charges once.
        from workroom_app.billing import stripe_payments  # noqa: PLC0415  (Stripe only when used)

        for stuck_id in stuck:
            if stuck_id is None:
                continue
            try:
                stripe_payments.run_top_up(engine, stripe_payments.stripe_gateway(), stuck_id)
            except Exception:  # noqa: BLE001  (one bad row must not stop the others)
                log.exception("finishing Stripe top-up %s failed", stuck_id)
    done = 0
    for row_id in ids:
        try:
            with write_session(engine) as session:
                row = session.get(PaymentConfirmation, row_id)
                if row is not None and row.status == PENDING:
                    expire(session, row)
                    done += 1
        except Exception:  # noqa: BLE001  (one bad row must not stop the others)
            log.exception("expiring payment confirmation %s failed", row_id)
    return done


def expire(session: Session, row: PaymentConfirmation) -> subs.Outcome:
    """No confirmation in time. A Stripe invoice is voided first (elsewhere:
    billing/stripe_payments.py), so it cannot be paid after we gave up on it."""
    if row.gateway == "stripe":
        from workroom_app.billing import stripe_payments  # noqa: PLC0415  (Stripe only when used)

        if not stripe_payments.give_up(session, row):
            return _replay(session, row)
    return abandon(session, row, code=EXPIRED_CODE, reason=EXPIRED_REASON, status=EXPIRED)


def waiting_renewal(session: Session, sub: Subscription) -> subs.Outcome | None:
    """The renewal of `sub` that already waits for its card holder, if any."""
    rows = session.exec(
        select(PaymentConfirmation).where(
            PaymentConfirmation.account_id == sub.account_id,
            PaymentConfirmation.kind == subs.RENEWAL,
            PaymentConfirmation.status.in_(OPEN),
            PaymentConfirmation.expires_at > clock.now(),
        )
    ).all()
    for row in rows:
        if _details(row).get("subscription_id") == sub.id:
            return _pending_outcome(row, subs.RENEWAL)
    return None
