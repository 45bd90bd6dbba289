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

Where each part lives (this package re-exports the public names, so
``from workroom_app.billing import subscriptions; subscriptions.subscribe(...)`` works):
- ``errors``: what the engine refuses (SubscriptionError and its subclasses);
- ``lookup``: plan, account, live subscription, card on file, the account lock;
- ``payment_records``: PaymentFacts, Outcome, invoices and receipts of a payment;
- ``previews``: SubscribePreview, ChangePreview;
- ``card_storage``: the card form and the card on file;
- ``checkout``: subscribe, activate_from_gateway;
- ``renewal``: renew, pay_now, record_renewal_paid/payment_failed, end_subscription;
- ``renewal_batch``: renew_due, scheduled_tick;
- ``plan_changes``: preview_change, change_plan, apply_upgrade, apply_downgrade;
- ``cancel``: cancel, resume, set_cancel_at_period_end;
- ``summary``: summary, past_due, card_label, short_card_label;
- ``plan_actions``: what a user can do with their plan, dispatched to the gateway that
  bills it (import it as a module: it is not re-exported here).
"""

from __future__ import annotations

from workroom_app.billing.subscriptions.cancel import cancel, resume, set_cancel_at_period_end
from workroom_app.billing.subscriptions.card_storage import (
    CardForm,
    CardFormError,
    card_form_field,
    card_to_charge,
    read_card_form,
    save_card,
    store_card,
)
from workroom_app.billing.subscriptions.checkout import (
    activate_from_gateway,
    preview_subscribe,
    subscribe,
)
from workroom_app.billing.subscriptions.errors import (
    AlreadySubscribed,
    CardRejected,
    NoPaymentMethod,
    NoSubscription,
    NotAPaidPlan,
    PaymentPastDue,
    PreviewOutdated,
    RenewalInProgress,
    SamePlan,
    SubscriptionError,
    UnknownPlan,
)
from workroom_app.billing.subscriptions.lookup import (
    _account,
    _check_account_id,
    _currency,
    default_card,
    get_plan,
    live_subscription,
)
from workroom_app.billing.subscriptions.payment_records import (
    ACTIVATION,
    DOWNGRADE,
    RENEWAL,
    UPGRADE,
    Outcome,
    PaymentFacts,
    _card_on_file,
    _charge,
    _email_stmt,
    _write_invoice,
    record_failed_attempt,
)
from workroom_app.billing.subscriptions.plan_changes import (
    apply_downgrade,
    apply_upgrade,
    change_plan,
    preview_change,
)
from workroom_app.billing.subscriptions.previews import ChangePreview, SubscribePreview
from workroom_app.billing.subscriptions.renewal import (
    RETRY_DAYS,
    end_subscription,
    pay_now,
    record_payment_failed,
    record_renewal_paid,
    renew,
)
from workroom_app.billing.subscriptions.renewal_batch import RenewReport, renew_due, scheduled_tick
from workroom_app.billing.subscriptions.summary import (
    PastDue,
    SubscriptionSummary,
    card_label,
    past_due,
    short_card_label,
    summary,
)

__all__ = [
    "ACTIVATION",
    "DOWNGRADE",
    "RENEWAL",
    "RETRY_DAYS",
    "UPGRADE",
    "AlreadySubscribed",
    "CardForm",
    "CardFormError",
    "CardRejected",
    "ChangePreview",
    "NoPaymentMethod",
    "NoSubscription",
    "NotAPaidPlan",
    "Outcome",
    "PastDue",
    "PaymentFacts",
    "PaymentPastDue",
    "PreviewOutdated",
    "RenewReport",
    "RenewalInProgress",
    "SamePlan",
    "SubscribePreview",
    "SubscriptionError",
    "SubscriptionSummary",
    "UnknownPlan",
    "activate_from_gateway",
    "apply_downgrade",
    "apply_upgrade",
    "cancel",
    "card_form_field",
    "card_label",
    "card_to_charge",
    "change_plan",
    "default_card",
    "end_subscription",
    "get_plan",
    "live_subscription",
    "past_due",
    "pay_now",
    "preview_change",
    "preview_subscribe",
    "read_card_form",
    "record_failed_attempt",
    "record_payment_failed",
    "record_renewal_paid",
    "renew",
    "renew_due",
    "resume",
    "save_card",
    "scheduled_tick",
    "set_cancel_at_period_end",
    "short_card_label",
    "store_card",
    "subscribe",
    "summary",
    # Package-internal helpers the packs and auto top-up engines share:
    "_account",
    "_card_on_file",
    "_charge",
    "_check_account_id",
    "_currency",
    "_email_stmt",
    "_write_invoice",
]
