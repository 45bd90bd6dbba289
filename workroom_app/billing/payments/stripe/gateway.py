"""The Stripe API client: every call Workroom makes to Stripe goes through StripeGateway.

One concept kept whole (about 700 lines): each method is one Stripe request (or a short,
ordered sequence of them under derived idempotency keys) turned into a view, and the money
rules of the package docstring are read across its methods side by side."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe

from workroom_app.billing.payments.gateway import ChargeResult, GatewayError
from workroom_app.billing.payments.stripe.errors import StripeGatewayError, StripeNotConfigured
from workroom_app.billing.payments.stripe.metadata import (
    KIND_PACK,
    META_ACCOUNT,
    META_FROM_PLAN,
    META_KIND,
    META_PACK,
    META_PACK_CREDITS,
    META_PACK_PRICE,
    META_PLAN,
    META_SUBSCRIPTION,
    META_UPGRADE_INVOICE,
    REQUIRES_ACTION_CODE,
    derive_key,
)
from workroom_app.billing.payments.stripe.views import (
    ChargeView,
    CheckoutSessionView,
    DisputeView,
    InvoiceLineView,
    InvoiceView,
    PackPaymentView,
    PaymentResult,
    RefundView,
    SubscriptionView,
)
from workroom_app.settings import Settings, get_settings


def _dt(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(int(timestamp), UTC)


def _when(timestamp: int) -> datetime:
    """A time Stripe always sets (a subscription item's period)."""
    return datetime.fromtimestamp(int(timestamp), UTC)


def _meta(obj: Any) -> dict[str, str]:
    metadata = getattr(obj, "metadata", None)
    return {} if metadata is None else dict(metadata.to_dict())


def _id_of(value: Any) -> str | None:
    """An expandable field: either the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    return str(value.id)


def _decline_code(exc: stripe.CardError) -> str | None:
    error = getattr(exc, "error", None)
    return (getattr(error, "decline_code", None) if error is not None else None) or exc.code


def _check_amount(stripe_amount: int, expected: int | None) -> None:
    if expected is not None and stripe_amount != expected:
        # The Stripe prices and the catalog disagree (a misconfiguration): the
        # user must be charged exactly what they were shown, or nothing.
        raise StripeGatewayError(
            "This change cannot be charged right now (the payment provider's price differs from the "
            "plan price). Nothing was charged; please contact support."
        )


def _line_price(line: Any) -> str | None:
    pricing = getattr(line, "pricing", None)
    details = getattr(pricing, "price_details", None) if pricing is not None else None
    return _id_of(getattr(details, "price", None)) if details is not None else None


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        http_client: stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
    ):
        self.settings = settings or get_settings()
        if not self.settings.stripe_secret_key:
            raise StripeNotConfigured("Stripe is not configured: set WORKROOM_STRIPE_SECRET_KEY.")
        self._prices = {
            "starter": self.settings.stripe_price_starter,
            "pro": self.settings.stripe_price_pro,
            "studio": self.settings.stripe_price_studio,
        }
        missing = [plan for plan, price in self._prices.items() if not price]
        if missing:
            raise StripeNotConfigured(
                "Stripe is not configured: set the price id of "
                + ", ".join(f"WORKROOM_STRIPE_PRICE_{plan.upper()}" for plan in missing)
                + "."
            )
        self._plans_by_price = {price: plan for plan, price in self._prices.items()}
        # Retries are safe: every write has an idempotency key.
        self.client = stripe.StripeClient(
            self.settings.stripe_secret_key,
            http_client=http_client,
            max_network_retries=max_network_retries,
        )

    def charge(
        self,
        account_id: int,
        payment_method: Any,
        amount_cents: int,
        currency: str,
        description: str,
        idempotency_key: str,
        *,
        session: Any = None,
    ) -> ChargeResult:
        """Stripe collects its subscriptions' payments itself (renewals) or
        through the plan-change flows below; the engine's direct-charge verbs
        are for the local gateway only."""
        raise GatewayError(
            "Stripe subscriptions are charged by Stripe: use billing.payments.stripe.actions.change_plan "
            "for plan changes (renewals arrive as invoice.paid)."
        )

    @property
    def webhook_secret(self) -> str:
        return self.settings.stripe_webhook_secret

    # ------------------------------------------------------------ prices

    def price_id(self, plan_key: str) -> str:
        try:
            return self._prices[plan_key]
        except KeyError:
            raise StripeGatewayError(f"There is no paid plan called {plan_key!r}.") from None

    def plan_for_price(self, price_id: str) -> str | None:
        return self._plans_by_price.get(price_id)

    # ------------------------------------------------------------ checkout

    def create_checkout_session(
        self,
        account: Any,
        plan_key: str,
        success_url: str,
        cancel_url: str,
        *,
        idempotency_key: str,
        customer_id: str | None = None,
    ) -> CheckoutSessionView:
        """A hosted Checkout page (mode subscription) for `plan_key`.

        The account id goes in client_reference_id and in the subscription's
        metadata, which is how the webhook finds the account after re-reading
        the subscription from Stripe."""
        metadata = {META_ACCOUNT: str(account.id), META_PLAN: plan_key}
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": self.price_id(plan_key), "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(account.id),
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
        }
        if customer_id:
            params["customer"] = customer_id
        elif getattr(account, "email", None):
            params["customer_email"] = account.email
        session = self._call(
            self.client.v1.checkout.sessions.create,
            params,
            {"idempotency_key": derive_key(idempotency_key, "checkout")},
        )
        return self._session_view(session)

    def create_pack_checkout_session(
        self,
        account: Any,
        pack: Any,
        success_url: str,
        cancel_url: str,
        *,
        currency: str,
        idempotency_key: str,
    ) -> CheckoutSessionView:
        """A hosted Checkout page (mode payment) for one credit pack. The price
        comes from our catalog (inline price_data), and what was sold goes in
        the session's metadata, which the webhook trusts only after re-reading
        the session from Stripe."""
        metadata = {
            META_ACCOUNT: str(account.id),
            META_KIND: KIND_PACK,
            META_PACK: pack.key,
            META_PACK_CREDITS: str(pack.credits),
            META_PACK_PRICE: str(pack.price_cents),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": pack.price_cents,
                        "product_data": {"name": f"Workroom credit pack: {pack.label}"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(account.id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
        if getattr(account, "email", None):
            params["customer_email"] = account.email
        session = self._call(
            self.client.v1.checkout.sessions.create,
            params,
            {"idempotency_key": derive_key(idempotency_key, "pack-checkout")},
        )
        return self._session_view(session)

    def retrieve_pack_payment(self, session_id: str) -> PackPaymentView:
        view = self.retrieve_checkout_session(session_id)
        meta = view.metadata
        paid = (
            view.mode == "payment" and view.status == "complete" and view.payment_status == "paid"
        )
        brand = last4 = None
        paid_at = None
        if paid and view.payment_intent_id:
            intent = self._call(
                self.client.v1.payment_intents.retrieve,
                view.payment_intent_id,
                {"expand": ["latest_charge"]},
            )
            charge = getattr(intent, "latest_charge", None)
            details = (
                getattr(charge, "payment_method_details", None) if charge is not None else None
            )
            card = getattr(details, "card", None) if details is not None else None
            if card is not None:
                brand, last4 = card.brand, card.last4
            if charge is not None and getattr(charge, "created", None):
                paid_at = _dt(charge.created)

        def number(key: str) -> int | None:
            raw = meta.get(key, "")
            return int(raw) if raw.isdigit() else None

        return PackPaymentView(
            session=view,
            paid=paid,
            account_id=number(META_ACCOUNT),
            pack_key=meta.get(META_PACK) if meta.get(META_KIND) == KIND_PACK else None,
            credits=number(META_PACK_CREDITS),
            price_cents=number(META_PACK_PRICE),
            card_brand=brand,
            card_last4=last4,
            paid_at=paid_at,
        )

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSessionView:
        return self._session_view(self._call(self.client.v1.checkout.sessions.retrieve, session_id))

    @staticmethod
    def _session_view(session: Any) -> CheckoutSessionView:
        return CheckoutSessionView(
            id=session.id,
            url=getattr(session, "url", None),
            status=session.status,
            payment_status=session.payment_status,
            client_reference_id=session.client_reference_id,
            customer_id=_id_of(session.customer),
            subscription_id=_id_of(session.subscription),
            metadata=_meta(session),
            mode=getattr(session, "mode", None),
            amount_total=getattr(session, "amount_total", None),
            currency=getattr(session, "currency", None),
            payment_intent_id=_id_of(getattr(session, "payment_intent", None)),
        )

    # ------------------------------------------------------------ subscriptions

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionView:
        return self._subscription_view(
            self._call(self.client.v1.subscriptions.retrieve, subscription_id)
        )

    def _subscription_view(self, sub: Any) -> SubscriptionView:
        # Billing periods live on the items since API 2025-03-31 (not on the subscription).
        item = sub["items"].data[0]
        price = item.price
        return SubscriptionView(
            id=sub.id,
            customer_id=_id_of(sub.customer) or "",  # every subscription has one
            status=sub.status,
            item_id=item.id,
            price_id=price.id,
            price_cents=int(price.unit_amount),
            currency=price.currency,
            plan_key=self.plan_for_price(price.id),
            period_start=_when(item.current_period_start),
            period_end=_when(item.current_period_end),
            cancel_at_period_end=bool(sub.cancel_at_period_end),
            latest_invoice_id=_id_of(sub.latest_invoice),
            metadata=_meta(sub),
            canceled_at=_dt(getattr(sub, "canceled_at", None)),
        )

    def upgrade(
        self,
        stripe_subscription_id: str,
        new_plan: str,
        *,
        idempotency_key: str,
        expected_amount_cents: int | None = None,
    ) -> PaymentResult:
        """Charge new price − current price now; swap the price only once it is paid.

        `expected_amount_cents`: what the user was shown (from the catalog); if
        Stripe's prices say otherwise nothing is charged."""
        sub = self.retrieve_subscription(stripe_subscription_id)
        new_price = self._retrieve_price(self.price_id(new_plan))
        self._check_changeable(sub)
        difference = int(new_price.unit_amount) - sub.price_cents
        if sub.plan_key == new_plan or difference <= 0:
            raise StripeGatewayError(
                f"{new_plan.capitalize()} is not an upgrade from your current plan; choose a higher plan."
            )
        _check_amount(difference, expected_amount_cents)
        from_label = (sub.plan_key or "current plan").capitalize()
        metadata = {
            META_KIND: "upgrade",
            META_ACCOUNT: sub.metadata.get(META_ACCOUNT, ""),
            META_SUBSCRIPTION: sub.id,
            META_FROM_PLAN: sub.plan_key or "",
            META_PLAN: new_plan,
        }
        # The invoice first, then the item ON that invoice: a stray pending
        # item from some earlier attempt can never be swept into this charge.
        invoice = self._call(
            self.client.v1.invoices.create,
            {
                "customer": sub.customer_id,
                # Tied to the subscription so it shows in its invoice list (the
                # webhook replays that list); `exclude` keeps its pending items out.
                "subscription": sub.id,
                "collection_method": "charge_automatically",
                "auto_advance": False,
                "pending_invoice_items_behavior": "exclude",
                "currency": sub.currency,
                "description": f"Upgrade from {from_label} to {new_plan.capitalize()}",
                "metadata": metadata,
            },
            {"idempotency_key": derive_key(idempotency_key, "upgrade-invoice")},
        )
        self._call(
            self.client.v1.invoice_items.create,
            {
                "customer": sub.customer_id,
                "invoice": invoice.id,
                "amount": difference,
                "currency": sub.currency,
                "description": f"Upgrade from {from_label} to {new_plan.capitalize()} (price difference)",
                "metadata": metadata,
            },
            {"idempotency_key": derive_key(idempotency_key, "upgrade-item")},
        )
        self._call(
            self.client.v1.invoices.finalize_invoice,
            invoice.id,
            {"auto_advance": False},
            {"idempotency_key": derive_key(idempotency_key, "upgrade-finalize")},
        )
        try:
            self.client.v1.invoices.pay(
                invoice.id, {}, {"idempotency_key": derive_key(idempotency_key, "upgrade-pay")}
            )
        except stripe.CardError as exc:
            if exc.code == REQUIRES_ACTION_CODE:
                # 3-D Secure: kept open for the customer to confirm on Stripe's hosted
                # page; paid there, the invoice.paid webhook swaps the price.
                waiting = self.retrieve_invoice(invoice.id)
                return PaymentResult(
                    ok=False,
                    invoice=waiting,
                    subscription=sub,
                    amount_cents=difference,
                    requires_action=True,
                    action_url=waiting.hosted_invoice_url,
                )
            # Nothing may change but the failed payment: void the invoice so
            # Stripe never collects it later.
            self._call(
                self.client.v1.invoices.void_invoice,
                invoice.id,
                {},
                {"idempotency_key": derive_key(idempotency_key, "upgrade-void")},
            )
            return PaymentResult(
                ok=False,
                invoice=self.retrieve_invoice(invoice.id),
                subscription=sub,
                amount_cents=difference,
                failure_code=_decline_code(exc),
                failure_reason=exc.user_message or "The card was declined.",
            )
        except stripe.StripeError as exc:
            raise StripeGatewayError(self._user_message(exc)) from exc
        swapped = self.complete_upgrade(invoice.id)
        return PaymentResult(
            ok=True,
            invoice=self.retrieve_invoice(invoice.id),
            subscription=swapped,
            amount_cents=difference,
        )

    def complete_upgrade(self, upgrade_invoice_id: str) -> SubscriptionView:
        """Swap the subscription to the upgraded price, if its invoice is paid.

        Used right after the payment and again by the invoice.paid webhook, so a
        crash between the payment and the swap still ends upgraded. The key is
        the invoice's, so both paths make Stripe swap once."""
        invoice = self.retrieve_invoice(upgrade_invoice_id)
        if invoice.kind != "upgrade" or not invoice.paid:
            raise StripeGatewayError("This upgrade has not been paid.")
        sub = self.retrieve_subscription(invoice.metadata[META_SUBSCRIPTION])
        new_plan = invoice.metadata[META_PLAN]
        if sub.metadata.get(META_UPGRADE_INVOICE) == invoice.id or sub.status == "canceled":
            return sub
        # Swap only if this is still the latest paid plan change and the
        # subscription is still on the plan it started from: a late resend
        # (after its idempotency key expired, after a later downgrade) must not
        # move the price again.
        history = [
            i.id
            for i in self.list_subscription_invoices(sub.id)
            if i.paid and i.kind in ("upgrade", "downgrade")
        ]
        if (history and history[-1] != invoice.id) or sub.plan_key != invoice.metadata.get(
            META_FROM_PLAN
        ):
            return sub
        updated = self._call(
            self.client.v1.subscriptions.update,
            sub.id,
            {
                "items": [{"id": sub.item_id, "price": self.price_id(new_plan)}],
                "proration_behavior": "none",
                "metadata": {META_PLAN: new_plan, META_UPGRADE_INVOICE: invoice.id},
            },
            {"idempotency_key": derive_key(f"upgrade-swap:{invoice.id}", "swap")},
        )
        return self._subscription_view(updated)

    def downgrade(
        self,
        stripe_subscription_id: str,
        new_plan: str,
        *,
        idempotency_key: str,
        expected_amount_cents: int | None = None,
    ) -> PaymentResult:
        """Start a new period today at the lower price, charged now."""
        sub = self.retrieve_subscription(stripe_subscription_id)
        new_price = self._retrieve_price(self.price_id(new_plan))
        self._check_changeable(sub)
        if sub.plan_key == new_plan or int(new_price.unit_amount) >= sub.price_cents:
            raise StripeGatewayError(
                f"{new_plan.capitalize()} is not a downgrade from your current plan; choose a lower paid plan."
            )
        _check_amount(int(new_price.unit_amount), expected_amount_cents)
        # Any: the SDK's TypedDict does not accept the metadata keys held in constants.
        params: Any = {
            "items": [{"id": sub.item_id, "price": new_price.id}],
            "billing_cycle_anchor": "now",
            "proration_behavior": "none",
            "payment_behavior": "error_if_incomplete",
            "cancel_at_period_end": False,
            "metadata": {META_PLAN: new_plan, META_UPGRADE_INVOICE: ""},
        }
        try:
            updated = self.client.v1.subscriptions.update(
                sub.id, params, {"idempotency_key": derive_key(idempotency_key, "downgrade")}
            )
        except stripe.CardError as exc:
            return PaymentResult(
                ok=False,
                invoice=None,
                subscription=sub,
                amount_cents=int(new_price.unit_amount),
                failure_code=_decline_code(exc),
                failure_reason=exc.user_message or "The card was declined.",
            )
        except stripe.StripeError as exc:
            raise StripeGatewayError(self._user_message(exc)) from exc
        view = self._subscription_view(updated)
        invoice = self.retrieve_invoice(view.latest_invoice_id) if view.latest_invoice_id else None
        return PaymentResult(
            ok=True, invoice=invoice, subscription=view, amount_cents=int(new_price.unit_amount)
        )

    def cancel_at_period_end(
        self, stripe_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionView:
        return self._set_cancel(stripe_subscription_id, True, idempotency_key)

    def resume(self, stripe_subscription_id: str, *, idempotency_key: str) -> SubscriptionView:
        return self._set_cancel(stripe_subscription_id, False, idempotency_key)

    def cancel_now(self, stripe_subscription_id: str, *, idempotency_key: str) -> SubscriptionView:
        """End the subscription at once (a past-due plan whose paid period is over)."""
        ended = self._call(
            self.client.v1.subscriptions.cancel,
            stripe_subscription_id,
            {},
            {"idempotency_key": derive_key(idempotency_key, "cancel-now")},
        )
        return self._subscription_view(ended)

    def _set_cancel(
        self, subscription_id: str, cancel: bool, idempotency_key: str
    ) -> SubscriptionView:
        updated = self._call(
            self.client.v1.subscriptions.update,
            subscription_id,
            {"cancel_at_period_end": cancel},
            {"idempotency_key": derive_key(idempotency_key, "cancel" if cancel else "resume")},
        )
        return self._subscription_view(updated)

    @staticmethod
    def _check_changeable(sub: SubscriptionView) -> None:
        if sub.status != "active":
            raise StripeGatewayError(
                "Your plan cannot be changed while its last payment is unsettled; update your card first."
                if sub.status in ("past_due", "unpaid", "incomplete")
                else "This subscription has ended."
            )

    def _retrieve_price(self, price_id: str) -> Any:
        return self._call(self.client.v1.prices.retrieve, price_id)

    # ------------------------------------------------------------ invoices

    # One request gives the invoice, its payments, and the card that paid
    # (or failed): Stripe's `payments` field is only there when expanded.
    _INVOICE_EXPAND = ("payments.data.payment.payment_intent.latest_charge",)

    def retrieve_invoice(self, invoice_id: str) -> InvoiceView:
        invoice = self._call(
            self.client.v1.invoices.retrieve, invoice_id, {"expand": list(self._INVOICE_EXPAND)}
        )
        return self._invoice_view(invoice)

    def list_subscription_invoices(self, subscription_id: str) -> tuple[InvoiceView, ...]:
        """All of a subscription's invoices, oldest first (Stripe lists newest first)."""
        views: list[InvoiceView] = []
        params: dict[str, Any] = {
            "subscription": subscription_id,
            "limit": 100,
            "expand": [f"data.{path}" for path in self._INVOICE_EXPAND],
        }
        while True:
            page = self._call(self.client.v1.invoices.list, dict(params))
            views.extend(self._invoice_view(invoice) for invoice in page.data)
            if not page.has_more or not page.data:
                break
            params["starting_after"] = page.data[-1].id
        return tuple(reversed(views))

    def _invoice_view(self, invoice: Any) -> InvoiceView:
        parent = getattr(invoice, "parent", None)
        details = getattr(parent, "subscription_details", None) if parent is not None else None
        metadata = _meta(invoice)
        subscription_id = _id_of(details.subscription) if details is not None else None
        subscription_id = subscription_id or metadata.get(META_SUBSCRIPTION)
        brand = last4 = failure_code = failure_reason = None
        payments = getattr(invoice, "payments", None)
        intent = None
        requires_action = False
        for payment in payments.data if payments is not None else []:
            if payment.payment.type == "payment_intent":
                intent = payment.payment.payment_intent
                if payment.is_default:
                    break
        if isinstance(intent, str):
            intent = self._call(
                self.client.v1.payment_intents.retrieve, intent, {"expand": ["latest_charge"]}
            )
        if intent is not None:
            requires_action = invoice.status == "open" and intent.status == "requires_action"
            charge = intent.latest_charge
            if isinstance(charge, str):
                charge = self._call(self.client.v1.charges.retrieve, charge)
            if charge is not None:
                method = getattr(charge, "payment_method_details", None)
                card = getattr(method, "card", None) if method is not None else None
                if card is not None:
                    brand, last4 = card.brand, card.last4
                if charge.status == "failed":
                    failure_code, failure_reason = charge.failure_code, charge.failure_message
            error = getattr(intent, "last_payment_error", None)
            if invoice.status != "paid" and error is not None:
                failure_code = (
                    getattr(error, "decline_code", None)
                    or getattr(error, "code", None)
                    or failure_code
                )
                failure_reason = getattr(error, "message", None) or failure_reason
        lines = tuple(
            InvoiceLineView(
                line.description or "", int(line.amount), int(line.quantity or 1), _line_price(line)
            )
            for line in invoice.lines.data
        )
        line_period = invoice.lines.data[0].period if invoice.lines.data else None
        transitions = getattr(invoice, "status_transitions", None)
        return InvoiceView(
            id=invoice.id,
            status=invoice.status,
            number=invoice.number,
            billing_reason=invoice.billing_reason,
            customer_id=_id_of(invoice.customer),
            subscription_id=subscription_id,
            amount_due=int(invoice.amount_due),
            amount_paid=int(invoice.amount_paid),
            currency=invoice.currency,
            # The subscription line carries the service period; the invoice's own
            # period_start/end describe the invoicing window instead.
            period_start=_dt(line_period.start) if line_period is not None else None,
            period_end=_dt(line_period.end) if line_period is not None else None,
            lines=lines,
            metadata=metadata,
            card_brand=brand,
            card_last4=last4,
            failure_code=failure_code,
            failure_reason=failure_reason,
            paid_at=_dt(transitions.paid_at) if transitions is not None else None,
            attempt_count=int(getattr(invoice, "attempt_count", 0) or 0),
            requires_action=requires_action,
            hosted_invoice_url=getattr(invoice, "hosted_invoice_url", None),
        )

    # ------------------------------------------------------------ refunds and disputes (staff)

    def invoice_payment_intent(self, stripe_invoice_id: str) -> str | None:
        """The payment intent that paid a Stripe invoice (None if none did)."""
        invoice = self._call(
            self.client.v1.invoices.retrieve, stripe_invoice_id, {"expand": ["payments"]}
        )
        payments = getattr(invoice, "payments", None)
        chosen = None
        for payment in payments.data if payments is not None else []:
            if payment.payment.type == "payment_intent" and payment.status == "paid":
                chosen = payment.payment.payment_intent
                if payment.is_default:
                    break
        return _id_of(chosen)

    def refund_invoice(
        self,
        stripe_invoice_id: str,
        amount_cents: int,
        *,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundView:
        """Refund part or all of what a Stripe invoice collected. The key makes
        a retried request (double click, crash before we recorded it) refund once."""
        intent = self.invoice_payment_intent(stripe_invoice_id)
        if intent is None:
            raise StripeGatewayError("Stripe has no successful payment for this invoice.")
        refund = self._call(
            self.client.v1.refunds.create,
            {"payment_intent": intent, "amount": int(amount_cents), "metadata": metadata},
            {"idempotency_key": derive_key(idempotency_key, "refund")},
        )
        return RefundView(
            id=refund.id,
            status=refund.status,
            amount=int(refund.amount),
            charge_id=_id_of(refund.charge),
            payment_intent_id=intent,
        )

    def retrieve_charge(self, charge_id: str) -> ChargeView:
        charge = self._call(self.client.v1.charges.retrieve, charge_id)
        return ChargeView(
            id=charge.id,
            amount=int(charge.amount),
            amount_refunded=int(getattr(charge, "amount_refunded", 0) or 0),
            currency=charge.currency,
            payment_intent_id=_id_of(charge.payment_intent),
            status=charge.status,
        )

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The Stripe invoice a payment intent paid (None for a payment outside invoices)."""
        page = self._call(
            self.client.v1.invoice_payments.list,
            {
                "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                "limit": 1,
            },
        )
        return _id_of(page.data[0].invoice) if page.data else None

    def retrieve_dispute(self, dispute_id: str) -> DisputeView:
        dispute = self._call(self.client.v1.disputes.retrieve, dispute_id)
        return DisputeView(
            id=dispute.id,
            charge_id=_id_of(dispute.charge) or "",
            amount=int(dispute.amount),
            currency=dispute.currency,
            reason=dispute.reason or "",
            status=dispute.status,
            payment_intent_id=_id_of(getattr(dispute, "payment_intent", None)),
        )

    # ------------------------------------------------------------ plumbing

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except stripe.StripeError as exc:
            raise StripeGatewayError(self._user_message(exc)) from exc

    @staticmethod
    def _user_message(exc: stripe.StripeError) -> str:
        if isinstance(exc, stripe.APIConnectionError):
            return (
                "We could not reach Stripe. If a payment went through, your plan updates within a few "
                "minutes; otherwise nothing was charged. Please check again shortly."
            )
        if isinstance(exc, stripe.AuthenticationError):
            return "Payments are misconfigured (Stripe rejected our key); please contact support."
        return exc.user_message or "Stripe could not complete the request; please try again."


def make_gateway(settings: Settings) -> StripeGateway:
    """What billing.payments.get_gateway("stripe") builds."""
    return StripeGateway(settings)
