"""The reconciliation on the staff accounts dashboard (finance and admin;
billing/reconcile.py, the same report as `workroom reconcile`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import reflex as rx

from workroom_app import db
from workroom_app.billing import audit, reconcile
from workroom_app.billing.staff import StaffError
from workroom_app.billing.staff_roles import Permission
from workroom_app.state.staff_base import StaffBase, form_field

SINCE_FORMAT = "Enter the start date as YYYY-MM-DD, or leave it empty for all payments."


class StaffReconcile(StaffBase, mixin=True):
    recon_summary: str = ""
    recon_counts: list[dict[str, str]] = []
    recon_problems: list[dict[str, str]] = []

    async def run_reconciliation(self, form_data: dict):
        """Finance and admin: match every payment with its grant and charge."""
        actor = await self._actor()
        if actor is None:
            return self._refusal()
        refused = await self._not_permitted(actor, Permission.RECONCILE, audit.RECONCILE, None)
        if refused is not None:
            return refused
        since = None
        try:
            text = form_field(form_data, "since").strip()
            if text:
                since = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except (StaffError, ValueError):
            return rx.toast.error(SINCE_FORMAT)
        try:
            report = await asyncio.to_thread(
                reconcile.run_for_staff, db.get_engine(), actor, since=since
            )
        except StaffError as exc:
            return rx.toast.error(str(exc))
        self.recon_summary = (
            f"{report.payments_checked:,} payments checked, {report.payments_matched:,} matched, "
            f"{len(report.problems):,} problems."
        )
        self.recon_counts = [
            {"label": reconcile.KINDS.get(kind, kind), "count": f"{count:,}"}
            for kind, count in sorted(report.counts().items())
        ]
        self.recon_problems = [
            {"label": p.label, "detail": p.detail, "account": str(p.account_id or "")}
            for p in report.problems[:100]
        ]
        return rx.toast.success("Reconciliation finished: nothing wrong.") if report.ok else None
