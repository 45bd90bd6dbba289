"""What the subscription engine refuses: each message is shown to the user as is."""

from __future__ import annotations


class SubscriptionError(Exception):
    """A request the engine refuses; the message is shown to the user as is."""


class UnknownPlan(SubscriptionError):
    def __init__(self, plan_key: object = None) -> None:
        super().__init__("That plan does not exist. Choose a plan from the Plans page.")
        self.plan_key = plan_key


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
