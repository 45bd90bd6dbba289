"""All database tables. Times are aware UTC datetimes (SQLModel refuses naive ones); money is integer minor
units (cents); credits are integers.

Ledger entries are append-only: database triggers (see alembic/ and
billing/ledger_triggers.py) refuse UPDATE and DELETE on them.

Primary keys the database assigns are declared `id: int = Field(default=None, ...)`, not
`int | None`: the id is None only between `session.add()` and the flush, and no code reads it
then, while every caller after that would otherwise have to prove to mypy it is not None.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Role(StrEnum):
    USER = "user"
    # Legacy single staff role: migration 0007 turned every one into ADMIN;
    # billing/staff_roles.py still treats it as admin should one reappear.
    STAFF = "staff"
    # Staff roles (billing/staff_roles.py says what each may do).
    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"


class Account(SQLModel, table=True):
    __tablename__ = "account"
    id: int = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=254)
    password_hash: str
    display_name: str = ""
    role: str = Field(default=Role.USER, max_length=16)
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime
    # Security: the trial is granted once the address is confirmed; a disabled
    # account's sessions are refused on their next event.
    email_confirmed_at: datetime | None = None
    disabled_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    """A server-side login. The browser holds only a random token; we store its hash."""

    __tablename__ = "auth_session"
    id: int = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    account_id: int = Field(foreign_key="account.id", index=True)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    # Set while the row is only a log-in hand-off (token_hash is then the hash of a one-time
    # ticket the page exchanges for the HttpOnly cookie before this time); NULL for a live login.
    pending_until: datetime | None = None


class ActionType(StrEnum):
    TRIAL_GRANT = "trial_grant"
    SUBSCRIPTION_CREDITS = "subscription_credits"
    MONTHLY_CREDITS = "monthly_credits"
    GENERATION = "generation"
    REFUND = "refund"
    EXPIRY = "expiry"
    PLAN_CHANGE = "plan_change"
    STAFF_ADJUSTMENT = "staff_adjustment"
    CREDIT_PACK = "credit_pack"  # a one-off purchase of credits


ACTION_LABELS: dict[str, str] = {
    ActionType.TRIAL_GRANT: "Trial grant",
    ActionType.SUBSCRIPTION_CREDITS: "Subscription credits",
    ActionType.MONTHLY_CREDITS: "Monthly credits",
    ActionType.GENERATION: "Generation",
    ActionType.REFUND: "Refund",
    ActionType.EXPIRY: "Expiry",
    ActionType.PLAN_CHANGE: "Plan change",
    ActionType.STAFF_ADJUSTMENT: "Staff adjustment",
    ActionType.CREDIT_PACK: "Credit pack",
}


class AccountBalance(SQLModel, table=True):
    """The cached balance: always equal to the sum of the account's ledger rows.

    Every ledger write locks this row first, so it is also the per-account lock.
    next_expiry_at is the soonest expiry among grants with credits left, so the
    debit path knows without a query whether it must expire grants first.
    """

    __tablename__ = "account_balance"
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    balance: int = Field(default=0, sa_column_kwargs={"nullable": False})
    next_expiry_at: datetime | None = None
    updated_at: datetime


class GrantSource(StrEnum):
    TRIAL = "trial"
    SUBSCRIPTION = "subscription"
    MONTHLY = "monthly"
    PLAN_CHANGE = "plan_change"
    REFUND = "refund"
    STAFF = "staff"
    PACK = "pack"  # bought in a credit pack: expires 12 months after purchase, never burned


class CreditGrant(SQLModel, table=True):
    """A bucket of credits. Spending draws from the soonest-expiring bucket first."""

    __tablename__ = "credit_grant"
    __table_args__ = (Index("ix_credit_grant_draw", "account_id", "amount_left", "expires_at"),)
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    source: str = Field(max_length=32)
    amount_granted: int
    amount_left: int
    expires_at: datetime | None = None
    # The subscription whose plan granted it: a downgrade burns these.
    subscription_id: int | None = Field(default=None, index=True)
    created_at: datetime
    closed_at: datetime | None = None  # expired or burned


class LedgerEntry(SQLModel, table=True):
    """One change to a balance. Never updated, never deleted."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        Index("ix_ledger_account_id_desc", "account_id", "id"),
        Index("ix_ledger_account_action_id", "account_id", "action_type", "id"),
        # The Usage page lists newest first by (created_at, id): these keep its
        # date-range and action-type filters an index range scan at any depth.
        Index("ix_ledger_account_created", "account_id", "created_at", "id"),
        Index("ix_ledger_account_action_created", "account_id", "action_type", "created_at", "id"),
        # The staff overview reads a date range across accounts.
        Index("ix_ledger_created_at", "created_at"),
    )
    id: int = Field(default=None, sa_column_kwargs={"autoincrement": True}, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    action_type: str = Field(max_length=32)
    feature: str | None = Field(default=None, max_length=32)
    amount: int
    balance_after: int
    # What caused it: "generation", "invoice", "subscription", "staff", "debit" (for refunds).
    reference_type: str | None = Field(default=None, max_length=32)
    reference_id: str | None = Field(default=None, max_length=64)
    idempotency_key: str = Field(unique=True, max_length=200)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    actor_id: int | None = None
    # Which grants a debit drew from, as JSON [[grant_id, amount], ...]: a refund
    # puts the credits back where they came from.
    draws: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime


# ---------------------------------------------------------------- generation


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class GenerationJob(SQLModel, table=True):
    __tablename__ = "generation_job"
    __table_args__ = (
        UniqueConstraint("account_id", "client_request_id", name="uq_job_client_request"),
        Index("ix_job_account_id_desc", "account_id", "id"),
        Index("ix_job_status_deadline", "status", "deadline_at"),
        # The staff overview reads a date range across accounts.
        Index("ix_job_created_at", "created_at"),
    )
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    client_request_id: str = Field(max_length=64)
    feature: str = Field(max_length=32)
    model: str = Field(max_length=64)
    params_json: str = Field(sa_column=Column(Text, nullable=False))
    cost: int
    unlimited: bool = False
    status: str = Field(default=JobStatus.QUEUED, max_length=16)
    progress: int = 0
    provider: str = Field(default="local", max_length=16)
    provider_job_id: str | None = Field(default=None, max_length=128)
    # The worker that claimed the job and until when its claim holds: a worker
    # that dies stops renewing, and another one takes the job over after this.
    worker_id: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    debit_entry_id: int | None = None
    refund_entry_id: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    output_path: str | None = None
    output_mime: str | None = None
    # How many files the job produced (N images: N files; see jobs.output_file). Media area.
    output_count: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline_at: datetime
    updated_at: datetime


# ------------------------------------------------------------- subscriptions


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    ENDED = "ended"


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (
        # What the renewal scheduler scans: due local subscriptions, by date.
        Index("ix_subscription_due", "gateway", "status", "current_period_end"),
        Index("ix_subscription_retry", "gateway", "status", "next_retry_at"),
        # At most one live (not ended) subscription per account: a double
        # checkout cannot leave an account with two plans.
        Index(
            "uq_subscription_live_account",
            "account_id",
            unique=True,
            sqlite_where=text("status != 'ended'"),
            postgresql_where=text("status != 'ended'"),
        ),
    )
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    plan_key: str = Field(max_length=32)
    status: str = Field(default=SubscriptionStatus.ACTIVE, max_length=16, index=True)
    gateway: str = Field(default="local", max_length=16)
    gateway_subscription_id: str | None = Field(default=None, max_length=128, index=True)
    # Day of the month renewals fall on (1..31); the 31st becomes the last day
    # of shorter months and returns to the 31st after.
    anchor_day: int
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool = False
    failed_attempts: int = 0
    next_retry_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None = None


class PaymentMethod(SQLModel, table=True):
    """A saved card: brand, last 4 and expiry only. Never the number or CVC."""

    __tablename__ = "payment_method"
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    gateway: str = Field(default="local", max_length=16)
    gateway_ref: str = Field(max_length=128)
    brand: str = Field(max_length=32)
    last4: str = Field(max_length=4)
    exp_month: int
    exp_year: int
    is_default: bool = True
    created_at: datetime
    # Replaced cards are kept (old invoices name them) but no longer charged.
    removed_at: datetime | None = None


class InvoiceStatus(StrEnum):
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"


class Invoice(SQLModel, table=True):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("account_id", "number", name="uq_invoice_account_number"),
        UniqueConstraint("account_id", "seq", name="uq_invoice_account_seq"),
        # The staff overview reads a date range across accounts.
        Index("ix_invoice_created_at", "created_at"),
    )
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    subscription_id: int | None = Field(default=None, index=True)
    # Per-account sequence behind the number (WR-<account>-<seq>). Only paid
    # (and later refunded) invoices are numbered; a failed payment attempt keeps
    # its row for Payment History but takes no number, so numbers stay gapless.
    seq: int | None = None
    number: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=16)  # activation, renewal, upgrade, downgrade
    status: str = Field(max_length=16)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="usd", max_length=3)
    card_brand: str | None = Field(default=None, max_length=32)
    card_last4: str | None = Field(default=None, max_length=4)
    period_start: datetime | None = None
    period_end: datetime | None = None
    failure_reason: str | None = None
    failure_code: str | None = Field(default=None, max_length=64)
    plan_key: str | None = Field(default=None, max_length=32)
    gateway: str = Field(default="local", max_length=16)
    gateway_ref: str | None = Field(default=None, max_length=128, index=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    created_at: datetime


class InvoiceLine(SQLModel, table=True):
    __tablename__ = "invoice_line"
    id: int = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    description: str
    quantity: int = 1
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class OutboxEmail(SQLModel, table=True):
    """Emails are written here in the same transaction as what caused them and
    sent later, so an SMTP outage delays a receipt but never loses it."""

    __tablename__ = "outbox_email"
    id: int = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, index=True)
    to_address: str
    subject: str
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    attachment_name: str | None = None
    attachment: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    dedupe_key: str = Field(unique=True, max_length=200)
    # A receipt's PDF is rendered from this (immutable) invoice when the email
    # is sent, so a renewal transaction does not spend time drawing a PDF.
    invoice_id: int | None = Field(default=None, index=True)
    status: str = Field(default="pending", max_length=16, index=True)  # pending, sending, sent
    attempts: int = 0
    claimed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class LocalCard(SQLModel, table=True):
    """The local test-mode gateway's card vault: what a token stands for.

    Never the number or CVC: only what a saved card shows plus the test
    behaviour its number selected (e.g. "decline on charge")."""

    __tablename__ = "local_card"
    token: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="account.id", index=True)
    brand: str = Field(max_length=32)
    last4: str = Field(max_length=4)
    exp_month: int
    exp_year: int
    behaviour: str = Field(default="ok", max_length=32)
    created_at: datetime


class LocalCharge(SQLModel, table=True):
    """A charge taken by the local test-mode gateway; the idempotency key makes
    a repeated request return the first answer instead of charging again."""

    __tablename__ = "local_charge"
    id: int = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    account_id: int = Field(foreign_key="account.id", index=True)
    card_token: str = Field(max_length=64)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    description: str = ""
    ok: bool
    gateway_ref: str = Field(max_length=64, unique=True)
    failure_code: str | None = Field(default=None, max_length=64)
    failure_reason: str | None = None
    refunded_at: datetime | None = None
    created_at: datetime


class WebhookEvent(SQLModel, table=True):
    """Every webhook delivery we accepted, stored raw with its outcome."""

    __tablename__ = "webhook_event"
    id: str = Field(primary_key=True, max_length=128)
    type: str = Field(max_length=128)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime
    processed_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=32)  # processed, ignored, failed
    error: str | None = None


class AppSetting(SQLModel, table=True):
    """Small key/value settings shared by the app, the worker and the CLI
    (for example the demo clock offset)."""

    __tablename__ = "app_setting"
    key: str = Field(primary_key=True, max_length=64)
    value: str


# ------------------------------------------------------------ staff operations


class StaffAudit(SQLModel, table=True):
    """One staff action: who, when, what, on which account, why, and what came
    of it. Append-only like the ledger (triggers in alembic 0007_staff)."""

    __tablename__ = "staff_audit"
    __table_args__ = (Index("ix_staff_audit_account_id", "account_id", "id"),)
    id: int = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, index=True)
    # Copied at the time: a later role change must not rewrite the trail.
    actor_email: str = Field(max_length=254)
    actor_role: str = Field(max_length=16)
    action: str = Field(max_length=48, index=True)
    account_id: int | None = None
    # What the action was about besides the account: "invoice:12", "webhook:evt_1", ...
    target: str | None = Field(default=None, max_length=160)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: str = Field(max_length=16)  # done, repeat, refused, failed
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    request_key: str | None = Field(default=None, max_length=200)
    created_at: datetime


class InvoiceRefund(SQLModel, table=True):
    """Money given back on a paid invoice (all of it or part). Rows from staff
    start 'pending' before the gateway is asked and become 'succeeded' or
    'failed'; refunds made in Stripe's dashboard arrive with charge.refunded."""

    __tablename__ = "invoice_refund"
    id: int = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="usd", max_length=3)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    actor_id: int | None = None
    origin: str = Field(default="staff", max_length=16)  # staff, stripe
    status: str = Field(default="pending", max_length=16, index=True)  # pending, succeeded, failed
    gateway: str = Field(default="local", max_length=16)
    gateway_ref: str | None = Field(default=None, max_length=128, index=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    credits_removed: int = 0
    error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class PaymentDispute(SQLModel, table=True):
    """A Stripe dispute (chargeback) on one of our charges, as Stripe last said."""

    __tablename__ = "payment_dispute"
    id: str = Field(primary_key=True, max_length=128)
    account_id: int | None = Field(default=None, index=True)
    invoice_id: int | None = Field(default=None, index=True)
    charge_id: str = Field(max_length=128)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="usd", max_length=3)
    reason: str = Field(default="", max_length=64)
    status: str = Field(max_length=32)
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None


# ------------------------------------------------- credits users can plan with


class AlertKind(StrEnum):
    LOW_BALANCE = "low_balance"
    CREDITS_EXPIRING = "credits_expiring"
    PAYMENT_FAILED = "payment_failed"
    PLAN_ENDED = "plan_ended"
    AUTO_TOP_UP = "auto_top_up"  # a top-up was bought, or was turned off by a decline


class AlertSettings(SQLModel, table=True):
    """What a user chose about alerts and auto top-up. No row: the defaults."""

    __tablename__ = "alert_settings"
    account_id: int = Field(foreign_key="account.id", primary_key=True)
    # Below this balance the low-balance alert fires; None: 10% of the plan's monthly credits.
    low_balance_threshold: int | None = None
    # Unsubscribe settings: False stops that alert's emails (the in-app alert stays).
    email_low_balance: bool = True
    email_credits_expiring: bool = True
    email_payment_failed: bool = True
    email_plan_ended: bool = True
    # Auto top-up (opt-in): below top_up_threshold, buy top_up_pack with the
    # saved card, at most top_up_monthly_cap times per calendar month.
    auto_top_up: bool = False
    top_up_threshold: int = 0
    top_up_pack: str | None = Field(default=None, max_length=32)
    top_up_monthly_cap: int = 0
    updated_at: datetime


class AccountAlert(SQLModel, table=True):
    """One alert shown in the app (the badge by the balance counts the unread
    ones); its email, if any, goes through the outbox in the same transaction."""

    __tablename__ = "account_alert"
    __table_args__ = (Index("ix_account_alert_account_id_desc", "account_id", "id"),)
    id: int = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    kind: str = Field(max_length=32)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = Field(default=None, max_length=200)
    # One alert per event (a crossing's debit, an expiry date and window, a failed invoice).
    dedupe_key: str = Field(unique=True, max_length=200)
    created_at: datetime
    # Shown as a toast once (the first page that sees it), then only in the list.
    toasted_at: datetime | None = None
    read_at: datetime | None = None


# ---------------------------------------------------------------- security


class TrialClaim(SQLModel, table=True):
    """One row per confirmed address that received the trial, keyed by its canonical form
    (billing/email_identity.py), so a second account on the same mailbox gets no second trial."""

    __tablename__ = "trial_claim"
    canonical_email: str = Field(primary_key=True, max_length=254)
    account_id: int = Field(foreign_key="account.id", index=True)
    claimed_at: datetime


# --------------------------------------------------------------- live layer


class ChangeLog(SQLModel, table=True):
    """SQLite only: "account N changed" for the other processes on the machine (see
    workroom_app/notifications.py). Written in the changing transaction; pruned by writers.
    On PostgreSQL changes travel as NOTIFY instead and this table stays empty."""

    __tablename__ = "change_log"
    seq: int = Field(default=None, primary_key=True)
    account_id: int
    kinds: str = Field(max_length=200)
    origin: str = Field(default="", max_length=40)


# ------------------------------------------ credits users can plan with, continued


class ReportStatus(StrEnum):
    REFUNDED = "refunded"  # refunded at once (within the month's allowance) or accepted by staff
    PENDING = "pending"  # beyond the allowance: waits for staff
    DECLINED = "declined"  # staff declined, with a note the user sees


class ResultReport(SQLModel, table=True):
    """A user's "this result is broken" report on a finished generation (one per job)."""

    __tablename__ = "result_report"
    id: int = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="generation_job.id", unique=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16, index=True)
    # True: refunded at once as one of the month's first K reports (not a staff decision).
    auto_refunded: bool = False
    refund_entry_id: int | None = None
    staff_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    decided_by: int | None = None
    created_at: datetime
    decided_at: datetime | None = None


# ------------------------------------------ staff overview rollups (closed days)


class StaffRollupDay(SQLModel, table=True):
    """A (series, UTC day) whose figures are summed in staff_rollup: written once,
    in the same transaction as its rows; the primary key makes a second fill of
    the same day fail instead of counting twice (billing/staff_rollups.py)."""

    __tablename__ = "staff_rollup_day"
    series: str = Field(primary_key=True, max_length=24)
    day: str = Field(primary_key=True, max_length=10)
    filled_at: datetime


class StaffRollup(SQLModel, table=True):
    """One figure of a closed day: (series, day, key, bucket) → value. `key` names
    the group (an invoice kind, a ledger action, a feature/model/provider);
    `bucket` a metric or a run time in milliseconds (see billing/staff_rollups.py)."""

    __tablename__ = "staff_rollup"
    __table_args__ = (
        UniqueConstraint("series", "day", "key", "bucket", name="uq_staff_rollup"),
        Index("ix_staff_rollup_read", "series", "day", "key", "bucket", "value"),
    )
    id: int = Field(default=None, primary_key=True)
    series: str = Field(max_length=24)
    day: str = Field(max_length=10)
    key: str = Field(max_length=200)
    bucket: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    value: int = Field(sa_column=Column(BigInteger, nullable=False))


# Unlimited generations stay a live query (their plan is the account's current
# one); this index keeps it to the unlimited jobs of the range.
Index(
    "ix_job_unlimited_created",
    GenerationJob.__table__.c.unlimited,
    GenerationJob.__table__.c.created_at,
)


class PaymentConfirmationStatus(StrEnum):
    PENDING = "pending"  # waiting for the card holder to confirm (3-D Secure)
    PROCESSING = "processing"  # an off-session Stripe payment is under way
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # authentication failed, or the payment was declined
    EXPIRED = "expired"  # not confirmed in time


class PaymentConfirmation(SQLModel, table=True):
    """A payment the card holder must confirm (3-D Secure) before it is taken, or an
    off-session Stripe payment under way. What it pays for (a pack, a plan, a renewal, an
    auto top-up) is applied once, when the payment succeeds (billing/payment_confirmation.py)."""

    __tablename__ = "payment_confirmation"
    __table_args__ = (
        Index("ix_payment_confirmation_open", "status", "expires_at"),
        Index("ix_payment_confirmation_account", "account_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # The unguessable part of the local confirmation page's address.
    token: str = Field(unique=True, max_length=64)
    account_id: int = Field(foreign_key="account.id")
    kind: str = Field(max_length=16)  # activation, upgrade, downgrade, renewal, pack, auto_top_up
    # The payment's idempotency key: the charge's, and the invoice's once it is written.
    charge_key: str = Field(unique=True, max_length=200)
    gateway: str = Field(default="local", max_length=16)
    gateway_ref: str | None = Field(default=None, max_length=128, index=True)
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="usd", max_length=3)
    description: str = Field(default="", max_length=300)
    card_brand: str | None = Field(default=None, max_length=32)
    card_last4: str | None = Field(default=None, max_length=4)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(default=PaymentConfirmationStatus.PENDING.value, max_length=16)
    confirm_url: str | None = Field(default=None, max_length=500)  # Stripe's hosted page
    return_path: str = Field(default="/subscription", max_length=200)
    failure_reason: str | None = None
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None = None
