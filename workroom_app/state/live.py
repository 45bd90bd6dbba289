"""Live push: the header balance and the user's jobs follow the database in every open tab, at
no cost while nothing changes.

Whatever changes a balance, a job, a subscription or a payment announces it when its transaction
commits (workroom_app/notifications.py). Each backend process listens once (one ChangeFeed) and
keeps, in memory, which of its connected tabs show which account (every page load's guard
registers the tab, `tab_loaded`: no query, no event). On a change for account N:

    no tab of N on this process   -> nothing (no query, no push)
    otherwise                     -> one read of what changed (the account's header data for
                                     balance/plan, its recent jobs for jobs), shared by all
                                     of N's tabs, then a push to each of them (their state is
                                     changed under Reflex's lock: app.modify_state)

Changes for one account are coalesced: while a push runs, and until PUSH_SPACING_SECONDS after
it started, further notifications for the same account merge into one follow-up. A change made
by a tab's own event that the tab shows itself (Change.tab: a submission, a cancellation) is not
pushed back to that tab. A tab that has nothing changed costs nothing: there is no loop
per tab. A missed notification (the listener reconnected) makes every registered tab re-read once
(`resync`); a tab that reconnects re-reads on its page load (state/page_open.py), never on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import reflex as rx
from reflex.istate.manager.token import BaseStateToken
from reflex.state import State, StateUpdate
from reflex_base.event import Event

from workroom_app import notifications
from workroom_app.billing import accounts
from workroom_app.db import read_session
from workroom_app.routes import LOGIN_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.security.live_logins import live_logins
from workroom_app.state.alerts import AlertsState
from workroom_app.state.generate import GenerateState, JobView, read_jobs
from workroom_app.state.reports import ReportState, read_reports
from workroom_app.state.session import (
    AccountView,
    SessionState,
    on_page_load,
    read_account_view_by_id,
    route_of,
)
from workroom_app.state.session_guard import forget_everything
from workroom_app.state.subscription import SubscriptionState

log = logging.getLogger("workroom.live")

ACCOUNT_KINDS = frozenset(
    {
        notifications.BALANCE,
        notifications.SUBSCRIPTION,
        notifications.PAYMENT,
        notifications.ACCOUNT,
    }
)
JOB_KINDS = frozenset({notifications.JOB, notifications.REPORT})
# A login of the account ended: each tab re-checks its own login and, if it was that one, is
# signed out and sent to /login (an idle tab sends no event the session guard could refuse).
SESSION_KINDS = frozenset({notifications.SESSION})
# Payment History and the plan summary are re-read (by the tab's own event) only in tabs that show
# them: /subscription.
PAYMENT_KINDS = frozenset({notifications.PAYMENT, notifications.SUBSCRIPTION})
ALL_KINDS = ACCOUNT_KINDS | JOB_KINDS | SESSION_KINDS


# ------------------------------------------------------------------- tabs of this process


class TabRegistry:
    """client token <-> account id, for the tabs whose page loads ran in this process."""

    def __init__(self) -> None:
        self._account_of: dict[str, int] = {}
        self._tabs_of: dict[int, set[str]] = {}
        self._login_of: dict[str, str] = {}  # token -> hash of the login it was bound with

    def register(self, token: str, account_id: int, login_hash: str | None = None) -> None:
        if login_hash:
            self._login_of[token] = login_hash
        else:
            self._login_of.pop(token, None)
        previous = self._account_of.get(token)
        if previous == account_id:
            return
        if previous is not None:
            self.unregister(token, keep_login=True)
        self._account_of[token] = account_id
        self._tabs_of.setdefault(account_id, set()).add(token)

    def login_of(self, token: str) -> str | None:
        return self._login_of.get(token)

    def unregister(self, token: str, *, keep_login: bool = False) -> None:
        if not keep_login:
            self._login_of.pop(token, None)
        account_id = self._account_of.pop(token, None)
        if account_id is None:
            return
        tabs = self._tabs_of.get(account_id)
        if tabs is not None:
            tabs.discard(token)
            if not tabs:
                del self._tabs_of[account_id]

    def tabs_of(self, account_id: int) -> list[str]:
        return list(self._tabs_of.get(account_id, ()))

    def accounts(self) -> list[int]:
        return list(self._tabs_of)

    def prune(self, is_here: Callable[[str], bool]) -> int:
        """Forget tabs no longer connected here (closed tabs of accounts that never change)."""
        gone = [token for token in self._account_of if not is_here(token)]
        for token in gone:
            self.unregister(token)
        return len(gone)

    def __len__(self) -> int:
        return len(self._account_of)

    def clear(self) -> None:
        self._account_of.clear()
        self._tabs_of.clear()
        self._login_of.clear()


registry = TabRegistry()


# ------------------------------------------------------------------- how to reach a tab


class Pusher:
    """How this process changes a tab's state and sends it events. The app's (app.modify_state,
    the socket namespace) by default; tests plug in their state manager."""

    def __init__(
        self,
        modify: Callable[[str], contextlib.AbstractAsyncContextManager[Any]],
        emit_events: Callable[[str, list], Any],
        is_here: Callable[[str], bool],
    ) -> None:
        self.modify = modify
        self.emit_events = emit_events
        self.is_here = is_here

    @classmethod
    def for_app(cls, app: rx.App) -> Pusher:
        def modify(token: str) -> contextlib.AbstractAsyncContextManager[Any]:
            return app.modify_state(BaseStateToken(ident=token, cls=State))

        async def emit_events(token: str, events: list) -> None:
            await app.event_namespace.emit_update(
                StateUpdate(events=Event.from_event_type(events)), token
            )

        def is_here(token: str) -> bool:
            namespace = getattr(app, "event_namespace", None)
            if namespace is None:
                return False
            manager = namespace._token_manager
            record = manager.token_to_socket.get(token)
            return record is not None and record.instance_id == manager.instance_id

        return cls(modify, emit_events, is_here)


_pusher: Pusher | None = None
_app: Any = None


def set_app(app: Any) -> None:
    """Called once by workroom_app.background.register_background."""
    global _app, _pusher
    _app = app
    _pusher = Pusher.for_app(app)


def set_pusher(pusher: Pusher | None) -> None:
    global _pusher
    _pusher = pusher


# ------------------------------------------------------------------- reads shared by the tabs


def read_live_logins(account_id: int) -> frozenset[str]:
    """Blocking: the hashes of the account's live logins. Read with every push, so a push never
    reaches a tab whose login ended, and a log-out elsewhere signs such tabs out at once."""
    with read_session() as session:
        return accounts.live_token_hashes(session, account_id)


def read_for_push(
    account_id: int, kinds: frozenset[str], logins_needed: bool = True
) -> tuple[
    frozenset[str] | None,
    AccountView | None,
    tuple[list[JobView], list[JobView], bool, str] | None,
    dict[str, str] | None,
]:
    """Blocking: everything one push needs, in one trip to a worker thread: the live logins
    (unless this process knows the tabs' logins are live), and the header data, the jobs and
    the broken-result reports' status when `kinds` name them."""
    logins = read_live_logins(account_id) if logins_needed else None
    view = read_account_view_by_id(account_id) if kinds & ACCOUNT_KINDS else None
    jobs = read_jobs(account_id, None, None) if kinds & JOB_KINDS else None
    # Report statuses change only with a report (filed, decided): not re-read for every job step.
    reports = read_reports(account_id) if notifications.REPORT in kinds else None
    return logins, view, jobs, reports


# ------------------------------------------------------------------- dispatch

# The pushes' reads have threads of their own: however many pushes are under way, a click's
# handler (which reads and writes in the default executor) never waits behind them for a thread.
_push_reads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workroom-live-push")

PRUNE_EVERY = 1000
_registrations = 0

# What the tab that made a change applies itself (GenerateState.submit / cancel: the job, the
# balance): a change of only these kinds is not pushed back to that tab.
SHOWN_BY_ACTING_TAB = frozenset({notifications.JOB, notifications.BALANCE, notifications.QUEUED})
# One account's pushes start at least this far apart: a job's quick steps (submitted, running,
# first progress) arriving within it go out as one push, while a change after a quiet moment
# goes out at once.
PUSH_SPACING_SECONDS = 0.15


class PendingPush:
    """What the next push of one account must re-read, and the tabs that need none of it."""

    def __init__(self) -> None:
        self.kinds: set[str] = set()
        self.skip: set[str] | None = None  # None: no change merged yet

    def add(self, change: notifications.Change, kinds: frozenset[str]) -> None:
        self.kinds |= kinds
        made_here = {change.tab} if change.tab and kinds <= SHOWN_BY_ACTING_TAB else set()
        # A tab is skipped only if every merged change was its own.
        self.skip = made_here if self.skip is None else self.skip & made_here


_pending: dict[int, PendingPush] = {}
_draining: dict[int, asyncio.Task] = {}


def on_change(change: notifications.Change) -> None:
    """ChangeFeed subscriber (on the event loop): queue a push for the account's tabs here."""
    kinds = change.kinds & ALL_KINDS
    if not kinds or not registry.tabs_of(change.account_id):
        return  # nothing shown here: no query, no push
    _pending.setdefault(change.account_id, PendingPush()).add(change, kinds)
    if change.account_id not in _draining:
        _draining[change.account_id] = asyncio.ensure_future(_drain(change.account_id))


def resync() -> None:
    """The listener reconnected: notifications may have been missed. Every tab re-reads once."""
    for account_id in registry.accounts():
        on_change(notifications.Change(account_id, ALL_KINDS))


async def _drain(account_id: int) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            pending = _pending.pop(account_id, None)
            if pending is None or not pending.kinds:
                return
            started = loop.time()
            try:
                pushed = await push_account(
                    account_id, frozenset(pending.kinds), skip=frozenset(pending.skip or ())
                )
            except Exception:
                log.exception("live push to account %s failed", account_id)
                pushed = 0
            if pushed:  # changes arriving until then wait and are merged into one push
                await asyncio.sleep(max(0.0, started + PUSH_SPACING_SECONDS - loop.time()))
    finally:
        _draining.pop(account_id, None)


async def wait_idle() -> None:
    """Tests and benchmarks: until every queued push has been sent."""
    while _draining:
        await asyncio.gather(*list(_draining.values()), return_exceptions=True)


async def push_account(
    account_id: int, kinds: frozenset[str], skip: frozenset[str] = frozenset()
) -> int:
    """Re-read what `kinds` name once, and push it to the account's tabs here but `skip` (tabs
    that made the change and show it already). Returns the number of tabs pushed to."""
    pusher = _pusher
    if pusher is None:
        return 0
    tokens = []
    for token in registry.tabs_of(account_id):
        if token in skip:
            continue
        if pusher.is_here(token):
            tokens.append(token)
        else:
            registry.unregister(token)  # closed, or its socket moved to another process
    if not tokens:
        return 0
    # The tabs' logins are checked with every push; no query when the session guard's memory
    # (security/live_logins.py, forgotten the moment a login of the account changes) has them.
    logins_needed = not all(_known_live(registry.login_of(t), account_id) for t in tokens)
    logins, view, jobs, reports = await asyncio.get_running_loop().run_in_executor(
        _push_reads, functools.partial(read_for_push, account_id, kinds, logins_needed)
    )
    pushed = 0
    for token in tokens:
        try:
            toasts = await _push_tab(
                pusher,
                token,
                account_id,
                logins,
                view,
                jobs,
                payments_changed=bool(kinds & PAYMENT_KINDS),
                reports=reports,
            )
        except Exception:
            log.exception("live push to a tab failed")
            continue
        pushed += 1
        if toasts:
            await pusher.emit_events(token, toasts)
    return pushed


async def _push_tab(
    pusher: Pusher,
    token: str,
    account_id: int,
    logins: frozenset[str] | None,
    view: AccountView | None,
    jobs: tuple[list[JobView], list[JobView], bool, str] | None,
    *,
    payments_changed: bool = False,
    reports: dict[str, str] | None = None,
) -> list:
    async with pusher.modify(token) as root:
        session = await root.get_state(SessionState)
        if session._account_id != account_id:
            registry.unregister(token)  # signed out (or in as someone else) in this tab
            return []
        if logins is None and not _known_live(session._token_hash, account_id):
            # Forgotten since the push began (a login of the account changed): ask.
            logins = await asyncio.to_thread(read_live_logins, account_id)
        if logins is not None and session._token_hash not in logins:
            # Its login ended elsewhere (log out, log out everywhere, account disabled): sign the
            # tab out now, as the session guard would on its next event.
            registry.unregister(token)
            forget_everything(root)
            return [rx.redirect(LOGIN_ROUTE, replace=True)]
        if view is not None:
            session._set_balance(view.balance)
            session.plan_key = view.plan_key
            session.plan_name = view.plan_name
            session.is_staff = view.is_staff
            session.email_confirmed = view.email_confirmed
        events = []
        if payments_changed:
            # The past-due banner and the alert toasts are on every page.
            events.append(AlertsState.refresh)
            if route_of(root) == SUBSCRIPTION_ROUTE:
                events.append(SubscriptionState.refresh_payments)
        if jobs is None:
            return events
        if reports is not None:
            (await root.get_state(ReportState)).report_status = reports
        generate = await root.get_state(GenerateState)
        active, history, more, tz = jobs
        generate._tz = tz
        if generate._history_before is None:
            return events + list(generate._apply_jobs(active, history, more) or [])
        return events + list(generate._apply_jobs(active, None, None) or [])


# ------------------------------------------------------------------- the process's listener


@contextlib.asynccontextmanager
async def live_push() -> AsyncIterator[None]:
    """Lifespan of a web process: listen for changes and push them to this process's tabs."""
    feed = await notifications.process_feed()
    feed.subscribe(on_change, on_resync=resync)
    # The session guard may now remember logins it found live: it hears when they end.
    live_logins.listen(feed)
    log.info("live push listening (%s)", feed.backend)
    try:
        yield
    finally:
        live_logins.stop()
        feed.unsubscribe(on_change)
        await notifications.stop_process_feed()


# ------------------------------------------------------------------- which tab shows what


def _known_live(login_hash: str | None, account_id: int) -> bool:
    return login_hash is not None and live_logins.account_of(login_hash) == account_id


def tab_loaded(token: str, account_id: int | None, login_hash: str | None = None) -> None:
    """Every page load (its guard, state/session.py): this tab gets the pushes of its account,
    or none once signed out. No query: the guard has just read the account (which also recovers
    anything missed while the tab was away)."""
    if account_id is None:
        registry.unregister(token)
        return
    registry.register(token, account_id, login_hash)
    global _registrations
    _registrations += 1
    if _registrations % PRUNE_EVERY == 0 and _pusher is not None:
        registry.prune(_pusher.is_here)  # memory only: dict look-ups, no I/O


on_page_load(tab_loaded)
