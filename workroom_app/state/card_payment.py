"""The card form shared by the two local-checkout pages (a plan on /checkout, a credit pack
on /credits): its error vars, and the Pay events that read the form and hand the card (or
"the card on file") to the page's own `_pay`.

A mixin, not a parent state: Reflex substates share their parent's vars, so a common parent
would make one page's errors show on the other. The number and CVC are read once, in the
submit event, checked by billing (read_card_form) and never kept in the state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import reflex as rx

from workroom_app.billing.subscriptions import CardForm, CardFormError, read_card_form

# The state var that shows an error about each card form field; an error about anything
# else goes to the form-wide var of the page (`form_error` here, `card_form_error` on the
# Subscription page's card form).
_CARD_FIELD_ERROR_VARS = {
    "number": "number_error",
    "expiry": "expiry_error",
    "cvc": "cvc_error",
    "name": "name_error",
}


def card_error_var(field: str, form_wide: str) -> str:
    """The state var that shows an error about `field`: the field's own, else the form-wide one."""
    return _CARD_FIELD_ERROR_VARS.get(field, form_wide)


class CardPaymentMixin(rx.State, mixin=True):
    busy: bool = False
    # The card on file's label ("" when none): offered as "Pay with this card".
    saved_card: str = ""

    number_error: str = ""
    expiry_error: str = ""
    cvc_error: str = ""
    name_error: str = ""
    # A refused payment: the decline reason, shown above the Pay button.
    form_error: str = ""

    def _clear_errors(self) -> None:
        self.number_error = self.expiry_error = self.cvc_error = self.name_error = ""
        self.form_error = ""

    def _set_error(self, field: str, message: str) -> None:
        self._clear_errors()
        setattr(self, card_error_var(field, "form_error"), message)

    def _pay(self, card: CardForm | None) -> AsyncIterator[Any]:
        raise NotImplementedError  # each page pays for its own thing

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
