"""Reconciliation: does every payment match its invoice and its credits?

For every successful payment (a paid or refunded invoice, both gateways) it
checks that the invoice granted credits exactly once and that the charge the
gateway took is the invoice's amount; then it looks the other way for credits
granted on no payment and charges with no invoice, for refunds that exceed
the payment or never finished, and for Stripe webhook deliveries that failed
or were never processed.

What "the charge" is, per gateway:
- local: the ``local_charge`` row the invoice's gateway_ref names (it must
  exist, have succeeded, and be for the same amount);
- stripe: the ``amount_paid`` of the Stripe invoice as its ``invoice.paid``
  webhook delivered it (stored raw in ``webhook_event``). A paid Stripe
  invoice with no such delivery is reported too: we cannot vouch for it.

Set-based: a handful of queries over whole tables and dictionaries in Python,
so 100,000 payments take seconds (docs/benchmarks.md). Plain Python; the CLI
(`workroom reconcile`) and the staff page show the same Report.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from workroom_app.billing import audit, clock, formatting, staff
from workroom_app.billing.staff_roles import Permission
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    ActionType,
    Invoice,
    InvoiceRefund,
    InvoiceStatus,
    LedgerEntry,
    LocalCharge,
    WebhookEvent,
)

PAID_STATUSES = (InvoiceStatus.PAID.value, InvoiceStatus.REFUNDED.value)
# Grants that only a payment can cause (trial, refund and staff grants need none).
PAYMENT_GRANTS = (ActionType.SUBSCRIPTION_CREDITS.value, ActionType.MONTHLY_CREDITS.value)
# A staff refund still pending after this long was interrupted.
PENDING_REFUND_GRACE = timedelta(hours=1)
STRIPE_PAID_EVENTS = ("invoice.paid", "invoice.payment_succeeded")

KINDS = {
    "paid_not_granted": "Paid but no credits granted",
    "granted_twice": "Credits granted more than once for one payment",
    "grant_without_payment": "Credits granted without a successful payment",
    "amount_mismatch": "Invoice amount differs from the charge",
    "charge_missing": "Paid invoice without a successful charge",
    "charge_without_invoice": "Charge taken without an invoice",
    "over_refunded": "Refunded more than was paid",
    "refund_pending": "Refund started but never finished",
    "webhook_failed": "Stripe event failed",
    "webhook_unprocessed": "Stripe event never processed",
}


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    account_id: int | None = None
    invoice_id: int | None = None
    ref: str | None = None

    @property
    def label(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass
class Report:
    since: datetime | None
    payments_checked: int = 0
    payments_matched: int = 0
    by_gateway: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def to_json(self) -> str:
        return json.dumps(
            {
                "since": self.since.isoformat() if self.since else None,
                "ok": self.ok,
                "payments_checked": self.payments_checked,
                "payments_matched": self.payments_matched,
                "by_gateway": self.by_gateway,
                "counts": self.counts(),
                "problems": [asdict(p) for p in self.problems],
            },
            sort_keys=True,
        )


def _stripe_paid_amounts(session: Session, since: datetime | None) -> dict[str, int]:
    amounts: dict[str, int] = {}
    stmt = select(WebhookEvent.payload).where(WebhookEvent.type.in_(STRIPE_PAID_EVENTS))
    if since is not None:
        # Deliveries come after the payment: older ones cannot be about it.
        stmt = stmt.where(WebhookEvent.received_at >= since - timedelta(days=1))
    for (payload,) in session.execute(stmt):
        try:
            obj = json.loads(payload)["data"]["object"]
            amounts[str(obj["id"])] = int(obj["amount_paid"])
        except (ValueError, KeyError, TypeError):
            continue
    return amounts


def reconcile(session: Session, *, since: datetime | None = None) -> Report:
    """Check every successful payment since `since` (all when None)."""
    report = Report(since=since)
    now = clock.now()

    inv_stmt = select(
        Invoice.id,
        Invoice.account_id,
        Invoice.number,
        Invoice.status,
        Invoice.amount_cents,
        Invoice.gateway,
        Invoice.gateway_ref,
    )
    if since is not None:
        inv_stmt = inv_stmt.where(Invoice.created_at >= since)
    all_invoices = session.execute(inv_stmt).all()
    invoice_status = {row.id: row.status for row in all_invoices}

    # Grants that name an invoice: how many per invoice.
    grant_stmt = select(
        LedgerEntry.reference_id, LedgerEntry.account_id, LedgerEntry.id, LedgerEntry.action_type
    ).where(LedgerEntry.reference_type == "invoice", LedgerEntry.amount > 0)
    if since is not None:
        grant_stmt = grant_stmt.where(LedgerEntry.created_at >= since)
    grants: dict[int, list[int]] = defaultdict(list)
    for ref, account_id, entry_id, action in session.execute(grant_stmt):
        invoice_id = int(ref) if ref and ref.isdigit() else None
        if invoice_id is None:
            report.problems.append(
                Problem(
                    "grant_without_payment",
                    f"ledger row {entry_id} names invoice {ref!r}",
                    account_id,
                    None,
                    f"ledger:{entry_id}",
                )
            )
            continue
        grants[invoice_id].append(entry_id)
        status = invoice_status.get(invoice_id)
        if status is None and since is not None:
            status = session.execute(
                select(Invoice.status).where(Invoice.id == invoice_id)
            ).scalar()
        if status not in PAID_STATUSES:
            why = "does not exist" if status is None else f"is {status}"
            report.problems.append(
                Problem(
                    "grant_without_payment",
                    f"ledger row {entry_id} ({action}) grants for invoice {invoice_id}, which {why}",
                    account_id,
                    invoice_id,
                    f"ledger:{entry_id}",
                )
            )

    # Plan grants that name no invoice at all.
    orphan_stmt = select(LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.action_type).where(
        LedgerEntry.action_type.in_(PAYMENT_GRANTS),
        LedgerEntry.amount > 0,
        or_(LedgerEntry.reference_type.is_(None), LedgerEntry.reference_type != "invoice"),
    )
    if since is not None:
        orphan_stmt = orphan_stmt.where(LedgerEntry.created_at >= since)
    for entry_id, account_id, action in session.execute(orphan_stmt):
        report.problems.append(
            Problem(
                "grant_without_payment",
                f"ledger row {entry_id} ({action}) names no invoice",
                account_id,
                None,
                f"ledger:{entry_id}",
            )
        )

    charges = {
        ref: (ok, amount, account_id)
        for ref, ok, amount, account_id in session.execute(
            select(
                LocalCharge.gateway_ref,
                LocalCharge.ok,
                LocalCharge.amount_cents,
                LocalCharge.account_id,
            ).where(*([LocalCharge.created_at >= since] if since is not None else []))
        )
    }
    stripe_paid = _stripe_paid_amounts(session, since)
    refunds: dict[int, int] = {
        invoice_id: int(total)
        for invoice_id, total in session.execute(
            select(InvoiceRefund.invoice_id, func.sum(InvoiceRefund.amount_cents))
            .where(InvoiceRefund.status == "succeeded")
            .group_by(InvoiceRefund.invoice_id)
        )
    }

    invoiced_refs: set[str] = set()
    for inv in all_invoices:
        if inv.gateway == "local" and inv.gateway_ref:
            invoiced_refs.add(inv.gateway_ref)
        if inv.status not in PAID_STATUSES:
            continue
        report.payments_checked += 1
        report.by_gateway[inv.gateway] = report.by_gateway.get(inv.gateway, 0) + 1
        found = []
        granted = grants.get(inv.id, [])
        if not granted:
            found.append(
                Problem(
                    "paid_not_granted",
                    f"{inv.number} was paid but granted no credits",
                    inv.account_id,
                    inv.id,
                    inv.number,
                )
            )
        elif len(granted) > 1:
            found.append(
                Problem(
                    "granted_twice",
                    f"{inv.number} granted credits {len(granted)} times (ledger rows {', '.join(map(str, granted))})",
                    inv.account_id,
                    inv.id,
                    inv.number,
                )
            )
        if inv.gateway == "local":
            charge = charges.get(inv.gateway_ref or "")
            if charge is None or not charge[0]:
                found.append(
                    Problem(
                        "charge_missing",
                        f"{inv.number}: no successful local charge {inv.gateway_ref!r}",
                        inv.account_id,
                        inv.id,
                        inv.number,
                    )
                )
            elif charge[1] != inv.amount_cents:
                found.append(
                    Problem(
                        "amount_mismatch",
                        f"{inv.number}: invoice {inv.amount_cents} cents, charge {charge[1]} cents",
                        inv.account_id,
                        inv.id,
                        inv.number,
                    )
                )
        elif inv.gateway == "stripe":
            paid = stripe_paid.get(inv.gateway_ref or "")
            if paid is None:
                found.append(
                    Problem(
                        "charge_missing",
                        f"{inv.number}: no invoice.paid from Stripe for {inv.gateway_ref}",
                        inv.account_id,
                        inv.id,
                        inv.number,
                    )
                )
            elif paid != inv.amount_cents:
                found.append(
                    Problem(
                        "amount_mismatch",
                        f"{inv.number}: invoice {inv.amount_cents} cents, Stripe collected {paid} cents",
                        inv.account_id,
                        inv.id,
                        inv.number,
                    )
                )
        refunded = refunds.get(inv.id, 0)
        if refunded > inv.amount_cents:
            found.append(
                Problem(
                    "over_refunded",
                    f"{inv.number}: refunded {refunded} of {inv.amount_cents} cents",
                    inv.account_id,
                    inv.id,
                    inv.number,
                )
            )
        if not found:
            report.payments_matched += 1
        report.problems.extend(found)

    # Money taken with no invoice to show for it (local gateway).
    if since is None or charges:
        for ref, (ok, amount, account_id) in charges.items():
            if ok and ref not in invoiced_refs:
                exists = (
                    since is not None
                    and session.execute(
                        select(Invoice.id).where(Invoice.gateway_ref == ref)
                    ).first()
                )
                if not exists:
                    report.problems.append(
                        Problem(
                            "charge_without_invoice",
                            f"local charge {ref} of {amount} cents has no invoice",
                            account_id,
                            None,
                            ref,
                        )
                    )

    stale = now - PENDING_REFUND_GRACE
    for rid, account_id, invoice_id, created_at in session.execute(
        select(
            InvoiceRefund.id,
            InvoiceRefund.account_id,
            InvoiceRefund.invoice_id,
            InvoiceRefund.created_at,
        ).where(InvoiceRefund.status == "pending")
    ):
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=now.tzinfo)
        if created < stale:
            report.problems.append(
                Problem(
                    "refund_pending",
                    f"refund {rid} pending since {formatting.format_stamp(created)}",
                    account_id,
                    invoice_id,
                    f"refund:{rid}",
                )
            )

    ev_stmt = select(
        WebhookEvent.id, WebhookEvent.type, WebhookEvent.outcome, WebhookEvent.error
    ).where(
        or_(
            WebhookEvent.outcome == "failed",
            WebhookEvent.outcome.is_(None),
            WebhookEvent.processed_at.is_(None),
        )
    )
    if since is not None:
        ev_stmt = ev_stmt.where(WebhookEvent.received_at >= since)
    for event_id, event_type, outcome, error in session.execute(ev_stmt):
        kind = "webhook_failed" if outcome == "failed" else "webhook_unprocessed"
        report.problems.append(
            Problem(
                kind, f"{event_type} {event_id}: {error or 'not processed'}", None, None, event_id
            )
        )
    return report


def render_text(report: Report) -> str:
    lines = [
        f"Payments checked: {report.payments_checked:,} "
        f"({', '.join(f'{g} {n:,}' for g, n in sorted(report.by_gateway.items())) or 'none'}); "
        f"matched: {report.payments_matched:,}; problems: {len(report.problems):,}"
    ]
    for kind, count in sorted(report.counts().items()):
        lines.append(f"  {KINDS.get(kind, kind)}: {count:,}")
    for p in report.problems[:200]:
        lines.append(f"- [{p.kind}] {p.detail}")
    if len(report.problems) > 200:
        lines.append(f"... and {len(report.problems) - 200:,} more (use --json)")
    return "\n".join(lines)


def run_for_staff(engine: Engine, actor_id: int, *, since: datetime | None = None) -> Report:
    """The staff page's run: finance or admin only, recorded in the audit trail."""
    with read_session(engine) as session:
        staff.require_staff(session, actor_id, Permission.RECONCILE)
        report = reconcile(session, since=since)
    with write_session(engine) as session:
        actor = staff.require_staff(session, actor_id, Permission.RECONCILE)
        audit.record(
            session,
            actor,
            audit.RECONCILE,
            result=audit.DONE,
            detail=f"{report.payments_checked:,} payments checked, {len(report.problems):,} problems",
        )
    return report
