"""The credit ledger: the only code that writes balances, grants and ledger rows.

Every function takes the caller's session (an open ``write_session``
transaction) and never commits, so a caller can put its own rows (a generation
job, an invoice) in the same transaction as the credit change.

Each operation first locks the account's ``account_balance`` row (SELECT ... FOR
UPDATE on PostgreSQL; on SQLite ``write_session`` already holds the database
write lock from BEGIN IMMEDIATE), then looks up its idempotency key. A key that
was already used returns the first result with ``created=False`` and changes
nothing. Because every writer of an account goes through that one row lock,
the checks below (enough credits, refund not yet given) cannot race.

Invariants kept after every operation, and verified by ``ledger_check``:
- ``account_balance.balance`` == sum of the account's ledger amounts == sum of
  its grants' ``amount_left``; no balance, grant or ``balance_after`` is negative;
- each ledger row's ``balance_after`` is the previous row's plus its amount;
- ``account_balance.next_expiry_at`` is the soonest ``expires_at`` among grants
  with credits left (None when none expire), so a debit can tell from the row it
  has just locked whether some grant is past its expiry and must be expired
  (an Expiry row) before anything is spent. Expired credits are never spendable.

Spending (debits and negative staff adjustments) draws from the grant that
expires soonest; grants that never expire go last; ties go to the oldest grant.
The debit row records what it drew as JSON ``draws`` = ``[[grant_id, amount], ...]``.

Refunds (decision): a refund gives back exactly the debited amount, once per
debit. Each part goes back to the grant it was drawn from if that grant is
still live (not burned, not past its expiry); the parts whose grant has since
expired or been burned go into one new grant that never expires (source
"refund"), so a refund never hands back credits that vanish at once and never
resurrects a burned plan's bucket. A second refund of the same debit, under
any idempotency key, returns the first refund and changes nothing.

Expiry rows get the key ``expiry:grant:<smallest grant id expired>``: a grant
expires only once, so the key is unique and a repeated sweep is a no-op.

The debit hot path is short, measured and kept so (docs/benchmarks.md,
"Ledger"). PostgreSQL: one round trip (a psycopg pipeline) of two statements,
the balance-row lock, then one statement of data-modifying CTEs that checks
the key and the balance, takes the credits, draws from the first grant and
inserts the ledger row. SQLite: four statements on the transaction's own
sqlite3 connection (the transaction already holds the write lock, so the key
lookup may come first), then the balance check-and-take (one conditional
UPDATE ... RETURNING), the draw, the ledger row. Both fall back to the general
path (SQLAlchemy Core) for anything unusual: a replayed key, a short balance, a
due expiry, a debit that crosses grants.

The package: errors.py (LedgerError, InsufficientCredits), validation.py (argument checks and
which action each operation may write), core.py (the general path's building blocks),
sqlite_fast.py and postgres_fast.py (the two debit fast paths), grants.py, spending.py and
refunds.py (the operations), live_grants.py (reads of the credits still usable).
"""

from __future__ import annotations

from workroom_app.billing.ledger.core import LedgerResult
from workroom_app.billing.ledger.errors import InsufficientCredits, LedgerError
from workroom_app.billing.ledger.grants import (
    balance,
    burn_subscription_grants,
    expire_due,
    grant,
    open_account,
    remove_from_grants,
)
from workroom_app.billing.ledger.live_grants import spendable_balance, subscription_credits_left
from workroom_app.billing.ledger.refunds import refund
from workroom_app.billing.ledger.spending import debit, staff_adjust
from workroom_app.billing.ledger.validation import (
    BURN_ACTIONS,
    DEBIT_ACTIONS,
    GRANT_ACTIONS,
)

__all__ = [
    "LedgerError",
    "InsufficientCredits",
    "LedgerResult",
    "open_account",
    "grant",
    "debit",
    "refund",
    "expire_due",
    "burn_subscription_grants",
    "staff_adjust",
    "remove_from_grants",
    "balance",
    "spendable_balance",
    "subscription_credits_left",
    "GRANT_ACTIONS",
    "DEBIT_ACTIONS",
    "BURN_ACTIONS",
]

# The after-commit checks on debits (low-balance alerts, auto top-up) register
# themselves with balance_watch when imported.
from workroom_app.billing import alerts as _alerts  # noqa: E402,F401
