"""What the subscription engine refuses: each message is shown to the user as is."""

from __future__ import annotations

# Both live below the catalog (billing/errors.py, catalog/errors.py); re-exported here with the
# engine's other refusals.
from workroom_app.billing.catalog.errors import UnknownPlan as UnknownPlan
from workroom_app.billing.errors import SubscriptionError as SubscriptionError


class NotAPaidPlan(SubscriptionError):
    """Free is not a plan you subscribe or downgrade to: cancel auto-renewal instead."""


class SamePlan(SubscriptionError):
    pass


class AlreadySubscribed(SubscriptionError):
    pass


class NoSubscription(SubscriptionError):
    pass


class NoPaymentMethod(SubscriptionError):
    pass


class PreviewOutdated(SubscriptionError):
    """What the user confirmed no longer matches the account: nothing was done."""


class PaymentPastDue(SubscriptionError):
    pass


class RenewalInProgress(SubscriptionError):
    pass


class CardRejected(SubscriptionError):
    """The card form or the card itself was refused before any payment."""

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
