"""Buy credits (/credits): the catalog's credit packs and their checkout.

The browser only ever names a pack key; the price, the credits and the
purchase's idempotency key come from the engine's preview, kept in the backend
var `_preview` and handed back to the engine on Pay (so a double click charges
once and a price change charges nothing). When packs are paid on the gateway's own
page (Stripe), choosing a pack opens its hosted Checkout (mode payment) instead of the
card form;
coming back, ?checkout_session=… is credited at once (the webhook that follows
changes nothing).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import reflex as rx

from workroom_app import settings
from workroom_app.billing import pack_checkout, packs, subscriptions
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.subscriptions import CardForm, SubscriptionError, card_form_field
from workroom_app.components.plan_text import credits_text, date_text, money_text
from workroom_app.db import read_session, write_session
from workroom_app.routes import CREDITS_ROUTE
from workroom_app.state.card_payment import CardPaymentMixin
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PackCard:
    key: str
    label: str
    credits_text: str
    price_text: str


# ------------------------------------------------------------- blocking calls


def list_packs() -> list[PackCard]:
    catalog = get_catalog()
    return [
        PackCard(
            key=p.key,
            label=p.label,
            credits_text=credits_text(p.credits),
            price_text=money_text(p.price_cents, catalog.currency),
        )
        for p in catalog.packs
    ]


def expiry_months() -> int:
    return get_catalog().pack_expiry_months


def read_preview(account_id: int, pack_key: object) -> tuple[dict[str, Any], str]:
    """(the engine's pack preview as a dict, the saved card's label or "")."""
    with read_session() as session:
        preview = packs.preview(session, account_id, pack_key)
        card = subscriptions.default_card(session, account_id)
        label = subscriptions.card_label(card) if card is not None else ""
    return dataclasses.asdict(preview), label


def pay(account_id: int, preview: dict[str, Any], card: CardForm | None) -> subscriptions.Outcome:
    expected = packs.PackPreview(**{f: preview[f] for f in packs.PackPreview.__dataclass_fields__})
    with write_session() as session:
        return packs.buy(
            session, account_id, expected.pack_key, card=card, expected_preview=expected
        )


def start_hosted_pack_checkout(account_id: int, preview: dict[str, Any]) -> str:
    """The gateway's checkout page URL for the pack the user chose."""
    base = settings.get_settings().public_url.rstrip("/")
    expected = packs.PackPreview(**{f: preview[f] for f in packs.PackPreview.__dataclass_fields__})
    return pack_checkout.checkout_url(
        account_id,
        expected,
        success_url=f"{base}{CREDITS_ROUTE}?checkout_session={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}{CREDITS_ROUTE}",
    )


class CreditsState(CardPaymentMixin, SessionState):
    packs: list[PackCard] = []
    expiry_months: int = 12
    loading: bool = True
    page_error: str = ""
    # The pack being bought (empty: none chosen yet).
    chosen_key: str = ""
    chosen_label: str = ""
    charge_text: str = ""
    credits_added_text: str = ""
    expires_text: str = ""
    # After a successful purchase.
    done_message: str = ""

    _preview: dict[str, Any] | None = None

    def _show_preview(self, preview: dict[str, Any], saved: str) -> None:
        self._preview = preview
        self.chosen_key = preview["pack_key"]
        self.chosen_label = preview["label"]
        self.charge_text = money_text(preview["charge_cents"], preview["currency"])
        self.credits_added_text = credits_text(preview["credits"])
        self.expires_text = date_text(preview["expires_on"])
        self.saved_card = saved

    def _forget_choice(self) -> None:
        self._preview = None
        self.chosen_key = ""
        self._clear_errors()

    async def load(self):
        """on_load: the packs; back from Stripe Checkout, credit the pack now."""
        self._forget_choice()
        self.page_error = ""
        self.done_message = ""
        account_id = self._account_id
        if account_id is None:
            return
        self.loading = True
        yield
        try:
            self.packs = await asyncio.to_thread(list_packs)
            self.expiry_months = await asyncio.to_thread(expiry_months)
            checkout_id = self.router.url.query_parameters.get("checkout_session", "")
            if checkout_id and pack_checkout.uses_hosted_checkout():
                try:
                    credited = await asyncio.to_thread(
                        pack_checkout.finish_checkout, account_id, checkout_id
                    )
                except Exception as exc:  # noqa: BLE001
                    log.warning("pack checkout sync failed: %s", exc)
                    credited = False
                if credited:
                    await self._reload_account()
                    self.done_message = "Payment received: your credits were added to your balance."
                else:
                    self.done_message = "Payment received: your credits will appear in a moment."
        finally:
            self.loading = False

    async def choose(self, pack_key: str):
        """Pick a pack: the engine's preview (or, with Stripe, its Checkout page)."""
        account_id = self._account_id
        if account_id is None or self.busy:
            return
        self._clear_errors()
        self.done_message = ""
        try:
            preview, saved = await asyncio.to_thread(read_preview, account_id, pack_key)
        except SubscriptionError as exc:
            self._forget_choice()
            self.page_error = str(exc)
            return
        self.page_error = ""
        if pack_checkout.uses_hosted_checkout():
            self.busy = True
            yield
            try:
                url = await asyncio.to_thread(start_hosted_pack_checkout, account_id, preview)
            except Exception as exc:  # noqa: BLE001  (gateway errors carry user messages)
                self.page_error = (
                    str(exc)
                    if isinstance(exc, SubscriptionError)
                    else ("We could not open the payment page. Please try again.")
                )
                return
            finally:
                self.busy = False
            yield rx.redirect(url, is_external=True)
            return
        self._show_preview(preview, saved)

    def cancel_choice(self):
        if not self.busy:
            self._forget_choice()

    async def _pay(self, card: CardForm | None):
        account_id = self._account_id
        preview = self._preview
        if account_id is None or preview is None or self.busy:
            return
        if preview.get("account_id") != account_id:
            self._forget_choice()
            self.page_error = "This purchase was started by another account. Choose a pack again."
            return
        self._clear_errors()
        self.busy = True
        yield
        try:
            outcome = await asyncio.to_thread(pay, account_id, preview, card)
        except subscriptions.CardRejected as exc:
            self._set_error(card_form_field(exc), str(exc))
            return
        except subscriptions.PreviewOutdated as exc:
            await self._reload_preview(account_id, preview["pack_key"])
            self.form_error = str(exc)
            return
        except SubscriptionError as exc:
            self.form_error = str(exc)
            return
        except Exception:  # noqa: BLE001
            log.exception("pack purchase failed")
            self.form_error = "Something went wrong; nothing was charged. Please try again."
            return
        finally:
            self.busy = False
        if outcome.requires_action:
            # 3-D Secure: on to the confirmation step; it proceeds once confirmed.
            yield go_to_confirmation(outcome.confirm_url)
            return
        if not outcome.ok:
            # Declined: a failed payment row only. A retry is a new payment (new key).
            await self._reload_preview(account_id, preview["pack_key"])
            self.form_error = outcome.message
            yield rx.toast.error(outcome.message)
            return
        self._forget_choice()
        await self._reload_account()
        self.done_message = outcome.message
        yield rx.toast.success(outcome.message, duration=8000)

    async def _reload_preview(self, account_id: int, pack_key: str) -> None:
        try:
            preview, saved = await asyncio.to_thread(read_preview, account_id, pack_key)
        except SubscriptionError as exc:
            self._forget_choice()
            self.page_error = str(exc)
            return
        self._show_preview(preview, saved)
