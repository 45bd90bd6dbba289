"""Helpers shared by the Stripe tests (no tests here): a stand-in Stripe with
the catalog's prices, a gateway and a webhook processor plugged into it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlmodel import select

from tests.support.fakes.stripe_standin import SignedEvent, StripeStandin
from workroom_app.billing import accounts, clock, ledger
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.payments.stripe import StripeGateway
from workroom_app.billing.stripe_webhooks import WebhookOutcome, WebhookProcessor
from workroom_app.db import read_session, write_session
from workroom_app.models import Invoice, LedgerEntry, Subscription, WebhookEvent
from workroom_app.settings import Settings

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
TRIAL_CREDITS = 50  # every sign-up starts with these


@dataclass
class StripeWorld:
    engine: object
    standin: StripeStandin
    gateway: StripeGateway
    processor: WebhookProcessor

    # ------------------------------------------------------------ actions

    def sign_up(self, email: str) -> int:
        with write_session(self.engine) as s:
            return accounts.sign_up(s, email, "correct horse battery", "User").id

    def open_checkout(self, account_id: int, plan: str = "starter"):
        account = SimpleNamespace(id=account_id, email=f"acct{account_id}@example.com")
        return self.gateway.create_checkout_session(
            account,
            plan,
            "https://app.test/ok?session={CHECKOUT_SESSION_ID}",
            "https://app.test/plans",
            idempotency_key=f"checkout:{account_id}:{plan}",
        )

    def checkout(self, account_id: int, plan: str = "starter", card: str = "visa") -> str:
        """Pay a checkout in the stand-in; returns the Stripe subscription id
        (the events wait in standin.pending_events)."""
        session = self.open_checkout(account_id, plan)
        self.standin.complete_checkout(session.id, card)
        return self.standin.sessions[session.id]["subscription"]

    def deliver(self, events: list[SignedEvent]) -> list[WebhookOutcome]:
        return [self.processor.process(e.payload.encode(), e.signature) for e in events]

    def deliver_pending(self) -> list[WebhookOutcome]:
        return self.deliver(self.standin.take_events())

    # ------------------------------------------------------------ reading

    def subscription(self, account_id: int) -> Subscription | None:
        with read_session(self.engine) as s:
            return s.exec(
                select(Subscription)
                .where(Subscription.account_id == account_id)
                .order_by(Subscription.id.desc())
            ).first()

    def balance(self, account_id: int) -> int:
        with read_session(self.engine) as s:
            return ledger.balance(s, account_id)

    def entries(self, account_id: int) -> list[tuple[str, int]]:
        with read_session(self.engine) as s:
            rows = s.exec(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.id)
            )
            return [(r.action_type, r.amount) for r in rows]

    def invoices(self, account_id: int) -> list[Invoice]:
        with read_session(self.engine) as s:
            return list(
                s.exec(select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.id))
            )

    def events(self) -> list[WebhookEvent]:
        with read_session(self.engine) as s:
            return list(
                s.exec(select(WebhookEvent).order_by(WebhookEvent.received_at, WebhookEvent.id))
            )

    def state(self, account_id: int) -> tuple:
        """Everything a customer's billing consists of, without ids and times
        that legitimately differ between two accounts."""
        sub = self.subscription(account_id)
        return (
            None
            if sub is None
            else (
                sub.plan_key,
                sub.status,
                sub.gateway,
                sub.anchor_day,
                sub.current_period_start.replace(tzinfo=None),
                sub.current_period_end.replace(tzinfo=None),
                sub.cancel_at_period_end,
                sub.failed_attempts,
            ),
            self.balance(account_id),
            tuple(self.entries(account_id)),
            tuple(
                (
                    i.kind,
                    i.status,
                    i.amount_cents,
                    i.card_brand,
                    i.card_last4,
                    i.plan_key,
                    (i.number or "").split("-")[-1],
                )
                for i in self.invoices(account_id)
            ),
        )


def standin_and_gateway(**gateway_options: Any) -> tuple[StripeStandin, StripeGateway]:
    """A stand-in Stripe holding the catalog's plan prices, and a gateway configured for it."""
    standin = StripeStandin(now=clock.now)
    catalog = get_catalog()
    prices = {
        key: standin.add_price(catalog.plan(key).price_cents, catalog.plan(key).name)
        for key in ("starter", "pro", "studio")
    }
    settings = Settings(
        payment_gateway="stripe",
        stripe_secret_key=standin.api_key,
        stripe_webhook_secret=standin.webhook_secret,
        stripe_price_starter=prices["starter"],
        stripe_price_pro=prices["pro"],
        stripe_price_studio=prices["studio"],
    )
    return standin, StripeGateway(settings, http_client=standin.http_client(), **gateway_options)


def make_world(engine) -> StripeWorld:
    standin, gateway = standin_and_gateway(max_network_retries=0)
    return StripeWorld(engine, standin, gateway, WebhookProcessor(engine, gateway))
