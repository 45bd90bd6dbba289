"""The renewal run: every due local subscription and due retry, in batches (what the
worker's scheduler and `workroom renew --due` call)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from workroom_app.billing import alerts, clock, invoices, receipts
from workroom_app.billing.payments import get_gateway
from workroom_app.billing.payments.gateway import PaymentGateway
from workroom_app.billing.periods import as_utc
from workroom_app.billing.subscriptions.renewal import renew
from workroom_app.db import is_sqlite, read_session, write_session
from workroom_app.models import Subscription, SubscriptionStatus

log = logging.getLogger(__name__)


@dataclass
class RenewReport:
    renewed: int = 0
    failed: int = 0
    ended: int = 0
    errors: dict[int, str] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def processed(self) -> int:
        return self.renewed + self.failed + self.ended


def _due_ids(session: Session, now: datetime, gateway_name: str) -> list[int]:
    # All at once (ints: 100,000 of them is under a megabyte): paging this
    # query with "id > last LIMIT n" made the database re-scan and sort every
    # still-due row for each page, quadratic in the backlog.
    return list(
        session.exec(
            select(Subscription.id)
            .where(
                Subscription.gateway == gateway_name,
                or_(
                    (Subscription.status == SubscriptionStatus.ACTIVE.value)
                    & (Subscription.current_period_end <= now),
                    (Subscription.status == SubscriptionStatus.PAST_DUE.value)
                    & (Subscription.next_retry_at <= now),
                ),
            )
            .order_by(Subscription.id)
        )
    )


def _renew_batch(
    engine: Engine, ids: list[int], now: datetime, gateway: PaymentGateway
) -> RenewReport:
    """One transaction for a batch; each renewal in its own savepoint."""
    report = RenewReport()
    with write_session(engine) as session:
        for sub_id in ids:
            try:
                with session.begin_nested():
                    outcome = renew(session, sub_id, now=now, gateway=gateway)
            except Exception as exc:  # one bad subscription must not stop the others
                invoices.forget_locks(session)
                log.exception("renewal of subscription %s failed", sub_id)
                report.errors[sub_id] = f"{exc.__class__.__name__}: {exc}"
                continue
            if outcome is None:
                continue
            if outcome.plan_ended:
                report.ended += 1
            elif outcome.ok:
                report.renewed += 1
            else:
                report.failed += 1
    return report


def renew_due(
    engine: Engine,
    now: datetime | None = None,
    *,
    batch_size: int = 200,
    gateway: PaymentGateway | None = None,
    max_passes: int = 24,
    workers: int = 1,
) -> RenewReport:
    """Renew every due local subscription and run every due retry.

    What the worker's scheduler and `workroom renew --due` call. Subscriptions
    are taken in id order, `batch_size` per transaction (one commit per batch
    instead of per renewal); each renewal runs in a savepoint, so one that
    errors is rolled back alone and reported. `workers` > 1 runs batches in
    parallel threads on PostgreSQL (batches hold disjoint accounts, so they
    never wait on each other's locks); SQLite has one writer, so it stays
    sequential there. Passes repeat while something was due (after a long
    clock jump one subscription may owe several retries)."""
    started = time.perf_counter()
    now = as_utc(now or clock.now())
    gateway = gateway or get_gateway("local")
    batch_size = max(1, int(batch_size))
    workers = 1 if is_sqlite(engine) else max(1, int(workers))
    report = RenewReport()

    def merge(part: RenewReport) -> int:
        report.renewed += part.renewed
        report.failed += part.failed
        report.ended += part.ended
        report.errors.update(part.errors)
        return part.processed

    def batches() -> Iterator[list[int]]:
        with read_session(engine) as session:
            due = [i for i in _due_ids(session, now, gateway.name) if i not in report.errors]
        for k in range(0, len(due), batch_size):
            yield due[k : k + batch_size]

    for _ in range(max_passes):
        progress = 0
        if workers == 1:
            for ids in batches():
                progress += merge(_renew_batch(engine, ids, now, gateway))
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="renew") as pool:
                pending = []
                for ids in batches():
                    pending.append(pool.submit(_renew_batch, engine, ids, now, gateway))
                    if len(pending) >= 2 * workers:
                        progress += merge(pending.pop(0).result())
                for future in pending:
                    progress += merge(future.result())
        if not progress:
            break
    report.elapsed_seconds = time.perf_counter() - started
    return report


def scheduled_tick(
    engine: Engine, *, send_receipts: bool = True, receipt_limit: int = 100
) -> tuple[RenewReport, receipts.SendReport | None]:
    """One pass of the billing scheduler (the worker calls it every poll, in a
    thread): renew what fell due, run due retries, then send pending receipts
    when SMTP is configured. Returns (RenewReport, SendReport | None)."""
    try:
        # Builds on this package: a top-level import would be a cycle.
        from workroom_app.billing import payment_confirmation  # noqa: PLC0415

        # Unconfirmed payments past their deadline fail first, so the renewals below see it.
        payment_confirmation.expire_due(engine)
    except Exception:  # noqa: BLE001  (must never stop renewals)
        log.exception("expiring payment confirmations failed")
    report = renew_due(engine)
    try:
        alerts.scheduled_scan(engine)  # "N credits expire on DATE", 7 days and 1 day before
    except Exception:  # noqa: BLE001  (alerts must never stop renewals)
        log.exception("expiry alert scan failed")
    sent = receipts.send_pending(engine, receipt_limit) if send_receipts else None
    return report, sent
