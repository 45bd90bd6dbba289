"""Log-in and sign-up forms. The work is in billing.accounts; this state only
checks the shape of what the browser sent and shows the outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import reflex as rx

from workroom_app.billing import accounts
from workroom_app.state.session import AccountView, SessionState, account_view, landing_route

logger = logging.getLogger(__name__)

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


def _log_in(email: str, password: str) -> tuple[str, AccountView]:
    from workroom_app.db import write_session

    with write_session() as session:
        account = accounts.authenticate(session, email, password)
        token = accounts.create_login(session, account.id)
        return token, account_view(session, account)


def _sign_up(email: str, password: str, display_name: str) -> tuple[str, AccountView]:
    from workroom_app.db import write_session

    with write_session() as session:
        account = accounts.sign_up(session, email, password, display_name)
        token = accounts.create_login(session, account.id)
        return token, account_view(session, account)


class AuthState(SessionState):
    """Shared by the log-in and sign-up pages."""

    error: str = ""
    submitting: bool = False

    async def _finish(self, work, *args):
        session = await self.get_state(SessionState)
        try:
            token, view = await asyncio.to_thread(work, *args)
        except accounts.AuthError as exc:
            self.error = str(exc)
            self.submitting = False
            return rx.toast.error(self.error)
        except Exception:
            # Keep the form usable; the traceback goes to the server log.
            logger.exception("log-in/sign-up failed")
            self.error = "Something went wrong on our side. Please try again."
            self.submitting = False
            return rx.toast.error(self.error)
        self.error = ""
        self.submitting = False
        session._sign_in(token, view)
        return rx.redirect(landing_route(view.is_staff), replace=True)

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
        self.submitting = True
        self.error = ""
        yield
        yield await self._finish(_log_in, email, password)

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
        self.submitting = True
        self.error = ""
        yield
        yield await self._finish(_sign_up, email, password, name)

    def clear_error(self):
        self.error = ""
