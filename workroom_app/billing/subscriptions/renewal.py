"""Renewal of one subscription: the due payment or a scheduled retry, Pay now on a
past-due plan, recording a renewal paid or failed, and the end of a plan."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session

from workroom_app import notifications
from workroom_app.billing import alerts, clock, invoices, ledger, periods
from workroom_app.billing.invoices import LineItem
from workroom_app.billing.ledger import LedgerResult
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.errors import (
    NoPaymentMethod,
    NoSubscription,
    SubscriptionError,
)
from workroom_app.billing.subscriptions.lookup import (
    _account,
    _check_account_id,
    _lock,
    _money,
    _reload,
    get_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import (
    RENEWAL,
    Outcome,
    PaymentFacts,
    _card_on_file,
    _charge,
    _failed_count,
    _failed_outcome,
    _needs_confirmation,
    _period_label,
    _receipt,
    _renewal_details,
    _replay,
    _waiting_renewal,
    _write_invoice,
)
from workroom_app.models import ActionType, GrantSource, Invoice, Subscription, SubscriptionStatus

# Failed renewal: retried this many days after the due date; after the last
# failure the account returns to Free (PRODUCT_RULES §5).
RETRY_DAYS: tuple[int, ...] = (1, 3, 5)


# Prebuilt Core statements for the renewal path, which a batch run executes
# 100,000 times (building a statement each time costs more than running it).
_S = Subscription.__table__


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


def _is_due(sub: Any, now: datetime) -> bool:  # a Subscription or a row of it
    if sub.status == SubscriptionStatus.ACTIVE:
        return as_utc(sub.current_period_end) <= now
    if sub.status == SubscriptionStatus.PAST_DUE:
        return sub.next_retry_at is not None and as_utc(sub.next_retry_at) <= now
    return False


def renew(
    session: Session,
    subscription_id: int,
    *,
    now: datetime | None = None,
    gateway: PaymentGateway | None = None,
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
    if sub is None:
        raise NoSubscription("No such subscription.")
    if not _is_due(sub, now):
        return None
    if sub.cancel_at_period_end:
        return end_subscription(session, _orm(session, sub.id), reason="cancelled", now=now)
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
        session, _orm(session, sub.id), payment=payment, due_at=due_at, now=now
    )


def _orm(session: Session, subscription_id: int) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise NoSubscription("No such subscription.")
    return sub


def pay_now(session: Session, account_id: int, *, gateway: PaymentGateway | None = None) -> Outcome:
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
) -> tuple[Invoice, LedgerResult | None, int]:
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
