"""Checks that run on a balance AFTER the debit that changed it has committed.

Low-balance alerts and auto top-up react to a debit that takes the balance
below a threshold. They must never run inside the debit's transaction (a
payment inside it would hold the account lock for a network round trip, and
a failed check must not undo a debit), and they must add no database round
trip to the debit path. So the ledger only notes each committed-to-be debit
in the caller's Session (`note`: an append to a list, no SQL), and the
`after_commit` hook hands the list to the registered watchers once the
transaction has committed. A rolled-back transaction's debits are dropped.

"Once per crossing": every debit knows its exact balance before and after
(the ledger serialises an account's writes), so of many concurrent debits
exactly one goes from "at or above the threshold" to "below it".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_INFO_KEY = "workroom_committed_debits"


@dataclass(frozen=True, slots=True)
class Debit:
    account_id: int
    entry_id: int
    balance_before: int
    balance_after: int

    def crossed_below(self, threshold: int) -> bool:
        """This debit took the balance from at least `threshold` to below it."""
        return threshold > 0 and self.balance_before >= threshold > self.balance_after


Watcher = Callable[[Engine, list[Debit]], None]
_watchers: list[Watcher] = []


def register(watcher: Watcher) -> None:
    if watcher not in _watchers:
        _watchers.append(watcher)


def note(
    session: object, account_id: int, entry_id: int | None, amount: int, balance_after: int
) -> None:
    """Called by the ledger for a debit it has just written (not a replay)."""
    if not _watchers or entry_id is None or not isinstance(session, Session):
        return
    session.info.setdefault(_INFO_KEY, []).append(
        Debit(account_id, entry_id, balance_after + amount, balance_after)
    )


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint was released (jobs.submit debits inside one): nothing is committed yet, and
        # the outer transaction still holds SQLite's write lock the watchers would wait on.
        return
    debits = session.info.pop(_INFO_KEY, None)
    if not debits:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    for watcher in list(_watchers):
        try:
            watcher(engine, debits)
        except Exception:  # noqa: BLE001  (the debit is committed; a check must never undo or fail it)
            log.exception("balance watcher %s failed", getattr(watcher, "__name__", watcher))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)
