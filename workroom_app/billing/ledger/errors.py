"""The ledger's refusals: a message a user can be shown."""

from __future__ import annotations


class LedgerError(Exception):
    """A ledger operation was refused; the message can be shown to a user."""


class InsufficientCredits(LedgerError):
    def __init__(self, needed: int, available: int, message: str | None = None) -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            message
            or f"Not enough credits: this needs {needed} credits and the balance is {available}."
        )
