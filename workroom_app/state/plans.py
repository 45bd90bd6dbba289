"""The Plans page state: the catalog's plans, the signed-in account's place
among them, and one confirmation dialog for every action.

Thin on purpose: every number and every decision comes from billing/ (the catalog,
billing/subscriptions/plan_actions.py for which action a plan's button means and which
gateway does it, the engine's previews); the wording from components/plan_text.py. The
browser sends only a plan key (checked against the catalog) and argument-less
confirm/close events. The action is worked out from the account's state, never taken from
the browser; the preview the user was shown is kept server-side (`_pending`) and handed
back to billing on confirm, so the engine refuses (PreviewOutdated) when anything changed
in between, and a second confirm of the same preview charges nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from workroom_app import settings
from workroom_app.billing import subscriptions
from workroom_app.billing.subscriptions import (
    ChangePreview,
    SubscribePreview,
    SubscriptionError,
    plan_actions,
)
from workroom_app.billing.subscriptions.plan_actions import CANCEL, RESUME, SUBSCRIBE
from workroom_app.components.plan_text import (
    Fact,
    PlanCard,
    build_cards,
    describe,
    money_text,
)
from workroom_app.routes import CHECKOUT_ROUTE, PLANS_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.state.payment_confirmation import go_to_confirmation
from workroom_app.state.session import SessionState
from workroom_app.state.subscription import SubscriptionState

log = logging.getLogger(__name__)

# Still importable from here for the states that format money with it.
__all__ = ["PlansState", "money_text"]

# A plan key is a short catalog slug; anything longer is refused unread.
_MAX_KEY = 32


def check_plan_key(value: object) -> str:
    """A plan key as the browser may send it, or SubscriptionError (clear message)."""
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise subscriptions.UnknownPlan(value)
    plan = subscriptions.get_plan(value.strip().lower())
    return plan.key


# ------------------------------------------------------------- blocking calls


def _preview(account_id: int, action: str, plan_key: str) -> dict[str, Any]:
    """Billing's preview for the action, as a plain dict (kept server-side)."""
    data = dataclasses.asdict(plan_actions.preview(account_id, action, plan_key))
    data["type"] = action
    return data


def _apply(account_id: int, p: dict[str, Any]) -> subscriptions.Outcome:
    """Do exactly what the user confirmed, on the gateway that bills the plan (blocking)."""
    kind = p["type"]
    if kind == CANCEL:
        return plan_actions.cancel(account_id)
    if kind == RESUME:
        return plan_actions.resume(account_id)
    if kind == SUBSCRIBE:
        raise SubscriptionError("Subscribing goes through the checkout page.")
    expected = ChangePreview(**{f: p[f] for f in ChangePreview.__dataclass_fields__})
    return plan_actions.swap(account_id, expected)


def start_hosted_checkout(account_id: int, p: dict[str, Any]) -> str:
    """The gateway's checkout page URL for what the user confirmed."""
    base = settings.get_settings().public_url.rstrip("/")
    expected = SubscribePreview(**{f: p[f] for f in SubscribePreview.__dataclass_fields__})
    return plan_actions.checkout_url(
        account_id,
        expected,
        success_url=f"{base}{SUBSCRIPTION_ROUTE}?checkout_session={{CHECKOUT_SESSION_ID}}",
        cancel_url=f"{base}{PLANS_ROUTE}",
    )


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

    async def _refresh(self) -> plan_actions.Standing | None:
        account_id = self._account_id
        if account_id is None:
            return None
        try:
            standing = await asyncio.to_thread(plan_actions.read_standing, account_id)
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
            standing = await asyncio.to_thread(plan_actions.read_standing, account_id)
            self._zone = standing.zone
            action = plan_actions.action_for(standing, key)
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
            if not plan_actions.new_plans_use_hosted_checkout():
                self.dialog_open = False
                self._pending = None
                yield rx.redirect(f"{CHECKOUT_ROUTE}?{urlencode({'plan': pending['plan_key']})}")
                return
            self.busy = True
            yield
            try:
                url = await asyncio.to_thread(start_hosted_checkout, account_id, pending)
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
            outcome = await asyncio.to_thread(_apply, account_id, pending)
        except subscriptions.PreviewOutdated as exc:
            # Show the new numbers instead, and say why: nothing was done.
            self.busy = False
            try:
                plan_key = pending.get("to_plan_key") or pending.get("plan_key")
                fresh_standing = await asyncio.to_thread(plan_actions.read_standing, account_id)
                action = plan_actions.action_for(fresh_standing, plan_key)
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
    message = plan_actions.user_message(exc)
    if message is not None:
        return message
    log.exception("plan action failed", exc_info=exc)
    return "Something went wrong; nothing was charged. Please try again."
