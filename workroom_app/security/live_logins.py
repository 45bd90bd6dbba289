"""Logins this process has just found live, so a busy tab's events need not each ask the database
(state/session_guard.py checks the login before every event; the page-load guard reads it too).

A process that hears every change notification (`LiveLogins.listen`; the web app's live push
starts it) remembers a login it has just found live for at most LIVE_LOGIN_SECONDS, never past
the login's expiry, and forgets it the moment a login of that account changes:

    a commit in this process announcing SESSION (log out, log out everywhere, disable, any
    change of a login row)           -> forgotten in the committing thread, before the commit
                                        returns to its caller (notifications.on_commit)
    the same from another process    -> forgotten when its notification arrives (PostgreSQL
                                        NOTIFY or Redis: milliseconds; SQLite's change check:
                                        within notifications.LOCAL_CHECK_SECONDS)
    the listener lost its connection -> nothing is remembered until it is back, and all is
                                        forgotten then

A check that started before such a change never stores its (stale) answer: every forget moves
an epoch, and an answer is kept only if the epoch did not move while it was read. A process that
does not listen (the CLI, tests without a feed) remembers nothing: every check asks the database.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from workroom_app import notifications
from workroom_app.billing import clock

# Longest time a login found live is taken as live without asking the database again, when
# every change is heard (a safety net: a change is normally heard within milliseconds).
LIVE_LOGIN_SECONDS = 2.0


class LiveLogins:
    """token hash -> account id of the logins this process has just found live."""

    def __init__(self, seconds: float = LIVE_LOGIN_SECONDS) -> None:
        self.seconds = seconds
        # hash -> (account id, login expiry, remembered until (monotonic))
        self._entries: dict[str, tuple[int, datetime, float]] = {}
        self._by_account: dict[int, set[str]] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._feed: notifications.ChangeFeed | None = None

    # -- hearing changes
    def listen(self, feed: notifications.ChangeFeed) -> None:
        """Remember logins only while `feed` hears every change (see the module docstring)."""
        notifications.on_commit(self._on_commit)
        feed.subscribe(self._on_change, on_resync=self.forget_all)
        self._feed = feed

    def stop(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.unsubscribe(self._on_change)
        notifications.off_commit(self._on_commit)
        self.forget_all()

    @property
    def enabled(self) -> bool:
        feed = self._feed
        return feed is not None and feed.listening.is_set()

    def _on_commit(self, changes: list[notifications.Change]) -> None:
        for change in changes:
            if notifications.SESSION in change.kinds:
                self.forget_account(change.account_id)

    def _on_change(self, change: notifications.Change) -> None:
        if notifications.SESSION in change.kinds:
            self.forget_account(change.account_id)

    # -- the cache
    @property
    def epoch(self) -> int:
        return self._epoch

    def account_of(self, hashed: str) -> int | None:
        """The account of a login remembered as live, or None (ask the database)."""
        if not self.enabled:
            return None
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        account_id, expires_at, until = entry
        if time.monotonic() >= until or expires_at <= clock.now():
            with self._lock:
                self._drop(hashed)
            return None
        return account_id

    def remember(self, hashed: str, account_id: int, expires_at: datetime, epoch: int) -> None:
        """Keep a login just read as live, unless a change was heard since `epoch` was read."""
        if not self.enabled:
            return
        with self._lock:
            if epoch != self._epoch:
                return  # a login changed while it was read: the answer may be stale
            self._drop(hashed)
            self._entries[hashed] = (account_id, expires_at, time.monotonic() + self.seconds)
            self._by_account.setdefault(account_id, set()).add(hashed)

    def forget_account(self, account_id: int) -> None:
        with self._lock:
            self._epoch += 1
            for hashed in self._by_account.pop(account_id, ()):
                self._entries.pop(hashed, None)

    def forget_all(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()
            self._by_account.clear()

    def _drop(self, hashed: str) -> None:
        entry = self._entries.pop(hashed, None)
        if entry is not None:
            tokens = self._by_account.get(entry[0])
            if tokens is not None:
                tokens.discard(hashed)
                if not tokens:
                    del self._by_account[entry[0]]

    def __len__(self) -> int:
        return len(self._entries)


live_logins = LiveLogins()
