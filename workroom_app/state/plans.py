"""The Plans page state: the catalog's plans, the signed-in account's place
among them, and one confirmation dialog for every action.

Thin on purpose: every number comes from billing/ (the catalog and the
subscription engine's previews). The browser sends only a plan key (checked
against the catalog) and argument-less confirm/close events. Which action a
plan's button means (subscribe, upgrade, downgrade, cancel, resume) is decided
here from the account's state, never taken from the browser; the preview the
user was shown is kept server-side (`_pending`) and handed back to the engine
on confirm, so the engine refuses (PreviewOutdated) when anything changed in
between, and a second confirm of the same preview charges nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from workroom_app.billing import clock, formatting, subscriptions
from workroom_app.billing.subscriptions import ChangePreview, SubscribePreview, SubscriptionError
from workroom_app.routes import CHECKOUT_ROUTE, PLANS_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)


SUBSCRIBE = "subscribe"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
CANCEL = "cancel"
RESUME = "resume"
ACTION_LABELS = {
    SUBSCRIBE: "Subscribe",
    UPGRADE: "Upgrade",
    DOWNGRADE: "Downgrade",
    CANCEL: "Cancel auto-renewal",
    RESUME: "Resume",
}
# A plan key is a short catalog slug; anything longer is refused unread.
_MAX_KEY = 32

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
    from workroom_app.billing.invoice_pdf import money

    return money(int(cents), currency)


def date_text(value: date | datetime | None, tz: str | None = None) -> str:
    """The app's one date format, a datetime seen in the reader's zone `tz`."""
    return formatting.format_date(value, tz)


def credits_text(amount: int) -> str:
    return f"{int(amount):,}"


def _catalog():
    from workroom_app.billing import catalog

    return catalog.get_catalog()


def check_plan_key(value: object) -> str:
    """A plan key as the browser may send it, or SubscriptionError (clear message)."""
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise subscriptions.UnknownPlan(value)
    plan = subscriptions.get_plan(value.strip().lower())
    return plan.key


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


def _unlimited_lines(plan) -> list[str]:
    cat = _catalog()
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


def _limit_lines(plan) -> list[str]:
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


def plan_features(plan) -> list[str]:
    """What a card lists: unlimited items first, then the limits, from the catalog."""
    return _unlimited_lines(plan) + _limit_lines(plan)


def _base_card(plan, currency: str) -> PlanCard:
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


@dataclasses.dataclass(frozen=True)
class AccountPlan:
    """Where the account stands, read in one short transaction."""

    plan_key: str
    status: str  # free | active | past_due
    gateway: str
    cancel_at_period_end: bool
    period_end: datetime | None
    has_card: bool
    zone: str = "UTC"  # the account's time zone, for the dates shown


def build_cards(standing: AccountPlan) -> list[PlanCard]:
    """Every catalog plan with the button it gets for this account."""
    cat = _catalog()
    current = cat.plan(standing.plan_key) if standing.status != "free" else cat.default_plan
    cards = []
    for plan in cat.plans:
        card = _base_card(plan, cat.currency)
        if plan.key == current.key:
            card.is_current = True
            card.badge = "Current plan"
            if standing.status == "free":
                card.note = "Subscribe to a paid plan for monthly credits."
            elif standing.status == "past_due":
                card.badge = "Payment past due"
                card.action, card.action_label = CANCEL, ACTION_LABELS[CANCEL]
                card.note = "Your last renewal payment failed; we retry automatically."
            elif standing.cancel_at_period_end:
                card.badge = "Ends " + date_text(standing.period_end, standing.zone)
                card.action, card.action_label = RESUME, ACTION_LABELS[RESUME]
                card.note = (
                    f"Auto-renewal is off: {plan.name} stays until "
                    f"{date_text(standing.period_end, standing.zone)}."
                )
            else:
                card.action, card.action_label = CANCEL, ACTION_LABELS[CANCEL]
                card.note = f"Renews on {date_text(standing.period_end, standing.zone)}."
        elif not plan.paid:
            if standing.status != "free":
                card.note = "You return to Free when a cancelled plan ends."
        elif standing.status == "free":
            card.action, card.action_label = SUBSCRIBE, ACTION_LABELS[SUBSCRIBE]
        elif plan.rank > current.rank:
            card.action, card.action_label = UPGRADE, ACTION_LABELS[UPGRADE]
        elif plan.rank < current.rank:
            card.action, card.action_label = DOWNGRADE, ACTION_LABELS[DOWNGRADE]
        cards.append(card)
    return cards


# ------------------------------------------------------------- blocking calls


def _settings_gateway() -> str:
    from workroom_app.settings import get_settings

    return (get_settings().payment_gateway or "local").strip().lower()


def read_standing(account_id: int) -> AccountPlan:
    from workroom_app.db import read_session

    with read_session() as session:
        summary = subscriptions.summary(session, account_id)
        sub = subscriptions.live_subscription(session, account_id)
        return AccountPlan(
            plan_key=summary.plan_key,
            status=summary.status,
            gateway=sub.gateway if sub is not None else _settings_gateway(),
            cancel_at_period_end=summary.cancel_at_period_end,
            period_end=summary.current_period_end,
            has_card=summary.card is not None,
            zone=formatting.account_zone(session, account_id).key,
        )


def action_for(standing: AccountPlan, plan_key: str) -> str:
    for card in build_cards(standing):
        if card.key == plan_key:
            if not card.action:
                raise SubscriptionError(
                    f"{card.name} is your current plan."
                    if card.is_current
                    else f"There is nothing to do on {card.name} from your plan: "
                    "to go back to Free, cancel auto-renewal."
                )
            return card.action
    raise subscriptions.UnknownPlan(plan_key)


def _preview(account_id: int, action: str, plan_key: str) -> dict[str, Any]:
    """The engine's preview for the action, as a plain dict (kept server-side)."""
    from workroom_app.db import read_session

    with read_session() as session:
        if action == SUBSCRIBE:
            preview: Any = subscriptions.preview_subscribe(session, account_id, plan_key)
        elif action in (UPGRADE, DOWNGRADE):
            preview = subscriptions.preview_change(session, account_id, plan_key)
            if preview.kind != action:
                raise subscriptions.PreviewOutdated(
                    "Your plan changed. Please review the plans again."
                )
        else:
            summary = subscriptions.summary(session, account_id)
            if summary.subscription_id is None:
                raise subscriptions.NoSubscription(
                    "You're on Free: there is no auto-renewal to change."
                )
            left = subscriptions._plan_credits_left(session, summary.subscription_id, clock.now())
            plan = subscriptions.get_plan(summary.plan_key)
            return {
                "type": action,
                "plan_key": summary.plan_key,
                "plan_name": plan.name,
                "period_end": summary.current_period_end,
                "credits_left": left,
                "price_cents": plan.price_cents,
                "currency": _catalog().currency,
                "cancel_at_period_end": summary.cancel_at_period_end,
                "status": summary.status,
            }
    data = dataclasses.asdict(preview)
    data["type"] = action
    return data


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


def _apply(account_id: int, p: dict[str, Any], gateway_name: str) -> subscriptions.Outcome:
    """Do exactly what the user confirmed (blocking, one transaction)."""
    from workroom_app.db import get_engine, write_session

    kind = p["type"]
    if gateway_name == "stripe":
        from workroom_app.billing import stripe_webhooks
        from workroom_app.billing.payments import get_gateway

        gateway = get_gateway("stripe")
        if kind in (UPGRADE, DOWNGRADE):
            expected = ChangePreview(**{f: p[f] for f in ChangePreview.__dataclass_fields__})
            return stripe_webhooks.change_plan(
                get_engine(), gateway, account_id, expected.to_plan_key, expected_preview=expected
            )
        if kind == CANCEL:
            return stripe_webhooks.cancel(get_engine(), gateway, account_id)
        if kind == RESUME:
            return stripe_webhooks.resume(get_engine(), gateway, account_id)
        raise SubscriptionError("Subscribing goes through the checkout page.")
    with write_session() as session:
        if kind in (UPGRADE, DOWNGRADE):
            expected = ChangePreview(**{f: p[f] for f in ChangePreview.__dataclass_fields__})
            return subscriptions.change_plan(
                session, account_id, expected.to_plan_key, expected_preview=expected
            )
        if kind == CANCEL:
            return subscriptions.cancel(session, account_id)
        if kind == RESUME:
            return subscriptions.resume(session, account_id)
    raise SubscriptionError("Subscribing goes through the checkout page.")


def start_stripe_checkout(account_id: int, p: dict[str, Any]) -> str:
    """The Stripe Checkout Session URL for what the user confirmed."""
    from workroom_app.billing import stripe_webhooks
    from workroom_app.billing.payments import get_gateway
    from workroom_app.db import get_engine
    from workroom_app.settings import get_settings

    base = get_settings().public_url.rstrip("/")
    expected = SubscribePreview(**{f: p[f] for f in SubscribePreview.__dataclass_fields__})
    view = stripe_webhooks.start_checkout(
        get_engine(),
        get_gateway("stripe"),
        account_id,
        expected.plan_key,
        success_url=f"{base}{SUBSCRIPTION_ROUTE}?checkout_session={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}{PLANS_ROUTE}",
    )
    if not view.url:
        raise SubscriptionError("Stripe did not return a checkout page. Please try again.")
    return view.url


def _outcome_toast(outcome: subscriptions.Outcome):
    if outcome.ok:
        return rx.toast.success(outcome.message, duration=8000)
    return rx.toast.error(outcome.message, duration=10000)


class PlansState(SessionState):
    cards: list[PlanCard] = []
    loading: bool = True
    load_error: str = ""
    status: str = "free"

    dialog_open: bool = False
    dialog_kind: str = ""
    dialog_title: str = ""
    dialog_intro: str = ""
    dialog_facts: list[Fact] = []
    dialog_error: str = ""
    confirm_label: str = ""
    busy: bool = False
    # The plan whose button is working (its spinner), "" when none.
    opening: str = ""

    # What the user is looking at in the dialog: the engine's preview, kept here
    # so the browser can neither alter nor forge it.
    _pending: dict[str, Any] | None = None
    # The account's time zone (dates in the dialog and on the cards).
    _zone: str = "UTC"

    async def _refresh(self) -> AccountPlan | None:
        account_id = self._account_id
        if account_id is None:
            return None
        try:
            standing = await asyncio.to_thread(read_standing, account_id)
        except SubscriptionError as exc:
            self.load_error = str(exc)
            return None
        self.load_error = ""
        self.status = standing.status
        self._zone = standing.zone
        self.cards = build_cards(standing)
        return standing

    async def load(self):
        """on_load (after the login guard)."""
        self.dialog_open = False
        self._pending = None
        if self._account_id is None:
            return
        self.loading = True
        yield
        try:
            await self._refresh()
        finally:
            self.loading = False

    async def open_action(self, plan_key: str):
        """A plan's button: work out what it means for this account, preview it, ask."""
        account_id = self._account_id
        if account_id is None:
            return
        if self.busy:
            return
        try:
            key = check_plan_key(plan_key)
        except SubscriptionError as exc:
            yield rx.toast.error(str(exc))
            return
        self.opening = key
        yield
        try:
            standing = await asyncio.to_thread(read_standing, account_id)
            self._zone = standing.zone
            action = action_for(standing, key)
            pending = await asyncio.to_thread(_preview, account_id, action, key)
        except SubscriptionError as exc:
            self.opening = ""
            await self._refresh()
            yield rx.toast.error(str(exc))
            return
        self.opening = ""
        self._show(pending)

    def _show(self, pending: dict[str, Any]) -> None:
        self._pending = pending
        title, intro, facts, label = describe(pending, self._zone)
        self.dialog_kind = pending["type"]
        self.dialog_title = title
        self.dialog_intro = intro
        self.dialog_facts = facts
        self.confirm_label = label
        self.dialog_error = ""
        self.dialog_open = True

    def close_dialog(self):
        if self.busy:
            return
        self.dialog_open = False
        self._pending = None
        self.dialog_error = ""

    def set_dialog_open(self, value: bool):
        """The dialog's own open/close (Escape, overlay click): closing only."""
        if value is not True:
            self.close_dialog()

    async def confirm(self):
        """Apply exactly the preview the dialog shows (no arguments taken)."""
        account_id = self._account_id
        pending = self._pending
        if account_id is None or pending is None or self.busy:
            return
        if pending.get("account_id", account_id) != account_id:
            self.close_dialog()
            return
        kind = pending["type"]
        if kind == SUBSCRIBE:
            gateway_name = _settings_gateway()
            if gateway_name != "stripe":
                self.dialog_open = False
                self._pending = None
                yield rx.redirect(f"{CHECKOUT_ROUTE}?{urlencode({'plan': pending['plan_key']})}")
                return
            self.busy = True
            yield
            try:
                url = await asyncio.to_thread(start_stripe_checkout, account_id, pending)
            except Exception as exc:  # noqa: BLE001  (gateway errors carry user messages)
                self.dialog_error = _message(exc)
                return
            finally:
                self.busy = False
            yield rx.redirect(url, is_external=True)
            return
        self.busy = True
        self.dialog_error = ""
        yield
        try:
            standing = await asyncio.to_thread(read_standing, account_id)
            outcome = await asyncio.to_thread(_apply, account_id, pending, standing.gateway)
        except subscriptions.PreviewOutdated as exc:
            # Show the new numbers instead, and say why: nothing was done.
            self.busy = False
            try:
                plan_key = pending.get("to_plan_key") or pending.get("plan_key")
                fresh_standing = await asyncio.to_thread(read_standing, account_id)
                action = action_for(fresh_standing, plan_key)
                fresh = await asyncio.to_thread(_preview, account_id, action, plan_key)
                self._show(fresh)
                self.dialog_error = str(exc)
            except SubscriptionError as again:
                self.close_dialog()
                yield rx.toast.error(str(again))
            await self._refresh()
            return
        except Exception as exc:  # noqa: BLE001  (engine/gateway errors carry user messages)
            self.busy = False
            self.dialog_error = _message(exc)
            await self._refresh()
            return
        self.busy = False
        if outcome.requires_action:
            # 3-D Secure: on to the confirmation step; the change happens once confirmed.
            self.dialog_open = False
            self._pending = None
            yield go_to_confirmation(outcome.confirm_url)
            return
        await self._reload_account()
        await self._refresh()
        if outcome.ok:
            self.dialog_open = False
            self._pending = None
            if _route_is(self, SUBSCRIPTION_ROUTE):
                # Opened from the Subscription page: redraw its overview too.
                from workroom_app.state.subscription import SubscriptionState

                yield SubscriptionState.refresh_overview
        else:
            # Declined: the dialog stays with the reason; a new preview is needed
            # for another try (the failed attempt changes the payment's key).
            self.dialog_error = outcome.message
            try:
                plan_key = pending.get("to_plan_key") or pending.get("plan_key")
                self._pending = await asyncio.to_thread(_preview, account_id, kind, plan_key)
            except SubscriptionError:
                self.dialog_open = False
                self._pending = None
        yield _outcome_toast(outcome)


def _route_is(state: rx.State, route: str) -> bool:
    return (state.router.url.path or "/").rstrip("/") == route


def _message(exc: Exception) -> str:
    if isinstance(exc, (SubscriptionError,)):
        return str(exc)
    from workroom_app.billing.payments.gateway import GatewayError

    if isinstance(exc, GatewayError):
        return str(exc)
    log.exception("plan action failed", exc_info=exc)
    return "Something went wrong; nothing was charged. Please try again."
