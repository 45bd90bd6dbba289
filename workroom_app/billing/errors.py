"""The base of what billing refuses with a message for the user.

SubscriptionError is every refusal of the subscription engine (billing/subscriptions/errors.py
re-exports it); it lives here, below the catalog, because the catalog's UnknownPlan is one of
them: a plan key from a browser that names no plan is refused with the same message wherever it
is looked up, and the states show it like any other refusal."""

from __future__ import annotations


class SubscriptionError(Exception):
    """A request the engine refuses; the message is shown to the user as is."""
