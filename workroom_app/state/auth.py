"""Log-in and sign-up forms. The work is in billing.accounts; this state only
checks the shape of what the browser sent, applies the rate limits and shows the outcome.

A successful log-in or sign-up does not sign this tab in by itself: it creates a login whose
one-time ticket the page POSTs to /api/auth/session (http/auth_routes.py), which answers with
the HttpOnly session cookie and sends the browser to the app; the new page's websocket carries
the cookie and the session guard binds the tab to it. Password hashing runs on its own bounded
pool (security/hashing_pool.py), never on the event loop or asyncio's shared thread pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import reflex as rx

from workroom_app.billing import accounts
from workroom_app.billing.email_confirmation import queue_confirmation
from workroom_app.db import write_session
from workroom_app.security import hashing_pool, rate_limits, signing
from workroom_app.state.session import SessionState, post_form_script

logger = logging.getLogger(__name__)

SESSION_PATH = "/api/auth/session"
# Longer values are never legitimate; refusing them early keeps a forged event
# from making the server hash megabytes.
_MAX_FIELD = 512


def _field(form_data: Any, name: str) -> str:
    """A text field of a submitted form; anything but a short string is refused."""
    if not isinstance(form_data, dict):
        raise accounts.AuthError("The form could not be read. Reload the page and try again.")
    value = form_data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        raise accounts.AuthError("The form could not be read. Reload the page and try again.")
    return value


def _log_in(email: str, password: str) -> str:
    """Blocking (hashing pool): check the password and return a one-time login ticket."""
    with write_session() as session:
        account = accounts.authenticate(session, email, password)
        return accounts.create_login_ticket(session, account.id)


def _sign_up(email: str, password: str, display_name: str) -> str:
    """Blocking (hashing pool): create the unconfirmed account, email its confirmation link and
    return a one-time login ticket. The trial waits for the confirmation."""
    with write_session() as session:
        account = accounts.register(session, email, password, display_name)
        queue_confirmation(session, account)
        return accounts.create_login_ticket(session, account.id)


def _account_key(email: str) -> str:
    """What log-in attempts are counted against: the address as the account stores it."""
    try:
        return accounts.normalise_email(email)
    except accounts.AuthError:
        return email.strip().lower()[:254]


class AuthState(SessionState):
    """Shared by the log-in and sign-up pages."""

    error: str = ""
    submitting: bool = False

    def _client_address(self) -> str:
        return str((self._get_root_state().router_data or {}).get("ip") or "")

    async def _finish(self, work: Callable[..., str], *args: object):
        try:
            ticket = await hashing_pool.run(work, *args, address=self._client_address())
        except (accounts.AuthError, hashing_pool.HashingBusy) as exc:
            self.error = str(exc)
            self.submitting = False
            return rx.toast.error(self.error)
        except Exception:
            # Keep the form usable; one redacted line goes to the server log.
            logger.exception("log-in/sign-up failed")
            self.error = "Something went wrong on our side. Please try again."
            self.submitting = False
            return rx.toast.error(self.error)
        self.error = ""
        # `submitting` stays on: the page is leaving for /api/auth/session.
        return rx.call_script(post_form_script(SESSION_PATH, {"ticket": ticket}))

    async def log_in(self, form_data: dict):
        if self.submitting:
            return
        try:
            email = _field(form_data, "email")
            password = _field(form_data, "password")
        except accounts.AuthError as exc:
            self.error = str(exc)
            yield rx.toast.error(self.error)
            return
        if hashing_pool.saturated(self._client_address()):
            self.error = hashing_pool.BUSY_MESSAGE
            yield rx.toast.error(self.error)
            return
        key, address = _account_key(email), self._client_address()
        refusal = rate_limits.login_attempt(key, address)
        if refusal is not None:
            self.error = refusal.message("log-in attempts")
            yield rx.toast.error(self.error)
            return
        self.submitting = True
        self.error = ""
        yield
        outcome = await self._finish(_log_in, email, password)
        if not self.error:
            rate_limits.login_succeeded(key, address)
        elif self.error == accounts.WRONG_CREDENTIALS:
            rate_limits.login_failed(key, address)
        yield outcome

    async def sign_up(self, form_data: dict):
        if self.submitting:
            return
        try:
            email = _field(form_data, "email")
            password = _field(form_data, "password")
            confirm = _field(form_data, "confirm_password")
            name = _field(form_data, "display_name")
            if password != confirm:
                raise accounts.AuthError("The two passwords do not match.")
        except accounts.AuthError as exc:
            self.error = str(exc)
            yield rx.toast.error(self.error)
            return
        if hashing_pool.saturated(self._client_address()):
            self.error = hashing_pool.BUSY_MESSAGE
            yield rx.toast.error(self.error)
            return
        refusal = rate_limits.signup_attempt(self._client_address())
        if refusal is not None:
            self.error = refusal.message("sign-ups from your network")
            yield rx.toast.error(self.error)
            return
        self.submitting = True
        self.error = ""
        yield

        # Outside the sign-up transaction: on first use this writes the secret itself.
        await asyncio.to_thread(signing.ensure_secret)
        yield await self._finish(_sign_up, email, password, name)

    def clear_error(self):
        self.error = ""

    def reset_form(self):
        """on_load of the log-in and sign-up pages. A successful log-in leaves `submitting` on
        while the page leaves, and the tab's state outlives that page load: without this, the
        next log-in in the same tab (after logging out) was ignored. (The message stays: the
        submit button clears it.)"""
        self.submitting = False
