"""The local test-mode checkout page state (/checkout?plan=KEY).

The card form (state/card_payment.py) is an uncontrolled HTML form: the number and CVC go
to the server once, in the submit event, are checked by billing (read_card_form, then the
engine) and are never kept in this state (which the state manager may write to disk or
Redis). What the page shows about the payment (charge, credits, renewal date) is the
engine's preview; the same preview is handed back to billing on Pay, so it charges exactly
what was shown or refuses when the account changed in between. When new plans are paid on
the gateway's own page (Stripe), this page hands over to it instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import reflex as rx

from workroom_app.billing import subscriptions
from workroom_app.billing.subscriptions import (
    CardForm,
    SubscribePreview,
    SubscriptionError,
    card_form_field,
    plan_actions,
)
from workroom_app.components.plan_text import credits_text, date_text, money_text
from workroom_app.db import read_session
from workroom_app.routes import SUBSCRIPTION_ROUTE
from workroom_app.state.card_payment import CardPaymentMixin
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.plans import check_plan_key, start_hosted_checkout
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)


# ------------------------------------------------------------- blocking calls


def read_preview(account_id: int, plan_key: str) -> tuple[dict[str, Any], str]:
    """(the engine's subscribe preview as a dict, the saved card's label or "")."""
    with read_session() as session:
        preview = subscriptions.preview_subscribe(session, account_id, plan_key)
        card = subscriptions.default_card(session, account_id)
        label = subscriptions.card_label(card) if card is not None else ""
    return dataclasses.asdict(preview), label


def pay(account_id: int, preview: dict[str, Any], card: CardForm | None) -> subscriptions.Outcome:
    expected = SubscribePreview(**{f: preview[f] for f in SubscribePreview.__dataclass_fields__})
    return plan_actions.subscribe(account_id, expected, card)


class CheckoutState(CardPaymentMixin, SessionState):
    ready: bool = False
    loading: bool = True
    page_error: str = ""
    plan_key: str = ""
    plan_name: str = ""
    charge_text: str = ""
    credits_added_text: str = ""
    renewal_text: str = ""

    _preview: dict[str, Any] | None = None

    def _show_preview(self, preview: dict[str, Any], saved: str) -> None:
        self._preview = preview
        self.plan_key = preview["plan_key"]
        self.plan_name = preview["plan_name"]
        self.charge_text = money_text(preview["charge_cents"], preview["currency"])
        self.credits_added_text = credits_text(preview["credits_added"])
        self.renewal_text = date_text(preview["renewal_date"])
        self.saved_card = saved
        self.ready = True

    async def load(self):
        """on_load: the plan from ?plan=KEY, checked, and the engine's preview."""
        self.ready = False
        self.page_error = ""
        self._preview = None
        self._clear_errors()
        account_id = self._account_id
        if account_id is None:
            return
        self.loading = True
        yield
        try:
            raw = self.router.url.query_parameters.get("plan", "")
            plan_key = check_plan_key(raw)
            preview, saved = await asyncio.to_thread(read_preview, account_id, plan_key)
        except SubscriptionError as exc:
            self.page_error = str(exc)
            return
        finally:
            self.loading = False
        if plan_actions.new_plans_use_hosted_checkout():
            # The gateway (Stripe) takes the card on its own hosted page.
            try:
                url = await asyncio.to_thread(start_hosted_checkout, account_id, preview)
            except Exception as exc:  # noqa: BLE001  (gateway errors carry user messages)
                self.page_error = (
                    str(exc)
                    if isinstance(exc, SubscriptionError)
                    else ("We could not open the payment page. Please try again.")
                )
                return
            yield rx.redirect(url, is_external=True)
            return
        self._show_preview(preview, saved)

    async def _pay(self, card: CardForm | None):
        account_id = self._account_id
        preview = self._preview
        if account_id is None or preview is None or self.busy:
            return
        if preview.get("account_id") != account_id:
            self.page_error = "This checkout is for another account. Open it again from Plans."
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
            await self._reload_preview(account_id, preview["plan_key"])
            self.form_error = str(exc)
            return
        except SubscriptionError as exc:
            self.form_error = str(exc)
            return
        except Exception:  # noqa: BLE001
            log.exception("checkout failed")
            self.form_error = "Something went wrong; nothing was charged. Please try again."
            return
        finally:
            self.busy = False
        if outcome.requires_action:
            # 3-D Secure: on to the confirmation step; it proceeds once confirmed.
            yield go_to_confirmation(outcome.confirm_url)
            return
        if not outcome.ok:
            # Declined: only a failed payment row was written. A retry needs a
            # fresh preview (the failed attempt changes the payment's key).
            await self._reload_preview(account_id, preview["plan_key"])
            self.form_error = outcome.message
            yield rx.toast.error(outcome.message)
            return
        self._preview = None
        await self._reload_account()
        yield rx.toast.success(outcome.message, duration=8000)
        yield rx.redirect(SUBSCRIPTION_ROUTE)

    async def _reload_preview(self, account_id: int, plan_key: str) -> None:
        try:
            preview, saved = await asyncio.to_thread(read_preview, account_id, plan_key)
        except SubscriptionError as exc:
            self.ready = False
            self.page_error = str(exc)
            return
        self._show_preview(preview, saved)
