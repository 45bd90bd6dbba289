"""The staff dashboard's back end: find an account, look at it, correct its balance.

Plain Python (no Reflex). Every function takes the caller's session and the id
of the person asking (``actor_id``) and first re-reads that person's role from
the database: the page guard and the state check the role too, but a
balance-changing function must not rely on its callers for that. A non-staff
actor gets ``StaffOnly`` and nothing is read or written.

Adjustments go through ``ledger.staff_adjust`` (the only writer of balances),
always with a written reason and the staff member recorded on the row. Each
adjustment carries a request id the dashboard makes when its form opens; the
idempotency key is derived from the actor and that id, so the same request
sent twice (double click, retried websocket message) is applied once.

Decision: staff cannot adjust their own balance here; another staff member
has to, so every correction has a second person behind it.

The limits, errors and input checks are in billing/staff_input.py and the
display helpers in billing/staff_display.py; this module re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from workroom_app.billing import accounts, audit, ledger, staff_roles
from workroom_app.billing.staff_display import (  # noqa: F401  (re-exported)
    _aware,
    describe_adjustment,
    format_time,
    plan_name,
)
from workroom_app.billing.staff_input import (  # noqa: F401  (re-exported)
    _AMOUNT_RE,
    _MAX_ID,
    _REQUEST_ID_RE,
    DEFAULT_INVOICE_LIMIT,
    DEFAULT_LEDGER_LIMIT,
    DEFAULT_SEARCH_LIMIT,
    MAX_ADJUSTMENT,
    MAX_PAGE_LIMIT,
    MAX_QUERY_LENGTH,
    MAX_REASON_LENGTH,
    MIN_REASON_LENGTH,
    STAFF_ONLY_MESSAGE,
    NotAllowed,
    StaffError,
    StaffOnly,
    _check_cursor,
    _check_limit,
    check_id,
    check_query,
    check_reason,
    check_request_id,
    parse_amount,
)
from workroom_app.billing.staff_roles import Permission
from workroom_app.models import (
    ACTION_LABELS,
    Account,
    AccountBalance,
    GenerationJob,
    Invoice,
    LedgerEntry,
    Subscription,
    SubscriptionStatus,
)


def require_staff(
    session: Session, actor_id: object, permission: Permission = Permission.VIEW
) -> Account:
    """The actor's account, re-read now; StaffOnly unless it is a staff account,
    NotAllowed unless its role may do `permission` (billing/staff_roles.py)."""
    # The actor always comes from the server's login, so only a real int is one.
    if isinstance(actor_id, bool) or not isinstance(actor_id, int) or not 0 < actor_id <= _MAX_ID:
        raise StaffOnly()
    account = session.get(Account, actor_id)
    if account is None or not accounts.is_staff(account):
        raise StaffOnly()
    if not staff_roles.can(account.role, permission):
        raise NotAllowed(staff_roles.REFUSALS.get(permission, "Your role cannot do that."))
    return account


def target_account(session: Session, account_id: object) -> Account:
    """The account a staff action is about; StaffError when there is none."""
    return _target(session, account_id)


def _target(session: Session, account_id: object) -> Account:
    account = session.get(Account, check_id(account_id))
    if account is None:
        raise StaffError("That account was not found.")
    return account


# ------------------------------------------------------------------- search


@dataclass(frozen=True)
class AccountRow:
    id: int
    email: str
    display_name: str
    role: str
    balance: int


@dataclass(frozen=True)
class AccountSearch:
    rows: list[AccountRow]
    # Pass as after_id for the next page; None when this is the last one.
    next_after_id: int | None


def search_accounts(
    session: Session,
    actor_id: int,
    query: str,
    *,
    after_id: int | None = None,
    limit: int | None = None,
) -> AccountSearch:
    """Accounts whose email contains `query` (all accounts for an empty query),
    by id, `limit` at a time; page on with `after_id`."""
    require_staff(session, actor_id)
    text = check_query(query)
    after = _check_cursor(after_id)
    size = _check_limit(limit, DEFAULT_SEARCH_LIMIT)
    stmt = (
        select(
            Account.id, Account.email, Account.display_name, Account.role, AccountBalance.balance
        )
        .outerjoin(AccountBalance, AccountBalance.account_id == Account.id)
        .order_by(Account.id)
        .limit(size + 1)
    )
    if text:
        # autoescape: a "%" or "_" typed into the box is a literal character.
        stmt = stmt.where(Account.email.contains(text, autoescape=True))
    if after is not None:
        stmt = stmt.where(Account.id > after)
    found = session.execute(stmt).all()
    rows = [
        AccountRow(id=r[0], email=r[1], display_name=r[2], role=r[3], balance=r[4] or 0)
        for r in found[:size]
    ]
    return AccountSearch(rows=rows, next_after_id=rows[-1].id if len(found) > size else None)


# ----------------------------------------------------------------- overview


@dataclass(frozen=True)
class SubscriptionSummary:
    id: int
    plan_key: str
    plan_name: str
    status: str
    current_period_end: datetime
    cancel_at_period_end: bool
    gateway: str


@dataclass(frozen=True)
class InvoiceSummary:
    id: int
    number: str | None  # None: a failed attempt (not numbered)
    kind: str
    status: str
    amount_cents: int
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class AccountOverview:
    id: int
    email: str
    display_name: str
    role: str
    created_at: datetime
    balance: int
    plan_key: str
    plan_name: str
    # The most recent subscription (live or ended); None when never subscribed.
    subscription: SubscriptionSummary | None
    # Generation jobs by status, and their total.
    job_counts: dict[str, int]
    jobs_total: int
    invoices: list[InvoiceSummary]


def account_overview(
    session: Session, actor_id: int, account_id: int, *, invoice_limit: int | None = None
) -> AccountOverview:
    require_staff(session, actor_id)
    account = _target(session, account_id)
    invoices_wanted = _check_limit(invoice_limit, DEFAULT_INVOICE_LIMIT)
    plan_key = accounts.current_plan_key(session, account.id)

    sub = (
        session.execute(
            select(Subscription)
            .where(Subscription.account_id == account.id)
            # A live subscription first, else the latest ended one.
            .order_by(
                (Subscription.status == SubscriptionStatus.ENDED).asc(), Subscription.id.desc()
            )
            .limit(1)
        )
        .scalars()
        .first()
    )
    subscription = None
    if sub is not None:
        subscription = SubscriptionSummary(
            id=sub.id,
            plan_key=sub.plan_key,
            plan_name=plan_name(sub.plan_key),
            status=sub.status,
            current_period_end=_aware(sub.current_period_end),
            cancel_at_period_end=bool(sub.cancel_at_period_end),
            gateway=sub.gateway,
        )

    counts = {
        status: count
        for status, count in session.execute(
            select(GenerationJob.status, func.count())
            .where(GenerationJob.account_id == account.id)
            .group_by(GenerationJob.status)
        ).all()
    }
    invoices = [
        InvoiceSummary(
            id=inv.id,
            number=inv.number,
            kind=inv.kind,
            status=inv.status,
            amount_cents=inv.amount_cents,
            currency=inv.currency,
            created_at=_aware(inv.created_at),
        )
        for inv in session.execute(
            select(Invoice)
            .where(Invoice.account_id == account.id)
            .order_by(Invoice.id.desc())
            .limit(invoices_wanted)
        ).scalars()
    ]
    return AccountOverview(
        id=account.id,
        email=account.email,
        display_name=account.display_name,
        role=account.role,
        created_at=_aware(account.created_at),
        balance=ledger.balance(session, account.id),
        plan_key=plan_key,
        plan_name=plan_name(plan_key),
        subscription=subscription,
        job_counts=dict(sorted(counts.items())),
        jobs_total=sum(counts.values()),
        invoices=invoices,
    )


# ------------------------------------------------------------------- ledger


@dataclass(frozen=True)
class StaffLedgerRow:
    id: int
    created_at: datetime
    action_type: str
    action_label: str
    feature: str | None
    amount: int
    balance_after: int
    reason: str | None
    # Who made a staff adjustment (email), None for every other row.
    actor_email: str | None


@dataclass(frozen=True)
class StaffLedgerPage:
    rows: list[StaffLedgerRow]
    # Pass as before_id for older rows; None when there are none.
    next_before_id: int | None


def recent_ledger(
    session: Session,
    actor_id: int,
    account_id: int,
    *,
    before_id: int | None = None,
    limit: int | None = None,
) -> StaffLedgerPage:
    """The account's ledger rows, newest first, `limit` at a time."""
    require_staff(session, actor_id)
    account = _target(session, account_id)
    before = _check_cursor(before_id)
    size = _check_limit(limit, DEFAULT_LEDGER_LIMIT)
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account.id)
        .order_by(LedgerEntry.id.desc())
        .limit(size + 1)
    )
    if before is not None:
        stmt = stmt.where(LedgerEntry.id < before)
    entries = list(session.execute(stmt).scalars())
    page = entries[:size]
    actor_ids = {e.actor_id for e in page if e.actor_id is not None}
    actors = (
        dict(
            session.execute(
                select(Account.id, Account.email).where(Account.id.in_(actor_ids))
            ).all()
        )
        if actor_ids
        else {}
    )
    rows = [
        StaffLedgerRow(
            id=e.id,
            created_at=_aware(e.created_at),
            action_type=e.action_type,
            action_label=ACTION_LABELS.get(
                e.action_type, e.action_type.replace("_", " ").capitalize()
            ),
            feature=e.feature,
            amount=e.amount,
            balance_after=e.balance_after,
            reason=e.reason,
            actor_email=actors.get(e.actor_id) if e.actor_id is not None else None,
        )
        for e in page
    ]
    return StaffLedgerPage(rows=rows, next_before_id=rows[-1].id if len(entries) > size else None)


# --------------------------------------------------------------- adjustment


@dataclass(frozen=True)
class AdjustmentPreview:
    account_id: int
    email: str
    amount: int
    reason: str
    balance_before: int
    balance_after: int

    @property
    def summary(self) -> str:
        return describe_adjustment(self.email, self.amount, self.balance_before, self.balance_after)


@dataclass(frozen=True)
class AdjustmentResult:
    entry_id: int | None
    account_id: int
    email: str
    amount: int
    balance_after: int
    # False when this request id had already been applied (nothing changed now).
    created: bool


def _overdraw_message(amount: int, balance: int) -> str:
    return (
        f"Cannot remove {-amount:,} credits: the balance is only {balance:,}, "
        "and a balance never goes below zero."
    )


def _within_role_limit(actor: Account, value: int) -> int:
    limit = staff_roles.adjust_limit(actor.role)
    if abs(value) > limit:
        raise NotAllowed(
            f"Your role can add or remove at most {limit:,} credits at a time. Ask finance or an admin."
        )
    return value


def _check_not_self(actor: Account, target: Account) -> None:
    if actor.id == target.id:
        raise StaffError("You cannot adjust your own balance. Ask another staff member.")


def preview_adjustment(
    session: Session, actor_id: int, account_id: int, amount: object, reason: object
) -> AdjustmentPreview:
    """Check an adjustment and say what it would do, writing nothing.

    The balance can change before it is confirmed; ``adjust`` checks again
    under the account's lock.
    """
    actor = require_staff(session, actor_id, Permission.ADJUST)
    target = _target(session, account_id)
    _check_not_self(actor, target)
    value = _within_role_limit(actor, parse_amount(amount))
    text = check_reason(reason)
    before = ledger.balance(session, target.id)
    if before + value < 0:
        raise StaffError(_overdraw_message(value, before))
    return AdjustmentPreview(
        account_id=target.id,
        email=target.email,
        amount=value,
        reason=text,
        balance_before=before,
        balance_after=before + value,
    )


def adjustment_key(actor_id: int, request_id: str) -> str:
    return f"staff-adjust:{actor_id}:{request_id}"


def adjust(
    session: Session,
    actor_id: int,
    account_id: int,
    amount: object,
    *,
    reason: object,
    request_id: object,
) -> AdjustmentResult:
    """Apply a staff adjustment (in the caller's write transaction).

    The same request id from the same staff member applies once: a repeat
    returns the first result with created=False. Refused, with nothing
    written, when it would take the balance below zero.
    """
    actor = require_staff(session, actor_id, Permission.ADJUST)
    target = _target(session, account_id)
    _check_not_self(actor, target)
    value = _within_role_limit(actor, parse_amount(amount))
    text = check_reason(reason)
    key = adjustment_key(actor.id, check_request_id(request_id))
    try:
        result = ledger.staff_adjust(
            session, target.id, value, reason=text, actor_id=actor.id, idempotency_key=key
        )
    except ledger.InsufficientCredits as exc:
        raise StaffError(_overdraw_message(value, exc.available)) from None
    except ledger.LedgerError as exc:
        raise StaffError(str(exc)) from None
    verb = "Added" if value > 0 else "Removed"
    audit.record(
        session,
        actor,
        audit.ADJUST,
        account_id=target.id,
        reason=text,
        request_key=key,
        result=audit.DONE if result.created else audit.REPEAT,
        target=f"ledger:{result.entry_id}" if result.entry_id else None,
        detail=(
            f"{verb} {abs(value):,} credits; balance now {result.balance_after:,}."
            if result.created
            else "Same adjustment confirmed again; nothing changed."
        ),
    )
    return AdjustmentResult(
        entry_id=result.entry_id,
        account_id=target.id,
        email=target.email,
        amount=result.amount,
        balance_after=result.balance_after,
        created=result.created,
    )


# ---------------------------------------------------------------- staff roles


@dataclass(frozen=True)
class RoleChange:
    account_id: int
    email: str
    old_role: str
    new_role: str
    changed: bool


def set_role(
    session: Session, actor_id: int, account_id: object, role: object, *, reason: object
) -> RoleChange:
    """An admin gives an account a role (user, support, finance, admin), with
    a written reason and an audit row. Nobody changes their own role (so the
    last admin cannot lock everyone out by accident)."""
    actor = require_staff(session, actor_id, Permission.MANAGE_ROLES)
    target = _target(session, account_id)
    if not isinstance(role, str) or role not in staff_roles.ASSIGNABLE_ROLES:
        raise StaffError("Choose one of the roles: user, support, finance or admin.")
    if actor.id == target.id:
        raise StaffError("You cannot change your own role. Ask another admin.")
    text = check_reason(reason)
    old = target.role
    changed = old != role
    if changed:
        accounts.set_role(session, target.id, role)
    audit.record(
        session,
        actor,
        audit.SET_ROLE,
        account_id=target.id,
        reason=text,
        result=audit.DONE if changed else audit.REPEAT,
        detail=f"Role {old} \u2192 {role}."
        if changed
        else f"Role was already {role}; nothing changed.",
    )
    return RoleChange(target.id, target.email, old, role, changed)
