"""Errors a user can cause when generating. Every message is shown as is, so it
says what is wrong and what to do; raising one of them means nothing was written."""

from __future__ import annotations


class GenerationError(Exception):
    """Base class: ``str(error)`` / ``error.message`` is user-readable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(GenerationError):
    """The request itself is wrong (unknown model, bad duration, missing prompt...).

    ``field`` names the control at fault when known; ``required_plan`` is set
    when a higher plan would allow the request (the UI offers Upgrade then).
    """

    def __init__(self, message: str, *, field: str | None = None, required_plan: str | None = None):
        super().__init__(message)
        self.field = field
        self.required_plan = required_plan


class NotEnoughCredits(GenerationError):
    def __init__(self, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        self.missing = max(0, needed - available)
        super().__init__(
            f"This generation costs {needed} credits and you have {available}: "
            f"{self.missing} more needed. Upgrade your plan to get more credits."
        )


class TooManyRunning(GenerationError):
    def __init__(self, limit: int, plan_name: str) -> None:
        self.limit = limit
        noun = "generation" if limit == 1 else "generations"
        super().__init__(
            f"The {plan_name} plan runs {limit} {noun} at a time. Wait for one to finish, "
            "or upgrade to run more at once."
        )


class PriceChanged(GenerationError):
    """The price now is not the one the user was shown (the catalog changed under an open page):
    nothing is charged, and the user is told the new price."""

    def __init__(self, price_label: str) -> None:
        self.price_label = price_label
        super().__init__(
            f"The price changed: this generation now costs {price_label}. "
            "Nothing was charged; press Generate again to go ahead."
        )


class JobNotFound(GenerationError):
    """Also raised for another user's job, so ids reveal nothing."""

    def __init__(self) -> None:
        super().__init__("That generation was not found.")


class CannotCancel(GenerationError):
    pass


class InvalidUpload(GenerationError):
    pass
