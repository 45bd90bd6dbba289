"""Live push: the header balance and the user's jobs follow the database in every open tab.

Whatever changes a balance (this tab, another tab, the worker finishing or refunding a job, a
payment, a staff adjustment) writes the cached balance row; whatever changes a job writes its row.
So each connected tab runs one background loop (started by `LiveState.start` on page load) that
every POLL_SECONDS reads two cheap things for its account:

    the balance row            (primary-key lookup)
    the newest RECENT jobs     (id, status, progress, updated_at; index account_id, id)

and only when that snapshot differs from the last one does it take the state lock and push the
change (balance and plan via SessionState, jobs via GenerateState, a toast for a failure). Tabs of
the same account share one read per interval (a short per-process cache), so N tabs of one user
cost one query pair, not N.

One loop per tab: loops are kept per client token in this process; `start` on every page load
returns at once when the tab's loop is alive. A loop ends when its tab has been disconnected for
GRACE_SECONDS (closed, or navigated away from the app) or the tab signs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import reflex as rx

from workroom_app.state.session import SessionState

log = logging.getLogger("workroom.live")

POLL_SECONDS = 0.3
GRACE_SECONDS = 5.0
RECENT = 20
# The plan can change without the balance changing (a downgrade with nothing left to burn):
# re-read the whole account view this often even when the snapshot is unchanged.
ACCOUNT_REFRESH_SECONDS = 5.0

# client token -> its loop, or the time one was asked for (until it starts; a request that never
# turns into a loop, say the tab closed first, stops blocking a new one after RESERVE_SECONDS)
_loops: dict[str, asyncio.Task | float] = {}
RESERVE_SECONDS = 5.0
_cache: dict[int, tuple[float, Any]] = {}  # account id -> (monotonic time, snapshot)
_app: Any = None  # set by workroom_app.background.register_background


def set_app(app: Any) -> None:
    global _app
    _app = app


def loop_count() -> int:
    now = time.monotonic()
    return sum(
        1
        for t in _loops.values()
        if (isinstance(t, asyncio.Task) and not t.done()) or (isinstance(t, float) and now - t < RESERVE_SECONDS)
    )


def read_snapshot(account_id: int) -> tuple:
    """Blocking: (balance, balance updated_at, ((job id, status, progress, updated_at), ...))."""
    from sqlmodel import select

    from workroom_app.db import read_session
    from workroom_app.models import AccountBalance, GenerationJob

    with read_session() as session:
        row = session.exec(
            select(AccountBalance.balance, AccountBalance.updated_at).where(AccountBalance.account_id == account_id)
        ).first()
        jobs = session.exec(
            select(GenerationJob.id, GenerationJob.status, GenerationJob.progress, GenerationJob.updated_at)
            .where(GenerationJob.account_id == account_id)
            .order_by(GenerationJob.id.desc())
            .limit(RECENT)
        ).all()
    balance, updated = (row[0], row[1]) if row else (0, None)
    return balance, updated, tuple(tuple(j) for j in jobs)


async def snapshot(account_id: int) -> tuple:
    now = time.monotonic()
    cached = _cache.get(account_id)
    if cached is not None and now - cached[0] < POLL_SECONDS / 2:
        return cached[1]
    value = await asyncio.to_thread(read_snapshot, account_id)
    _cache[account_id] = (time.monotonic(), value)
    if len(_cache) > 10_000:  # accounts that went away
        for key in [k for k, (t, _v) in _cache.items() if now - t > 60]:
            _cache.pop(key, None)
    return value


async def _connected(token: str) -> bool:
    app = _app
    if app is None:
        try:
            from reflex.utils.prerequisites import get_and_validate_app

            app = get_and_validate_app().app
        except Exception:
            return True  # no app to ask (unit tests): keep going, the caller bounds the loop
    namespace = getattr(app, "event_namespace", None)
    if namespace is None:
        return True
    return await namespace._token_manager.is_token_connected(token)


class LiveState(SessionState):
    @rx.event
    def start(self):
        """on_load of every signed-in page: make sure this tab has its live loop."""
        if self._account_id is None:
            return None
        token = self.router.session.client_token
        entry = _loops.get(token)
        if isinstance(entry, asyncio.Task) and not entry.done():
            return None
        if isinstance(entry, float) and time.monotonic() - entry < RESERVE_SECONDS:
            return None  # a loop was just asked for and is starting
        _loops[token] = time.monotonic()
        return LiveState.run

    @rx.event(background=True)
    async def run(self):
        # Everything stays inside this method: `self` is the background-task proxy here, and a
        # helper method would be bound to the bare state, where `async with self` does not lock.
        from workroom_app.state.generate import GenerateState, read_jobs

        token = self.router.session.client_token
        task = asyncio.current_task()
        entry = _loops.get(token)
        if isinstance(entry, asyncio.Task) and entry is not task and not entry.done():
            return  # another loop already serves this tab
        _loops[token] = task
        try:
            async with self:
                account_id = self._account_id
            if account_id is None:
                return
            last = await snapshot(account_id)
            last_account_check = time.monotonic()
            away_since: float | None = None
            while True:
                await asyncio.sleep(POLL_SECONDS)
                if not await _connected(token):
                    away_since = away_since or time.monotonic()
                    if time.monotonic() - away_since > GRACE_SECONDS:
                        return
                    continue
                away_since = None
                try:
                    current = await snapshot(account_id)
                except Exception:  # a database restart must not end the push for good
                    log.exception("live snapshot failed")
                    await asyncio.sleep(1.0)
                    continue
                balance_changed = current[:2] != last[:2]
                jobs_changed = current[2] != last[2]
                account_due = time.monotonic() - last_account_check > ACCOUNT_REFRESH_SECONDS
                if not (balance_changed or jobs_changed or account_due):
                    continue
                fresh_jobs = await asyncio.to_thread(read_jobs, account_id, None, None) if jobs_changed else None
                toasts: list = []
                async with self:
                    if self._account_id != account_id:
                        return  # signed out (or in as someone else) in this tab
                    if balance_changed or account_due:
                        await self._reload_account()
                        last_account_check = time.monotonic()
                        if self._account_id != account_id:
                            return
                    if fresh_jobs is not None:
                        generate = await self.get_state(GenerateState)
                        active, history, more, tz = fresh_jobs
                        generate._tz = tz
                        if generate._history_before is None:
                            toasts = generate._apply_jobs(active, history, more)
                        else:
                            toasts = generate._apply_jobs(active, None, None)
                last = current
                for toast in toasts:
                    yield toast
        finally:
            if _loops.get(token) is task:
                _loops.pop(token, None)
