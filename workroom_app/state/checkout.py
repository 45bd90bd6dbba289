"""The local test-mode checkout page state (/checkout?plan=KEY).

The card form is an uncontrolled HTML form: the number and CVC go to the
server once, in the submit event, are checked by billing/payments/cards.py
(through the engine) and are never kept in this state (which the state
manager may write to disk or Redis). What the page shows about the payment
(charge, credits, renewal date) is the engine's preview; the same preview is
handed back to the engine on Pay, so it charges exactly what was shown or
refuses when the account changed in between.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import reflex as rx

from workroom_app.billing import subscriptions
from workroom_app.billing.payments import cards
from workroom_app.billing.subscriptions import CardForm, SubscribePreview, SubscriptionError
from workroom_app.routes import PLANS_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.plans import (
    _settings_gateway,
    check_plan_key,
    credits_text,
    date_text,
    money_text,
    start_stripe_checkout,
)
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)

FIELDS = ("number", "expiry", "cvc", "name")
# Generous upper bounds on what a card form field can hold; longer is refused unread.
_MAX_FIELD = {"number": 32, "expiry": 9, "cvc": 8, "name": 100}


class CardFormError(SubscriptionError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def read_card_form(form_data: object) -> CardForm:
    """The raw form as the browser sent it -> a CardForm, or CardFormError naming the field.

    Only shape is checked here (strings of sane length, MM/YY, a name); the
    card itself (Luhn, brand, expiry, CVC length) is checked by payments/cards.py."""
    if not isinstance(form_data, dict):
        raise CardFormError("Fill in the card form.", "number")
    values: dict[str, str] = {}
    for name in FIELDS:
        value = form_data.get(name, "")
        if not isinstance(value, str) or len(value) > _MAX_FIELD[name]:
            raise CardFormError(f"The {name if name != 'cvc' else 'CVC'} field is invalid.", name)
        values[name] = value.strip()
    if not values["number"]:
        raise CardFormError("Enter your card number.", "number")
    expiry = cards.parse_expiry(values["expiry"])
    if expiry is None:
        raise CardFormError("Enter the expiry date as MM/YY.", "expiry")
    if not values["cvc"]:
        raise CardFormError("Enter your card's security code.", "cvc")
    if not values["name"]:
        raise CardFormError("Enter the name on the card.", "name")
    return CardForm(
        number=values["number"],
        exp_month=expiry[0],
        exp_year=expiry[1],
        cvc=values["cvc"],
        name=values["name"],
    )


def field_of(exc: Exception) -> str:
    field = getattr(exc, "field", None) or "form"
    # cards.py names the expiry check "expiry"; our form field is the same.
    return field if field in FIELDS else "form"


# ------------------------------------------------------------- blocking calls


# The card form's own error var for each field CardFormError / field_of can name;
# both the checkout page and the subscription page's card form use these names.
_CARD_FIELD_ERROR_VARS = {
    "number": "number_error",
    "expiry": "expiry_error",
    "cvc": "cvc_error",
    "name": "name_error",
}


def card_error_var(field: str, form_wide: str) -> str:
    """The state var that shows an error about `field`: the field's own, else the form-wide one."""
    return _CARD_FIELD_ERROR_VARS.get(field, form_wide)


def read_preview(account_id: int, plan_key: str) -> tuple[dict[str, Any], str]:
    """(the engine's subscribe preview as a dict, the saved card's label or "")."""
    from workroom_app.db import read_session

    with read_session() as session:
        preview = subscriptions.preview_subscribe(session, account_id, plan_key)
        card = subscriptions.default_card(session, account_id)
        label = subscriptions.card_label(card) if card is not None else ""
    return dataclasses.asdict(preview), label


def pay(account_id: int, preview: dict[str, Any], card: CardForm | None) -> subscriptions.Outcome:
    from workroom_app.db import write_session

    expected = SubscribePreview(**{f: preview[f] for f in SubscribePreview.__dataclass_fields__})
    with write_session() as session:
        return subscriptions.subscribe(
            session, account_id, expected.plan_key, card=card, expected_preview=expected
        )


class CheckoutState(SessionState):
    ready: bool = False
    loading: bool = True
    page_error: str = ""
    plan_key: str = ""
    plan_name: str = ""
    charge_text: str = ""
    credits_added_text: str = ""
    renewal_text: str = ""
    saved_card: str = ""
    busy: bool = False

    number_error: str = ""
    expiry_error: str = ""
    cvc_error: str = ""
    name_error: str = ""
    # A refused payment: the decline reason, shown above the Pay button.
    form_error: str = ""

    _preview: dict[str, Any] | None = None

    def _clear_errors(self) -> None:
        self.number_error = self.expiry_error = self.cvc_error = self.name_error = ""
        self.form_error = ""

    def _set_error(self, field: str, message: str) -> None:
        self._clear_errors()
        setattr(self, card_error_var(field, "form_error"), message)

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
        if _settings_gateway() == "stripe":
            # Stripe takes the card on its own hosted page.
            try:
                url = await asyncio.to_thread(start_stripe_checkout, account_id, preview)
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

    async def submit(self, form_data: dict):
        """Pay with the card typed into the form."""
        try:
            card = read_card_form(form_data)
        except CardFormError as exc:
            self._set_error(exc.field, str(exc))
            return
        async for update in self._pay(card):
            yield update

    async def pay_with_saved_card(self):
        async for update in self._pay(None):
            yield update

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
            self._set_error(field_of(exc), str(exc))
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

    def back_to_plans(self):
        return rx.redirect(PLANS_ROUTE)
