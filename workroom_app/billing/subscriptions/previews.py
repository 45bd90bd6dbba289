"""What a checkout or a plan change will do, shown before the user confirms and
compared again when they do (a changed term means nothing is charged)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class SubscribePreview:
    account_id: int
    plan_key: str
    plan_name: str
    charge_cents: int
    currency: str
    credits_added: int
    renewal_date: date
    idempotency_key: str

    def same_terms(self, other: SubscribePreview) -> bool:
        return _terms(self) == _terms(other)


@dataclass(frozen=True)
class ChangePreview:
    """Exactly what a plan change will do, shown before the user confirms."""

    kind: str  # "upgrade" | "downgrade"
    account_id: int
    subscription_id: int
    from_plan_key: str
    from_plan_name: str
    to_plan_key: str
    to_plan_name: str
    charge_cents: int
    currency: str
    credits_added: int
    credits_burned: int
    balance_before: int
    balance_after: int
    new_renewal_date: date
    renewal_amount_cents: int  # what each later renewal charges
    idempotency_key: str

    def same_terms(self, other: ChangePreview) -> bool:
        return _terms(self) == _terms(other)


def _terms(preview: SubscribePreview | ChangePreview) -> tuple:
    # Everything the user was shown, balance included: a generation that ran
    # between preview and confirm changes how many credits burn.
    return tuple(
        getattr(preview, f)
        for f in preview.__dataclass_fields__
        if f not in ("plan_name", "from_plan_name", "to_plan_name")
    )
