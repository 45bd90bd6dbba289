"""An in-process, stateful stand-in for the part of Stripe's API Workroom uses.

Stripe cannot be reached from these machines, so the gateway is proven against
this instead. It plugs in BELOW the SDK (`stripe.StripeClient(key,
http_client=standin.http_client())`): the SDK builds the real request (method,
path, headers with Idempotency-Key, form body) and parses real-looking JSON
answers into its own objects, so a wrong parameter name or a wrong field read
fails here the way it would against Stripe.

What it models, following Stripe's documented behaviour (API 2026-10-28):
- customers with a test card; prices; Checkout Sessions in subscription mode,
  completed by the test helper `complete_checkout` (the browser's part); and
  in payment mode (one-off purchases with inline `price_data`), completed by
  `complete_payment_checkout` (a payment intent and its charge);
- subscriptions whose billing period lives on the subscription item, monthly
  periods on the anchor's day of the month (the 31st clamps to shorter months);
- invoice items, invoices (create, finalize, pay, void), invoice payments,
  payment intents and charges with the card brand and last 4;
- subscription updates: price swap with proration_behavior=none,
  billing_cycle_anchor=now (a new period, invoiced and charged at once),
  payment_behavior=error_if_incomplete, cancel_at_period_end;
- renewals (`renew`), payment retries (`retry_invoice`) and period ends
  (`end_period`), each producing the events Stripe would send;
- idempotency keys: the same key with the same parameters returns the saved
  answer without acting again; the same key with other parameters is refused;
- signed webhook events queued in `pending_events` (delivered when a test says
  so, in any order, as often as it likes).
"""

from __future__ import annotations

import calendar
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2026-10-28.endive"

# Published Stripe test cards: brand, last 4, and the decline they produce.
TEST_CARDS: dict[str, dict[str, Any]] = {
    "visa": {"brand": "visa", "last4": "4242", "decline_code": None},
    "mastercard": {"brand": "mastercard", "last4": "4444", "decline_code": None},
    "amex": {"brand": "amex", "last4": "0005", "decline_code": None},
    "declined": {"brand": "visa", "last4": "0002", "decline_code": "generic_decline"},
    "insufficient_funds": {"brand": "visa", "last4": "9995", "decline_code": "insufficient_funds"},
    "expired_card": {"brand": "visa", "last4": "0069", "decline_code": "expired_card"},
    "incorrect_cvc": {"brand": "visa", "last4": "0127", "decline_code": "incorrect_cvc"},
    # 4000 0027 6000 3184: every payment needs 3-D Secure, off-session ones too.
    "authentication_required": {
        "brand": "visa",
        "last4": "3184",
        "decline_code": None,
        "requires_auth": True,
    },
}

REQUIRES_ACTION_CODE = "invoice_payment_intent_requires_action"
AUTH_FAILED = (
    "payment_intent_authentication_failure",
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again.",
)

_DECLINES = {
    # decline_code: (error code, message)
    "generic_decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
}


def add_months(anchor: datetime, months: int) -> datetime:
    """Stripe's monthly step: the anchor's day, clamped to the month's last day."""
    month_index = anchor.month - 1 + months
    year = anchor.year + month_index // 12
    month = month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def _ts(value: datetime) -> int:
    return int(value.timestamp())


class StripeStandinError(Exception):
    """An API error answer: (http status, Stripe error object)."""

    def __init__(self, status: int, error: dict[str, Any]):
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def _invalid(message: str, param: str | None = None, code: str | None = None) -> StripeStandinError:
    return StripeStandinError(
        400, {"type": "invalid_request_error", "message": message, "param": param, "code": code}
    )


def _missing(kind: str, object_id: str, param: str = "id") -> StripeStandinError:
    return StripeStandinError(
        404,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": f"No such {kind}: '{object_id}'",
        },
    )


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Undo the SDK's bracket form encoding: items[0][price]=p -> {'items': [{'price': 'p'}]}."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
    return _lists_from_index_dicts(root)


def _lists_from_index_dicts(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists_from_index_dicts(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _invalid(f"Invalid boolean: {value}")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, Any]
    headers: dict[str, str]
    body: str
    params: dict[str, Any]
    status: int = 0
    replayed: bool = False

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class SignedEvent:
    id: str
    type: str
    payload: str
    signature: str


@dataclass
class _Card:
    brand: str
    last4: str
    decline_code: str | None
    exp_month: int = 12
    exp_year: int = 2034
    requires_auth: bool = False


@dataclass
class _Customer:
    data: dict[str, Any]
    card: _Card | None = None


@dataclass
class StripeStandin:
    api_key: str = "sk_test_standin"
    webhook_secret: str = "whsec_standin"
    # Stripe's notion of now; tests pass the app clock so both agree.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # None: events wait in `pending_events` until a test delivers them (in any
    # order). A callback: each event is handed to it as soon as the request
    # (or test helper) that caused it has finished, like a prompt Stripe.
    on_event: Callable[[SignedEvent], Any] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.customers: dict[str, _Customer] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoice_items: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.invoice_payments: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.pending_events: list[SignedEvent] = []
        self.all_events: list[SignedEvent] = []
        self._idempotent: dict[str, tuple[str, str, str, int, str]] = {}
        self._undelivered: list[SignedEvent] = []
        self._invoice_sequences: dict[str, int] = {}

    # ------------------------------------------------------------ plumbing

    def http_client(self) -> stripe.HTTPClient:
        return StandinHTTPClient(self)

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(self.api_key, http_client=self.http_client())

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One API request or test helper: atomic, then its events go out."""
        with self._lock:
            yield
            ready, self._undelivered = self._undelivered, []
        for event in ready:
            self.on_event(event)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}standin"

    def _now(self) -> int:
        return _ts(self.now())

    def handle(
        self, method: str, url: str, headers: dict[str, str], body: str | None
    ) -> tuple[int, str]:
        split = urlsplit(url)
        query = decode_form(parse_qsl(split.query, keep_blank_values=True))
        params = decode_form(parse_qsl(body or "", keep_blank_values=True))
        record = RecordedRequest(
            method.upper(), split.path, query, dict(headers), body or "", params
        )
        with self._operation():
            self.requests.append(record)
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                record.status = 401
                return 401, json.dumps(
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "Invalid API Key provided.",
                        }
                    }
                )
            key = headers.get("Idempotency-Key")
            if key and method.lower() == "post":
                saved = self._idempotent.get(key)
                if saved is not None:
                    s_method, s_path, s_body, s_status, s_answer = saved
                    if (s_method, s_path, s_body) != (method.lower(), split.path, body or ""):
                        record.status = 400
                        return 400, json.dumps(
                            {
                                "error": {
                                    "type": "idempotency_error",
                                    "message": "Keys for idempotent requests can only be used with the "
                                    "same parameters they were first used with.",
                                }
                            }
                        )
                    record.status, record.replayed = s_status, True
                    return s_status, s_answer
            try:
                status, answer = (
                    200,
                    self._dispatch(method.lower(), split.path, {**query, **params}),
                )
            except StripeStandinError as exc:
                status, answer = exc.status, {"error": exc.error}
            text = json.dumps(answer)
            if key and method.lower() == "post":
                self._idempotent[key] = (method.lower(), split.path, body or "", status, text)
            record.status = status
            return status, text

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        rx = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    def _dispatch(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        for route_method, pattern, handler in self._routes():
            if route_method != method:
                continue
            match = re.fullmatch(pattern, path)
            if match:
                expand = params.pop("expand", []) or []
                result = handler(params, *match.groups())
                return self._expand(result, list(expand))
        raise StripeStandinError(
            404,
            {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method.upper()}: {path}).",
            },
        )

    def _routes(self):
        return [
            ("post", r"/v1/customers", self._create_customer),
            ("get", r"/v1/customers/([^/]+)", lambda p, i: self._customer(i).data),
            ("get", r"/v1/prices/([^/]+)", lambda p, i: self._price(i)),
            ("post", r"/v1/checkout/sessions", self._create_session),
            ("get", r"/v1/checkout/sessions/([^/]+)", lambda p, i: self._session(i)),
            ("get", r"/v1/subscriptions/([^/]+)", lambda p, i: self._render_subscription(i)),
            ("post", r"/v1/subscriptions/([^/]+)", self._update_subscription),
            ("delete", r"/v1/subscriptions/([^/]+)", self._cancel_subscription_now),
            ("post", r"/v1/invoiceitems", self._create_invoice_item),
            ("post", r"/v1/invoices", self._create_invoice),
            ("get", r"/v1/invoices", self._list_invoices),
            ("get", r"/v1/invoices/([^/]+)", lambda p, i: self._render_invoice(i)),
            ("post", r"/v1/invoices/([^/]+)/finalize", self._finalize_invoice),
            ("post", r"/v1/invoices/([^/]+)/pay", self._pay_invoice_endpoint),
            ("post", r"/v1/invoices/([^/]+)/void", self._void_invoice),
            (
                "get",
                r"/v1/payment_intents/([^/]+)",
                lambda p, i: self._get(self.payment_intents, "payment_intent", i),
            ),
            ("get", r"/v1/charges/([^/]+)", lambda p, i: self._get(self.charges, "charge", i)),
            ("post", r"/v1/refunds", self._create_refund),
            ("get", r"/v1/refunds/([^/]+)", lambda p, i: self._get(self.refunds, "refund", i)),
            ("get", r"/v1/invoice_payments", self._list_invoice_payments),
            ("get", r"/v1/disputes/([^/]+)", lambda p, i: self._get(self.disputes, "dispute", i)),
        ]

    def _expand(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        obj = json.loads(json.dumps(obj))
        for path in paths:
            if len(path.split(".")) > 4 + path.split(".").count("data"):
                raise _invalid("You cannot expand more than 4 levels of a property.", "expand")
            self._expand_path(obj, path.split("."))
        return obj

    def _expand_path(self, node: Any, parts: list[str]) -> None:
        if not parts or not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        if head == "data" and isinstance(node.get("data"), list):
            for item in node["data"]:
                self._expand_path(item, rest)
            return
        if node.get("object") == "invoice" and head == "payments" and "payments" not in node:
            # An includable field: absent unless asked for.
            node["payments"] = json.loads(json.dumps(self._invoice_payments_list(node["id"])))
        value = node.get(head)
        if isinstance(value, str):
            node[head] = value = self._lookup(value)
        self._expand_path(value, rest)

    def _lookup(self, object_id: str) -> dict[str, Any]:
        prefix = object_id.split("_")[0]
        table = {
            "cus": lambda i: self._customer(i).data,
            "sub": self._render_subscription,
            "in": self._render_invoice,
            "pi": lambda i: self.payment_intents[i],
            "ch": lambda i: self.charges[i],
            "price": self._price,
        }.get(prefix)
        if table is None:
            raise _invalid(f"This property cannot be expanded ({object_id}).")
        return json.loads(json.dumps(table(object_id)))

    def _get(self, store: dict[str, Any], kind: str, object_id: str) -> dict[str, Any]:
        if object_id not in store:
            raise _missing(kind, object_id)
        return store[object_id]

    # ------------------------------------------------------------ events

    def _emit(
        self, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> SignedEvent:
        event_id = self._id("evt")
        data: dict[str, Any] = {"object": json.loads(json.dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        payload = json.dumps(
            {
                "id": event_id,
                "object": "event",
                "api_version": API_VERSION,
                "created": self._now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
        )
        signature = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret)
        event = SignedEvent(event_id, event_type, payload, signature)
        (self.pending_events if self.on_event is None else self._undelivered).append(event)
        self.all_events.append(event)
        return event

    def take_events(self, *types: str) -> list[SignedEvent]:
        """Hand the queued deliveries to the test (optionally only some types)."""
        with self._lock:
            taken = [e for e in self.pending_events if not types or e.type in types]
            self.pending_events = [e for e in self.pending_events if e not in taken]
            return taken

    def sign(self, payload: str, timestamp: int | None = None) -> str:
        return stripe.WebhookSignature.generate_signature_header(
            payload, self.webhook_secret, timestamp
        )

    def make_event(self, event_type: str, obj: dict[str, Any]) -> SignedEvent:
        """A signed event of any type (tests: unknown types, forged payloads)."""
        with self._lock:
            event = self._emit(event_type, obj)
            (self.pending_events if self.on_event is None else self._undelivered).remove(event)
            return event

    # ------------------------------------------------------------ test setup helpers

    def add_price(self, unit_amount: int, nickname: str, currency: str = "usd") -> str:
        with self._operation():
            product_id = self._id("prod")
            self.products[product_id] = {
                "id": product_id,
                "object": "product",
                "name": nickname,
                "active": True,
            }
            price_id = self._id("price")
            self.prices[price_id] = {
                "id": price_id,
                "object": "price",
                "active": True,
                "billing_scheme": "per_unit",
                "created": self._now(),
                "currency": currency,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": nickname,
                "product": product_id,
                "recurring": {
                    "interval": "month",
                    "interval_count": 1,
                    "usage_type": "licensed",
                    "meter": None,
                },
                "tax_behavior": "unspecified",
                "type": "recurring",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            }
            return price_id

    def set_card(self, customer_id: str, card: str) -> None:
        """Attach one of TEST_CARDS as the customer's default payment method."""
        spec = TEST_CARDS[card]
        with self._operation():
            customer = self._customer(customer_id)
            customer.card = _Card(
                spec["brand"],
                spec["last4"],
                spec["decline_code"],
                requires_auth=spec.get("requires_auth", False),
            )
            pm_id = self._id("pm")
            customer.data["invoice_settings"]["default_payment_method"] = pm_id

    def complete_checkout(self, session_id: str, card: str = "visa") -> dict[str, Any]:
        """What the customer's browser does on Stripe's page: pay, which creates
        the customer, the subscription and its first (paid) invoice."""
        with self._operation():
            session = self._session(session_id)
            if session["status"] != "open":
                raise _invalid("This Checkout Session is no longer open.")
            if session["customer"] is None:
                customer = self._new_customer(email=session.get("customer_email"), metadata={})
                session["customer"] = customer.data["id"]
            self.set_card(session["customer"], card)
            customer = self._customer(session["customer"])
            price_id = session["_line_items"][0]["price"]
            sub = self._new_subscription(
                session["customer"], price_id, session.get("_subscription_metadata", {})
            )
            invoice = self._new_invoice(
                session["customer"],
                billing_reason="subscription_create",
                subscription=sub,
                lines=[self._subscription_line(sub)],
            )
            self._finalize(invoice)
            # On Checkout's page the customer completes 3-D Secure there and then.
            error = self._attempt_payment(invoice, customer, authenticated=True)
            if error is not None:
                # A declined card on Checkout never completes the session.
                self._void(invoice)
                del self.subscriptions[sub["id"]]
                raise StripeStandinError(402, error)
            sub["status"] = "active"
            sub["latest_invoice"] = invoice["id"]
            session.update(
                status="complete",
                payment_status="paid",
                subscription=sub["id"],
                invoice=invoice["id"],
                amount_total=invoice["total"],
            )
            rendered = self._render_subscription(sub["id"])
            self._emit("customer.subscription.created", rendered)
            self._emit("invoice.finalized", self._render_invoice(invoice["id"]))
            self._emit("invoice.paid", self._render_invoice(invoice["id"]))
            self._emit("invoice.payment_succeeded", self._render_invoice(invoice["id"]))
            self._emit("checkout.session.completed", self._public_session(session))
            self._emit("customer.subscription.updated", rendered, {"status": "incomplete"})
            return self._public_session(session)

    def renew(self, subscription_id: str) -> dict[str, Any]:
        """The period ends: Stripe moves the subscription to the next period,
        invoices it and charges the default card."""
        with self._operation():
            sub = self._subscription(subscription_id)
            if sub["status"] == "canceled":
                raise _invalid("This subscription is canceled.")
            if sub["cancel_at_period_end"]:
                return self.end_period(subscription_id)
            sub["_cycle"] += 1
            self._set_period(sub)
            invoice = self._new_invoice(
                sub["customer"],
                billing_reason="subscription_cycle",
                subscription=sub,
                lines=[self._subscription_line(sub)],
            )
            self._finalize(invoice)
            sub["latest_invoice"] = invoice["id"]
            return self._collect(sub, invoice)

    def retry_invoice(self, invoice_id: str) -> dict[str, Any]:
        """Smart Retries: another attempt on an open subscription invoice."""
        with self._operation():
            invoice = self.invoices[invoice_id]
            sub = self._subscription(invoice["_subscription"])
            return self._collect(sub, invoice)

    def authenticate_invoice(self, invoice_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """What the customer does on the invoice's hosted page (hosted_invoice_url) for a
        payment waiting for 3-D Secure: complete it (the card is charged, the invoice is
        paid) or fail it (the payment intent asks for another payment method)."""
        with self._operation():
            invoice = self.invoices[invoice_id]
            if invoice["status"] != "open":
                raise _invalid(f"This invoice is {invoice['status']}, not open.")
            customer = self._customer(invoice["customer"])
            sub = self._subscription(invoice["_subscription"]) if invoice["_subscription"] else None
            previous = sub["status"] if sub else None
            if succeed:
                error = self._attempt_payment(invoice, customer, authenticated=True)
            else:
                pi = self.payment_intents[invoice["_payment_intent"]]
                code, message = AUTH_FAILED
                pi.update(
                    status="requires_payment_method",
                    next_action=None,
                    last_payment_error={"type": "card_error", "code": code, "message": message},
                )
                error = pi["last_payment_error"]
            if error is None:
                if sub is not None:
                    sub["status"] = "active"
                self._emit("invoice.paid", self._render_invoice(invoice_id))
                self._emit("invoice.payment_succeeded", self._render_invoice(invoice_id))
            else:
                self._emit("invoice.payment_failed", self._render_invoice(invoice_id))
            if sub is not None and sub["status"] != previous:
                self._emit(
                    "customer.subscription.updated",
                    self._render_subscription(sub["id"]),
                    {"status": previous},
                )
            return self._render_invoice(invoice_id)

    def end_period(self, subscription_id: str) -> dict[str, Any]:
        """The paid period of a subscription set to cancel is over (or retries
        ran out): Stripe cancels it and says customer.subscription.deleted."""
        with self._operation():
            sub = self._subscription(subscription_id)
            self._cancel(sub)
            return self._render_subscription(subscription_id)

    def _collect(self, sub: dict[str, Any], invoice: dict[str, Any]) -> dict[str, Any]:
        previous_status = sub["status"]
        error = self._attempt_payment(invoice, self._customer(sub["customer"]))
        if error is None:
            sub["status"] = "active"
            self._emit("invoice.paid", self._render_invoice(invoice["id"]))
            self._emit("invoice.payment_succeeded", self._render_invoice(invoice["id"]))
        elif error["code"] == REQUIRES_ACTION_CODE:
            # Not a decline: the invoice stays open for the customer to confirm
            # on its hosted page, and the subscription is past due meanwhile.
            sub["status"] = "past_due"
            self._emit("invoice.payment_action_required", self._render_invoice(invoice["id"]))
        else:
            sub["status"] = "past_due"
            self._emit("invoice.payment_failed", self._render_invoice(invoice["id"]))
        self._emit(
            "customer.subscription.updated",
            self._render_subscription(sub["id"]),
            {"status": previous_status},
        )
        return self._render_invoice(invoice["id"])

    # ------------------------------------------------------------ customers, prices, sessions

    def _new_customer(self, email: str | None, metadata: dict[str, Any]) -> _Customer:
        customer_id = self._id("cus")
        customer = _Customer(
            {
                "id": customer_id,
                "object": "customer",
                "created": self._now(),
                "email": email,
                "name": None,
                "metadata": metadata,
                "livemode": False,
                "invoice_settings": {
                    "default_payment_method": None,
                    "custom_fields": None,
                    "footer": None,
                },
                "balance": 0,
                "currency": "usd",
                "delinquent": False,
            }
        )
        self.customers[customer_id] = customer
        return customer

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._new_customer(params.get("email"), params.get("metadata", {})).data

    def _customer(self, customer_id: str) -> _Customer:
        if customer_id not in self.customers:
            raise _missing("customer", customer_id)
        return self.customers[customer_id]

    def _price(self, price_id: str) -> dict[str, Any]:
        if price_id not in self.prices:
            raise _missing("price", price_id, "price")
        return self.prices[price_id]

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") == "payment":
            return self._create_payment_session(params)
        if params.get("mode") != "subscription":
            raise _invalid("Only subscription and payment modes are modelled.", "mode")
        line_items = params.get("line_items") or []
        if len(line_items) != 1 or "price" not in line_items[0]:
            raise _invalid("You must provide one line item with a price.", "line_items")
        price = self._price(line_items[0]["price"])
        if price["type"] != "recurring":
            raise _invalid("Subscription mode needs a recurring price.", "line_items[0][price]")
        for url_param in ("success_url",):
            if not params.get(url_param):
                raise _invalid(f"Missing required param: {url_param}.", url_param)
        if params.get("customer"):
            self._customer(params["customer"])
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata", {}),
            "subscription": None,
            "invoice": None,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "created": self._now(),
            "expires_at": self._now() + 24 * 3600,
            "currency": price["currency"],
            "amount_total": price["unit_amount"] * int(line_items[0].get("quantity", 1)),
            "livemode": False,
            "_line_items": [
                {"price": price["id"], "quantity": int(line_items[0].get("quantity", 1))}
            ],
            "_subscription_metadata": (params.get("subscription_data") or {}).get("metadata", {}),
        }
        self.sessions[session_id] = session
        return self._public_session(session)

    def _create_payment_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """Checkout in payment mode: one line with inline price_data (Stripe
        requires unit_amount, currency and product_data.name)."""
        line_items = params.get("line_items") or []
        if len(line_items) != 1 or "price_data" not in line_items[0]:
            raise _invalid("The stand-in models one line item with price_data.", "line_items")
        price_data = line_items[0]["price_data"]
        try:
            unit_amount = int(price_data["unit_amount"])
            currency = price_data["currency"]
            name = price_data["product_data"]["name"]
        except (KeyError, TypeError, ValueError):
            raise _invalid(
                "price_data needs unit_amount, currency and product_data[name].", "line_items"
            ) from None
        if unit_amount < 50:
            raise _invalid(
                "The Checkout Session's total amount must be at least 50 cents.", "line_items"
            )
        quantity = int(line_items[0].get("quantity", 1))
        if not params.get("success_url"):
            raise _invalid("Missing required param: success_url.", "success_url")
        if params.get("customer"):
            self._customer(params["customer"])
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "client_reference_id": params.get("client_reference_id"),
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata", {}),
            "subscription": None,
            "invoice": None,
            "payment_intent": None,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "created": self._now(),
            "expires_at": self._now() + 24 * 3600,
            "currency": currency,
            "amount_total": unit_amount * quantity,
            "livemode": False,
            "_line_items": [{"name": name, "unit_amount": unit_amount, "quantity": quantity}],
            "_payment_intent_metadata": (params.get("payment_intent_data") or {}).get(
                "metadata", {}
            ),
        }
        self.sessions[session_id] = session
        return self._public_session(session)

    def complete_payment_checkout(self, session_id: str, card: str = "visa") -> dict[str, Any]:
        """What the customer's browser does on Stripe's page for a payment-mode
        session: pay once. A declined card leaves the session open (the
        customer may try another card); a paid one completes it and Stripe
        sends payment_intent.succeeded and checkout.session.completed."""
        with self._operation():
            session = self._session(session_id)
            if session["mode"] != "payment":
                raise _invalid("This Checkout Session is not in payment mode.")
            if session["status"] != "open":
                raise _invalid("This Checkout Session is no longer open.")
            if session["customer"] is None:
                customer = self._new_customer(email=session.get("customer_email"), metadata={})
                session["customer"] = customer.data["id"]
            self.set_card(session["customer"], card)
            customer = self._customer(session["customer"])
            # _attempt_payment charges an invoice-shaped dict; a one-off payment
            # has none, so it gets a private stand-in for one.
            holder = {
                "id": None,
                "amount_due": session["amount_total"],
                "currency": session["currency"],
                "attempt_count": 0,
                "attempted": False,
                "_payment_intent": session["payment_intent"],
                "status_transitions": {},
            }
            error = self._attempt_payment(holder, customer, authenticated=True)
            pi_id = holder["_payment_intent"]
            session["payment_intent"] = pi_id
            self.payment_intents[pi_id]["metadata"] = dict(session["_payment_intent_metadata"])
            for payment_id in [k for k, v in self.invoice_payments.items() if v["invoice"] is None]:
                del self.invoice_payments[payment_id]
            if error is not None:
                self._emit("payment_intent.payment_failed", self.payment_intents[pi_id])
                raise StripeStandinError(402, error)
            session.update(status="complete", payment_status="paid")
            self._emit("payment_intent.succeeded", self.payment_intents[pi_id])
            self._emit(
                "charge.succeeded", self.charges[self.payment_intents[pi_id]["latest_charge"]]
            )
            self._emit("checkout.session.completed", self._public_session(session))
            return self._public_session(session)

    def _session(self, session_id: str) -> dict[str, Any]:
        if session_id not in self.sessions:
            raise _missing("checkout.session", session_id, "session")
        return self.sessions[session_id]

    @staticmethod
    def _public_session(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # ------------------------------------------------------------ subscriptions

    def _new_subscription(
        self, customer_id: str, price_id: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        now = self._now()
        sub_id = self._id("sub")
        item_id = self._id("si")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer_id,
            "status": "incomplete",
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "ended_at": None,
            "billing_cycle_anchor": now,
            "collection_method": "charge_automatically",
            "created": now,
            "start_date": now,
            "currency": self._price(price_id)["currency"],
            "latest_invoice": None,
            "metadata": dict(metadata),
            "default_payment_method": None,
            "livemode": False,
            "_cycle": 0,
            "_item": {
                "id": item_id,
                "object": "subscription_item",
                "subscription": sub_id,
                "price": price_id,
                "quantity": 1,
                "created": now,
                "metadata": {},
                "current_period_start": now,
                "current_period_end": now,
            },
        }
        self._set_period(sub)
        self.subscriptions[sub_id] = sub
        return sub

    def _set_period(self, sub: dict[str, Any]) -> None:
        anchor = datetime.fromtimestamp(sub["billing_cycle_anchor"], UTC)
        sub["_item"]["current_period_start"] = _ts(add_months(anchor, sub["_cycle"]))
        sub["_item"]["current_period_end"] = _ts(add_months(anchor, sub["_cycle"] + 1))

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        if sub_id not in self.subscriptions:
            raise _missing("subscription", sub_id, "subscription_exposed_id")
        return self.subscriptions[sub_id]

    def _render_subscription(self, sub_id: str) -> dict[str, Any]:
        sub = self._subscription(sub_id)
        item = dict(sub["_item"], price=self._price(sub["_item"]["price"]))
        public = {k: v for k, v in sub.items() if not k.startswith("_")}
        public["items"] = {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        }
        return json.loads(json.dumps(public))

    def _update_subscription(self, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
        sub = self._subscription(sub_id)
        if sub["status"] == "canceled":
            raise _invalid("A canceled subscription can only update its metadata.")
        before = self._render_subscription(sub_id)
        new_price = None
        for item in params.get("items", []):
            if item.get("id") != sub["_item"]["id"]:
                raise _invalid(f"Invalid subscription item {item.get('id')}", "items[0][id]")
            if "price" in item:
                new_price = self._price(item["price"])["id"]
        proration = params.get("proration_behavior", "create_prorations")
        if new_price is not None and proration != "none":
            # Prorations are deliberately not modelled: Workroom never asks for them.
            raise _invalid(
                "The stand-in only models proration_behavior=none.", "proration_behavior"
            )
        anchor_now = params.get("billing_cycle_anchor") == "now"
        payment_behavior = params.get("payment_behavior", "allow_incomplete")

        if anchor_now:
            # A new period starts now and is invoiced at once at the (new) price.
            saved = (json.loads(json.dumps(sub)),)
            if new_price is not None:
                sub["_item"]["price"] = new_price
            sub["billing_cycle_anchor"] = self._now()
            sub["_cycle"] = 0
            self._set_period(sub)
            invoice = self._new_invoice(
                sub["customer"],
                billing_reason="subscription_update",
                subscription=sub,
                lines=[self._subscription_line(sub)],
            )
            self._finalize(invoice)
            error = self._attempt_payment(invoice, self._customer(sub["customer"]))
            if error is not None and payment_behavior == "error_if_incomplete":
                # Stripe leaves the subscription as it was and voids the invoice.
                self.subscriptions[sub_id] = saved[0]
                self._void(invoice)
                raise StripeStandinError(402, error)
            sub = self.subscriptions[sub_id]
            sub["latest_invoice"] = invoice["id"]
            if error is None:
                self._emit("invoice.paid", self._render_invoice(invoice["id"]))
            else:
                sub["status"] = "past_due"
                self._emit("invoice.payment_failed", self._render_invoice(invoice["id"]))
        elif new_price is not None:
            sub["_item"]["price"] = new_price

        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = _bool(params["cancel_at_period_end"])
            sub["cancel_at"] = (
                sub["_item"]["current_period_end"] if sub["cancel_at_period_end"] else None
            )
        if "metadata" in params:
            sub["metadata"].update(params["metadata"] or {})
            sub["metadata"] = {k: v for k, v in sub["metadata"].items() if v != ""}
        after = self._render_subscription(sub_id)
        previous = {
            k: before[k]
            for k in ("cancel_at_period_end", "items", "status")
            if before[k] != after[k]
        }
        self._emit("customer.subscription.updated", after, previous)
        return after

    def _cancel_subscription_now(self, params: dict[str, Any], sub_id: str) -> dict[str, Any]:
        self._cancel(self._subscription(sub_id))
        return self._render_subscription(sub_id)

    def _cancel(self, sub: dict[str, Any]) -> None:
        if sub["status"] == "canceled":
            return
        sub["status"] = "canceled"
        sub["canceled_at"] = sub["ended_at"] = self._now()
        for invoice in self.invoices.values():
            if invoice["_subscription"] == sub["id"] and invoice["status"] == "open":
                self._void(invoice)
        self._emit("customer.subscription.deleted", self._render_subscription(sub["id"]))

    # ------------------------------------------------------------ invoices

    def _subscription_line(self, sub: dict[str, Any]) -> dict[str, Any]:
        price = self._price(sub["_item"]["price"])
        return {
            "amount": price["unit_amount"],
            "currency": price["currency"],
            "description": f"1 × {price['nickname']} (at ${price['unit_amount'] / 100:.2f} / month)",
            "period": {
                "start": sub["_item"]["current_period_start"],
                "end": sub["_item"]["current_period_end"],
            },
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
            },
            "quantity": 1,
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {
                    "subscription": sub["id"],
                    "subscription_item": sub["_item"]["id"],
                    "proration": False,
                    "invoice_item": None,
                },
                "invoice_item_details": None,
            },
        }

    def _create_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise _invalid("Missing required param: customer.", "customer")
        self._customer(customer_id)
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            raise _invalid("Missing required param: amount.", "amount") from None
        item_id = self._id("ii")
        now = self._now()
        target = None
        if params.get("invoice"):
            target = self._get(self.invoices, "invoice", params["invoice"])
            if target["status"] != "draft":
                raise _invalid("Invoice items can only be added to draft invoices.", "invoice")
        item = {
            "id": item_id,
            "object": "invoiceitem",
            "amount": amount,
            "currency": params.get("currency", "usd"),
            "customer": customer_id,
            "description": params.get("description"),
            "invoice": None,
            "metadata": params.get("metadata", {}),
            "period": {"start": now, "end": now},
            "date": now,
            "livemode": False,
            "_subscription": params.get("subscription"),
        }
        self.invoice_items[item_id] = item
        if target is not None:
            item["invoice"] = target["id"]
            target["_lines"].append(self._item_line(item, target["id"]))
            self._retotal(target)
        return {k: v for k, v in item.items() if not k.startswith("_")}

    def _item_line(self, item: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        return {
            "id": self._id("il"),
            "object": "line_item",
            "invoice": invoice_id,
            "amount": item["amount"],
            "currency": item["currency"],
            "description": item["description"],
            "period": item["period"],
            "pricing": None,
            "quantity": 1,
            "parent": {
                "type": "invoice_item_details",
                "invoice_item_details": {"invoice_item": item["id"], "proration": False},
                "subscription_item_details": None,
            },
        }

    @staticmethod
    def _retotal(invoice: dict[str, Any]) -> None:
        total = sum(line["amount"] for line in invoice["_lines"])
        invoice.update(
            amount_due=total,
            amount_remaining=total - invoice["amount_paid"],
            total=total,
            subtotal=total,
        )

    def _create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise _invalid("Missing required param: customer.", "customer")
        self._customer(customer_id)
        sub = self._subscription(params["subscription"]) if params.get("subscription") else None
        pending = []
        if params.get("pending_invoice_items_behavior", "exclude") == "include":
            pending = [
                item
                for item in self.invoice_items.values()
                if item["customer"] == customer_id
                and item["invoice"] is None
                and (sub is None or item["_subscription"] == sub["id"])
            ]
        invoice = self._new_invoice(
            customer_id,
            billing_reason="manual",
            subscription=sub,
            lines=[],
            metadata=params.get("metadata", {}),
            description=params.get("description"),
            auto_advance=_bool(params.get("auto_advance", "false")),
            currency=params.get("currency", "usd"),
        )
        for item in pending:
            item["invoice"] = invoice["id"]
            invoice["_lines"].append(self._item_line(item, invoice["id"]))
        self._retotal(invoice)
        return self._render_invoice(invoice["id"])

    def _new_invoice(
        self,
        customer_id: str,
        *,
        billing_reason: str,
        subscription: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        auto_advance: bool = True,
        currency: str | None = None,
    ) -> dict[str, Any]:
        invoice_id = self._id("in")
        now = self._now()
        for line in lines:
            line.setdefault("id", self._id("il"))
            line.setdefault("object", "line_item")
            line["invoice"] = invoice_id
        total = sum(line["amount"] for line in lines)
        period_start = lines[0]["period"]["start"] if subscription and lines else now
        period_end = lines[0]["period"]["end"] if subscription and lines else now
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer_id,
            "status": "draft",
            "number": None,
            "amount_due": total,
            "amount_paid": 0,
            "amount_remaining": total,
            "total": total,
            "subtotal": total,
            "currency": currency or (lines[0]["currency"] if lines else "usd"),
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "auto_advance": auto_advance,
            "attempt_count": 0,
            "attempted": False,
            "description": description,
            "metadata": metadata or {},
            "period_start": period_start,
            "period_end": period_end,
            "created": now,
            "livemode": False,
            "parent": (
                {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "subscription": subscription["id"],
                        "metadata": dict(subscription["metadata"]),
                        "subscription_proration_date": None,
                    },
                }
                if subscription
                else None
            ),
            "status_transitions": {
                "finalized_at": None,
                "paid_at": None,
                "voided_at": None,
                "marked_uncollectible_at": None,
            },
            "last_finalization_error": None,
            "hosted_invoice_url": None,
            "_lines": lines,
            "_subscription": subscription["id"] if subscription else None,
            "_payment_intent": None,
        }
        self.invoices[invoice_id] = invoice
        return invoice

    def _render_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self._get(self.invoices, "invoice", invoice_id)
        public = {k: v for k, v in invoice.items() if not k.startswith("_")}
        public["lines"] = {
            "object": "list",
            "data": invoice["_lines"],
            "has_more": False,
            "total_count": len(invoice["_lines"]),
            "url": f"/v1/invoices/{invoice_id}/lines",
        }
        return json.loads(json.dumps(public))

    def _list_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first, like Stripe; `subscription`, `customer`, `limit`, `starting_after`."""
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise _invalid("Limit must be between 1 and 100.", "limit")
        matching = [
            inv
            for inv in self.invoices.values()
            if (not params.get("subscription") or inv["_subscription"] == params["subscription"])
            and (not params.get("customer") or inv["customer"] == params["customer"])
        ]
        matching.sort(
            key=lambda inv: (inv["created"], int(inv["id"].split("_")[1][:6])), reverse=True
        )
        if params.get("starting_after"):
            ids = [inv["id"] for inv in matching]
            matching = matching[ids.index(params["starting_after"]) + 1 :]
        page = matching[:limit]
        return {
            "object": "list",
            "data": [self._render_invoice(inv["id"]) for inv in page],
            "has_more": len(matching) > limit,
            "url": "/v1/invoices",
        }

    # ------------------------------------------------------------ refunds and disputes

    def _refund_charge(
        self, charge: dict[str, Any], amount: int, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        if not charge.get("paid"):
            raise _invalid(
                "This charge has not succeeded and cannot be refunded.", "charge", "charge_not_paid"
            )
        left = charge["amount"] - charge.get("amount_refunded", 0)
        if amount <= 0:
            raise _invalid("Refund amount must be positive.", "amount")
        if amount > left:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount",
                "amount_too_large",
            )
        refund_id = self._id("re")
        refund = self.refunds[refund_id] = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "created": self._now(),
            "metadata": metadata,
            "payment_intent": charge.get("payment_intent"),
            "reason": None,
            "status": "succeeded",
        }
        charge["amount_refunded"] = charge.get("amount_refunded", 0) + amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._emit("charge.refunded", charge)
        return refund

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("charge"):
            charge = self._get(self.charges, "charge", params["charge"])
        elif params.get("payment_intent"):
            intent = self._get(self.payment_intents, "payment_intent", params["payment_intent"])
            charge = self.charges[intent["latest_charge"]]
        else:
            raise _invalid("One of charge or payment_intent is required.", "charge")
        amount = int(params.get("amount") or (charge["amount"] - charge.get("amount_refunded", 0)))
        return self._refund_charge(charge, amount, params.get("metadata") or {})

    def _list_invoice_payments(self, params: dict[str, Any]) -> dict[str, Any]:
        data = list(self.invoice_payments.values())
        if params.get("invoice"):
            data = [p for p in data if p["invoice"] == params["invoice"]]
        wanted = (params.get("payment") or {}).get("payment_intent")
        if wanted:
            data = [p for p in data if p["payment"].get("payment_intent") == wanted]
        limit = int(params.get("limit") or 10)
        return {
            "object": "list",
            "data": data[:limit],
            "has_more": len(data) > limit,
            "url": "/v1/invoice_payments",
        }

    def refund_in_dashboard(self, charge_id: str, amount: int) -> dict[str, Any]:
        """Test helper: somebody refunds in Stripe's dashboard (charge.refunded follows)."""
        with self._operation():
            return self._refund_charge(self._get(self.charges, "charge", charge_id), amount, {})

    def charge_of_invoice(self, invoice_id: str) -> str:
        """Test helper: the charge that paid a Stripe invoice."""
        intent = self.invoices[invoice_id]["_payment_intent"]
        return self.payment_intents[intent]["latest_charge"]

    def open_dispute(self, charge_id: str, reason: str = "fraudulent") -> dict[str, Any]:
        """Test helper: the card holder disputes a charge (charge.dispute.created)."""
        with self._operation():
            charge = self._get(self.charges, "charge", charge_id)
            dispute_id = self._id("dp")
            dispute = self.disputes[dispute_id] = {
                "id": dispute_id,
                "object": "dispute",
                "amount": charge["amount"],
                "charge": charge_id,
                "currency": charge["currency"],
                "created": self._now(),
                "reason": reason,
                "status": "needs_response",
                "payment_intent": charge.get("payment_intent"),
            }
            self._emit("charge.dispute.created", dispute)
            return dispute

    def close_dispute(self, dispute_id: str, status: str = "lost") -> dict[str, Any]:
        """Test helper: the dispute is decided (charge.dispute.closed): won or lost."""
        with self._operation():
            dispute = self._get(self.disputes, "dispute", dispute_id)
            dispute["status"] = status
            self._emit("charge.dispute.closed", dispute)
            return dispute

    def _invoice_payments_list(self, invoice_id: str) -> dict[str, Any]:
        data = [p for p in self.invoice_payments.values() if p["invoice"] == invoice_id]
        return {"object": "list", "data": data, "has_more": False, "url": "/v1/invoice_payments"}

    def _finalize(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "draft":
            raise _invalid("This invoice is already finalized.")
        customer = invoice["customer"]
        invoice["status"] = "open"
        invoice["hosted_invoice_url"] = (
            f"https://invoice.stripe.com/i/acct_standin/test_{invoice['id']}"
        )
        # Numbers are unique per customer, like Stripe's default sequencing.
        sequence = self._invoice_sequences[customer] = self._invoice_sequences.get(customer, 0) + 1
        invoice["number"] = f"{customer.split('_')[1][:6].upper()}-{sequence:04d}"
        invoice["status_transitions"]["finalized_at"] = self._now()
        if invoice["total"] == 0:
            invoice["status"] = "paid"
            invoice["status_transitions"]["paid_at"] = self._now()

    def _finalize_invoice(self, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        invoice = self._get(self.invoices, "invoice", invoice_id)
        self._finalize(invoice)
        self._emit("invoice.finalized", self._render_invoice(invoice_id))
        return self._render_invoice(invoice_id)

    def _pay_invoice_endpoint(self, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        invoice = self._get(self.invoices, "invoice", invoice_id)
        if invoice["status"] == "draft":
            self._finalize(invoice)
        if invoice["status"] == "paid":
            raise _invalid("Invoice is already paid", code="invoice_already_paid")
        if invoice["status"] != "open":
            raise _invalid(f"You cannot pay an invoice with status {invoice['status']}.")
        error = self._attempt_payment(invoice, self._customer(invoice["customer"]))
        if error is not None:
            if error["code"] == REQUIRES_ACTION_CODE:
                self._emit("invoice.payment_action_required", self._render_invoice(invoice_id))
            else:
                self._emit("invoice.payment_failed", self._render_invoice(invoice_id))
            raise StripeStandinError(402, error)
        self._emit("invoice.paid", self._render_invoice(invoice_id))
        self._emit("invoice.payment_succeeded", self._render_invoice(invoice_id))
        return self._render_invoice(invoice_id)

    def _void(self, invoice: dict[str, Any]) -> None:
        invoice["status"] = "void"
        invoice["status_transitions"]["voided_at"] = self._now()

    def _void_invoice(self, params: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        invoice = self._get(self.invoices, "invoice", invoice_id)
        if invoice["status"] != "open":
            raise _invalid(f"You can only void an open invoice (this one is {invoice['status']}).")
        self._void(invoice)
        self._emit("invoice.voided", self._render_invoice(invoice_id))
        return self._render_invoice(invoice_id)

    def _attempt_payment(
        self, invoice: dict[str, Any], customer: _Customer, *, authenticated: bool = False
    ) -> dict[str, Any] | None:
        """Charge the default card for the invoice; None on success, else the error object.

        A card that needs 3-D Secure (and has not just been authenticated) is not
        charged: the payment intent waits in requires_action with a redirect to
        the hosted page, and invoices.pay answers Stripe's
        invoice_payment_intent_requires_action error."""
        now = self._now()
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        card = customer.card
        pi_id = invoice["_payment_intent"] or self._id("pi")
        invoice["_payment_intent"] = pi_id
        if card is not None and card.requires_auth and not authenticated:
            url = invoice.get("hosted_invoice_url") or f"https://hooks.stripe.com/3d_secure/{pi_id}"
            self.payment_intents[pi_id] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": invoice["amount_due"],
                "currency": invoice["currency"],
                "customer": customer.data["id"],
                "created": now,
                "status": "requires_action",
                "next_action": {"type": "redirect_to_url", "redirect_to_url": {"url": url}},
                "latest_charge": None,
                "last_payment_error": None,
                "livemode": False,
            }
            if invoice["id"] is not None and not any(
                p["payment"]["payment_intent"] == pi_id for p in self.invoice_payments.values()
            ):
                payment_id = self._id("inpay")
                self.invoice_payments[payment_id] = {
                    "id": payment_id,
                    "object": "invoice_payment",
                    "amount_paid": None,
                    "amount_requested": invoice["amount_due"],
                    "created": now,
                    "currency": invoice["currency"],
                    "invoice": invoice["id"],
                    "is_default": True,
                    "livemode": False,
                    "payment": {"type": "payment_intent", "payment_intent": pi_id, "charge": None},
                    "status": "open",
                    "status_transitions": {"canceled_at": None, "paid_at": None},
                }
            return {
                "type": "card_error",
                "code": REQUIRES_ACTION_CODE,
                "message": "This payment requires additional user action before it can be "
                "completed successfully. Payment can be completed using the PaymentIntent "
                "associated with the invoice.",
                "payment_intent": json.loads(json.dumps(self.payment_intents[pi_id])),
            }
        charge_id = self._id("ch")
        decline = None if card is None else card.decline_code
        if card is None:
            code, message, decline = (
                "payment_method_missing",
                "The customer has no default payment method.",
                None,
            )
        elif decline:
            code, message = _DECLINES[decline]
        failed = card is None or decline is not None
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": invoice["amount_due"],
            "currency": invoice["currency"],
            "customer": customer.data["id"],
            "created": now,
            "paid": not failed,
            "amount_refunded": 0,
            "refunded": False,
            "status": "failed" if failed else "succeeded",
            "failure_code": code if failed else None,
            "failure_message": message if failed else None,
            "payment_intent": pi_id,
            "payment_method_details": (
                {
                    "type": "card",
                    "card": {
                        "brand": card.brand,
                        "last4": card.last4,
                        "exp_month": card.exp_month,
                        "exp_year": card.exp_year,
                        "funding": "credit",
                        "country": "US",
                    },
                }
                if card
                else None
            ),
            "livemode": False,
        }
        error = None
        if failed:
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline,
                "message": message,
                "charge": charge_id,
                "doc_url": f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}",
            }
        self.payment_intents[pi_id] = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": invoice["amount_due"],
            "currency": invoice["currency"],
            "customer": customer.data["id"],
            "created": now,
            "status": "requires_payment_method" if failed else "succeeded",
            "latest_charge": charge_id,
            "last_payment_error": error,
            "livemode": False,
        }
        payment = next(
            (p for p in self.invoice_payments.values() if p["payment"]["payment_intent"] == pi_id),
            None,
        )
        if payment is None:
            payment_id = self._id("inpay")
            payment = self.invoice_payments[payment_id] = {
                "id": payment_id,
                "object": "invoice_payment",
                "amount_paid": None,
                "amount_requested": invoice["amount_due"],
                "created": now,
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": pi_id, "charge": None},
                "status": "open",
                "status_transitions": {"canceled_at": None, "paid_at": None},
            }
        if failed:
            return error
        payment.update(amount_paid=invoice["amount_due"], status="paid")
        payment["status_transitions"]["paid_at"] = now
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = now
        return None


class StandinHTTPClient(stripe.HTTPClient):
    """The SDK's transport, answering from the stand-in instead of the network."""

    name = "workroom-stripe-standin"

    def __init__(self, standin: StripeStandin):
        super().__init__()
        self.standin = standin

    def request(self, method, url, headers, post_data=None, *, _usage=None):  # noqa: ANN001
        body = post_data.decode("utf-8") if isinstance(post_data, bytes) else post_data
        status, text = self.standin.handle(method, url, dict(headers or {}), body)
        return (
            text,
            status,
            {"request-id": f"req_{len(self.standin.requests)}", "content-type": "application/json"},
        )

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):  # noqa: ANN001
        raise NotImplementedError("Workroom never streams from Stripe")

    def close(self) -> None:
        return None
