"""What the Plans page says: the money, credit and date text, each plan's card, and the
confirmation dialog's title, intro and numbers.

Plain Python (no Reflex): the numbers come from billing/ (the catalog, the account's
Standing and the engine's previews); only their wording lives here.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from workroom_app.billing import formatting
from workroom_app.billing.catalog import get_catalog
from workroom_app.billing.invoice_pdf import money
from workroom_app.billing.subscriptions import plan_actions
from workroom_app.billing.subscriptions.plan_actions import (
    CANCEL,
    DOWNGRADE,
    RESUME,
    SUBSCRIBE,
    UPGRADE,
    Standing,
)

ACTION_LABELS = {
    SUBSCRIBE: "Subscribe",
    UPGRADE: "Upgrade",
    DOWNGRADE: "Downgrade",
    CANCEL: "Cancel auto-renewal",
    RESUME: "Resume",
}

# Human names of the (feature, model) pairs a plan makes unlimited, and of the
# limit fields, for the plan cards.
_FEATURE_WORDS = {
    "image": "images",
    "video": "videos",
    "voiceover": "voiceovers",
    "face_swap": "face swaps",
    "lip_sync": "lip syncs",
}


# ------------------------------------------------------------------ formatting


def money_text(cents: int, currency: str = "usd") -> str:
    return money(int(cents), currency)


def date_text(value: date | datetime | None, tz: str | None = None) -> str:
    """The app's one date format, a datetime seen in the reader's zone `tz`."""
    return formatting.format_date(value, tz)


def credits_text(amount: int) -> str:
    return f"{int(amount):,}"


# -------------------------------------------------------------- display shapes


@dataclasses.dataclass
class PlanCard:
    """One plan as its card shows it (display strings only)."""

    key: str = ""
    name: str = ""
    price: str = ""
    period: str = ""
    credits: str = ""
    description: str = ""
    features: list[str] = dataclasses.field(default_factory=list)
    is_current: bool = False
    badge: str = ""
    action: str = ""  # "" when the card has no button
    action_label: str = ""
    note: str = ""


@dataclasses.dataclass
class Fact:
    """One row of the confirmation dialog: what will happen, in numbers."""

    label: str = ""
    value: str = ""
    testid: str = ""
    tone: str = "neutral"  # neutral | positive | negative


def _unlimited_lines(plan: Any) -> list[str]:
    cat = get_catalog()
    by_feature: dict[str, list[str]] = {}
    for feature_key, model_key in plan.unlimited:
        try:
            feature = cat.feature(feature_key)
            label = feature.models[model_key].label
        except (KeyError, LookupError):
            label = model_key.replace("_", " ").title()
        by_feature.setdefault(feature_key, []).append(label)
    lines = []
    for feature_key, labels in by_feature.items():
        words = _FEATURE_WORDS.get(feature_key, feature_key.replace("_", " "))
        names = (
            " and ".join(labels)
            if len(labels) <= 2
            else ", ".join(labels[:-1]) + " and " + labels[-1]
        )
        lines.append(f"Unlimited {names} {words}")
    return lines


def _limit_lines(plan: Any) -> list[str]:
    lines = []
    video_res = plan.max_resolution.get("video")
    image_res = plan.max_resolution.get("image")
    if video_res:
        lines.append(f"Video up to {video_res}")
    else:
        lines.append("Video up to 4K")
    if image_res:
        lines.append(f"Images up to {image_res}")
    if plan.max_video_seconds:
        lines.append(f"Videos up to {plan.max_video_seconds} s")
    n = plan.max_concurrent
    lines.append(f"{n} generation{'s' if n != 1 else ''} at a time")
    return lines


def plan_features(plan: Any) -> list[str]:
    """What a card lists: unlimited items first, then the limits, from the catalog."""
    return _unlimited_lines(plan) + _limit_lines(plan)


def _base_card(plan: Any, currency: str) -> PlanCard:
    if plan.paid:
        price, period = money_text(plan.price_cents, currency), "/ month"
        credits = f"{credits_text(plan.monthly_credits)} credits every month"
    else:
        price, period = money_text(0, currency), "/ month"
        credits = f"{credits_text(plan.trial_credits)} trial credits, once"
    return PlanCard(
        key=plan.key,
        name=plan.name,
        price=price,
        period=period,
        credits=credits,
        description=plan.description or "",
        features=plan_features(plan),
    )


def build_cards(standing: Standing) -> list[PlanCard]:
    """Every catalog plan with the button billing says it gets for this account."""
    cat = get_catalog()
    current = plan_actions.current_plan(standing)
    actions = plan_actions.available_actions(standing)
    cards = []
    for plan in cat.plans:
        card = _base_card(plan, cat.currency)
        card.action = actions.get(plan.key, "")
        card.action_label = ACTION_LABELS.get(card.action, "")
        if plan.key == current.key:
            card.is_current = True
            card.badge = "Current plan"
            if standing.ended():
                card.note = "Subscribe to a paid plan for monthly credits."
            elif standing.past_due():
                card.badge = "Payment past due"
                card.note = "Your last renewal payment failed; we retry automatically."
            elif standing.on_grace_period():
                card.badge = "Ends " + date_text(standing.period_end, standing.zone)
                card.note = (
                    f"Auto-renewal is off: {plan.name} stays until "
                    f"{date_text(standing.period_end, standing.zone)}."
                )
            else:
                card.note = f"Renews on {date_text(standing.period_end, standing.zone)}."
        elif not plan.paid and not standing.ended():
            card.note = "You return to Free when a cancelled plan ends."
        cards.append(card)
    return cards


# -------------------------------------------------------------- the dialog


def _subscribe_facts(p: dict[str, Any]) -> list[Fact]:
    return [
        Fact("Charged now", money_text(p["charge_cents"], p["currency"]), "confirm-charge"),
        Fact(
            "Credits added now",
            "+" + credits_text(p["credits_added"]),
            "confirm-credits-added",
            "positive",
        ),
        Fact("Renews on", date_text(p["renewal_date"]), "confirm-renewal-date"),
        Fact(
            "Then each month",
            money_text(p["charge_cents"], p["currency"]),
            "confirm-renewal-amount",
        ),
    ]


def _change_facts(p: dict[str, Any]) -> list[Fact]:
    facts = [Fact("Charged now", money_text(p["charge_cents"], p["currency"]), "confirm-charge")]
    if p["type"] == DOWNGRADE:
        facts.append(
            Fact(
                f"{p['from_plan_name']} credits burned",
                "\u2212" + credits_text(p["credits_burned"]),
                "confirm-credits-burned",
                "negative",
            )
        )
    facts += [
        Fact(
            "Credits added now",
            "+" + credits_text(p["credits_added"]),
            "confirm-credits-added",
            "positive",
        ),
        Fact("Balance after", credits_text(p["balance_after"]), "confirm-balance-after"),
        Fact("Next renewal", date_text(p["new_renewal_date"]), "confirm-renewal-date"),
        Fact(
            "Then each month",
            money_text(p["renewal_amount_cents"], p["currency"]),
            "confirm-renewal-amount",
        ),
    ]
    return facts


def describe(p: dict[str, Any], tz: str | None = None) -> tuple[str, str, list[Fact], str]:
    """(title, intro, facts, confirm label) for a pending action; dates in `tz`."""
    kind = p["type"]
    if kind == SUBSCRIBE:
        return (
            f"Subscribe to {p['plan_name']}",
            f"{p['plan_name']} starts the moment your payment succeeds.",
            _subscribe_facts(p),
            "Continue to payment",
        )
    if kind == UPGRADE:
        return (
            f"Upgrade to {p['to_plan_name']}",
            f"You pay only the price difference between {p['from_plan_name']} and {p['to_plan_name']}; "
            "your renewal date does not move.",
            _change_facts(p),
            f"Pay {money_text(p['charge_cents'], p['currency'])} and upgrade",
        )
    if kind == DOWNGRADE:
        return (
            f"Downgrade to {p['to_plan_name']}",
            f"{p['to_plan_name']} starts today with a new monthly period. All remaining "
            f"{p['from_plan_name']} credits are burned now; trial credits and credits from packs are kept.",
            _change_facts(p),
            f"Pay {money_text(p['charge_cents'], p['currency'])} and downgrade",
        )
    end = date_text(p["period_end"], tz)
    if kind == CANCEL:
        if p["status"] == "past_due":
            return (
                f"Cancel {p['plan_name']}",
                "Your last renewal was not paid, so the plan ends now and you return to Free.",
                [
                    Fact(
                        "Credits that expire now",
                        "\u2212" + credits_text(p["credits_left"]),
                        "confirm-credits-burned",
                        "negative",
                    ),
                    Fact("Charged now", money_text(0, p["currency"]), "confirm-charge"),
                ],
                "End plan now",
            )
        return (
            "Cancel auto-renewal",
            f"{p['plan_name']}, its features and its credits stay until {end}. "
            "Then the plan's remaining credits expire and you're on Free. You can resume until then.",
            [
                Fact("Charged now", money_text(0, p["currency"]), "confirm-charge"),
                Fact("Plan active until", end, "confirm-renewal-date"),
                Fact(
                    f"{p['plan_name']} credits left, expiring then",
                    credits_text(p["credits_left"]),
                    "confirm-credits-burned",
                    "neutral",
                ),
            ],
            "Cancel auto-renewal",
        )
    return (
        "Resume auto-renewal",
        f"{p['plan_name']} keeps renewing every month.",
        [
            Fact("Charged now", money_text(0, p["currency"]), "confirm-charge"),
            Fact("Next renewal", end, "confirm-renewal-date"),
            Fact(
                "Renewal amount",
                money_text(p["price_cents"], p["currency"]),
                "confirm-renewal-amount",
            ),
        ],
        "Resume auto-renewal",
    )
