"""The Alerts and Auto top-up settings on the Subscription page.

Both are plain HTML forms: the browser sends the raw strings once, on Save;
billing/alerts.py and billing/auto_top_up.py check every value (whole
numbers, a pack of the catalog, a card on file) and refuse with a message
naming the problem, changing nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import reflex as rx

from workroom_app.billing import alerts, auto_top_up
from workroom_app.billing.alerts import AlertError
from workroom_app.billing.catalog import get_catalog
from workroom_app.db import read_session, write_session
from workroom_app.state.plans import money_text
from workroom_app.state.session import SessionState

log = logging.getLogger(__name__)

EMAIL_FLAGS = (
    "email_low_balance",
    "email_credits_expiring",
    "email_payment_failed",
    "email_plan_ended",
)
_MAX_TEXT = 32


@dataclasses.dataclass
class PackOption:
    key: str
    label: str


@dataclasses.dataclass(frozen=True)
class Loaded:
    threshold_text: str
    default_threshold: int
    flags: dict
    auto_on: bool
    top_up_threshold_text: str
    top_up_pack: str
    top_up_cap_text: str
    packs: list
    this_month: int


def read(account_id: int) -> Loaded:
    with read_session() as session:
        s = alerts.read_settings(session, account_id)
        default = alerts.default_low_balance_threshold(session, account_id)
        this_month = auto_top_up.top_ups_this_month(session, account_id)
    catalog = get_catalog()

    packs = [
        PackOption(p.key, f"{p.label} ({money_text(p.price_cents, catalog.currency)})")
        for p in catalog.packs
    ]
    return Loaded(
        threshold_text="" if s.low_balance_threshold is None else str(s.low_balance_threshold),
        default_threshold=default,
        flags={name: getattr(s, name) for name in EMAIL_FLAGS},
        auto_on=s.auto_top_up,
        top_up_threshold_text=str(s.top_up_threshold) if s.top_up_threshold else "",
        top_up_pack=s.top_up_pack or (catalog.packs[0].key if catalog.packs else ""),
        top_up_cap_text=str(s.top_up_monthly_cap) if s.top_up_monthly_cap else "2",
        packs=packs,
        this_month=this_month,
    )


def _text(form_data: dict, name: str) -> str:
    value = form_data.get(name, "")
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise AlertError("That value is not valid.")
    return value.strip()


def _flag(form_data: dict, name: str) -> bool:
    # A checked checkbox sends "on"; an unchecked one sends nothing.
    return form_data.get(name) == "on"


def save_alerts(account_id: int, form_data: dict) -> None:
    threshold = _text(form_data, "low_balance_threshold")
    with write_session() as session:
        alerts.save_alert_settings(
            session,
            account_id,
            low_balance_threshold=threshold or None,
            **{name: _flag(form_data, name) for name in EMAIL_FLAGS},
        )


def save_top_up(account_id: int, form_data: dict) -> None:
    with write_session() as session:
        auto_top_up.save_settings(
            session,
            account_id,
            enabled=_flag(form_data, "auto_top_up"),
            threshold=_text(form_data, "top_up_threshold"),
            pack_key=_text(form_data, "top_up_pack"),
            monthly_cap=_text(form_data, "top_up_monthly_cap"),
        )


class AlertSettingsState(SessionState):
    # Bumped on every load: the forms are keyed on it, so they re-mount with the stored values.
    version: int = 0
    threshold_text: str = ""
    default_threshold_text: str = ""
    email_low_balance: bool = True
    email_credits_expiring: bool = True
    email_payment_failed: bool = True
    email_plan_ended: bool = True
    alerts_error: str = ""

    auto_on: bool = False
    top_up_threshold_text: str = ""
    top_up_pack: str = ""
    top_up_cap_text: str = "2"
    pack_options: list[PackOption] = []
    top_ups_this_month: int = 0
    top_up_error: str = ""
    busy: bool = False

    async def load(self):
        if self._account_id is None:
            return
        loaded = await asyncio.to_thread(read, self._account_id)
        self.threshold_text = loaded.threshold_text
        self.default_threshold_text = f"{loaded.default_threshold:,}"
        for name, value in loaded.flags.items():
            setattr(self, name, bool(value))
        self.auto_on = loaded.auto_on
        self.top_up_threshold_text = loaded.top_up_threshold_text
        self.top_up_pack = loaded.top_up_pack
        self.top_up_cap_text = loaded.top_up_cap_text
        self.pack_options = loaded.packs
        self.top_ups_this_month = loaded.this_month
        self.version += 1

    async def _save(
        self,
        save: Callable[[int, dict[str, Any]], object],
        form_data: object,
        error_var: str,
        done: str,
    ) -> AsyncIterator[object]:
        account_id = self._account_id
        if account_id is None or self.busy:
            return
        setattr(self, error_var, "")
        if not isinstance(form_data, dict):
            setattr(self, error_var, "Fill in the form.")
            return
        self.busy = True
        yield
        try:
            await asyncio.to_thread(save, account_id, form_data)
        except AlertError as exc:
            setattr(self, error_var, str(exc))
            return
        except Exception:  # noqa: BLE001
            log.exception("saving alert settings failed")
            setattr(self, error_var, "Something went wrong; nothing was changed. Please try again.")
            return
        finally:
            self.busy = False
        await self.load()
        yield rx.toast.success(done)

    async def save_alerts(self, form_data: dict):
        async for update in self._save(
            save_alerts, form_data, "alerts_error", "Alert settings saved."
        ):
            yield update

    async def save_top_up(self, form_data: dict):
        async for update in self._save(
            save_top_up, form_data, "top_up_error", "Auto top-up settings saved."
        ):
            yield update
