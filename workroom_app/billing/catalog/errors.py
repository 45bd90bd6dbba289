"""The catalog's errors: a bad catalog file (CatalogError) and a request that cannot be priced
(QuoteError and its kinds, whose class names quote.js reports too)."""

from __future__ import annotations

from workroom_app.billing.errors import SubscriptionError


class CatalogError(Exception):
    """The catalog file is missing or wrong; the message names the file and the field."""


class UnknownPlan(SubscriptionError, CatalogError, LookupError):
    """A plan key the catalog does not define. The one class for it: the catalog raises it, the
    subscription engine refuses a browser's unknown plan with it (a SubscriptionError, so the
    states show its message), and it is a LookupError for code that looks a plan up."""

    def __init__(self, plan_key: object = None) -> None:
        super().__init__("That plan does not exist. Choose a plan from the Plans page.")
        self.plan_key = plan_key


class QuoteError(ValueError):
    """A request that cannot be priced; `str(error)` is a message for the user."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    @property
    def kind(self) -> str:
        # The same names quote.js reports, so both sides can be compared.
        return type(self).__name__


class InvalidRequest(QuoteError):
    """A field is missing or of the wrong type (a bool, float or "8.5" where a whole number belongs)."""


class UnknownFeature(QuoteError):
    field = "feature"


class UnknownModel(QuoteError):
    field = "model"


class UnsupportedResolution(QuoteError):
    field = "resolution"


class OutOfRange(QuoteError):
    """A duration or count outside what the model offers."""


class TextTooLong(QuoteError):
    field = "text"

    def __init__(self, message: str, *, length: int, limit: int):
        super().__init__(message)
        self.length = length
        self.limit = limit


class PlanLimit(QuoteError):
    """Allowed by the model but not by the plan; `required_plan` is the cheapest plan that allows
    the request (None when no plan does)."""

    def __init__(
        self, message: str, *, required_plan: str | None, required_plan_name: str | None, field: str
    ):
        super().__init__(message, field=field)
        self.required_plan = required_plan
        self.required_plan_name = required_plan_name
