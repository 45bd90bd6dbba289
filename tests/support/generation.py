"""Helpers for the generation tests (no tests of its own)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.support.factories import balance  # noqa: F401  (re-exported for these tests)
from workroom_app.billing import ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.models import (
    Account,
    ActionType,
    GenerationJob,
    GrantSource,
    LedgerEntry,
    Subscription,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

IMAGE = {
    "feature": "image",
    "model": "flux_pro",
    "resolution": "2K",
    "count": 2,
    "prompt": "a red fox",
}  # 4*2*2 = 16
VOICE = {
    "feature": "voiceover",
    "model": "standard",
    "text": "Hello there, this is Workroom.",
}  # 1 credit


def make_account(engine: Engine, credits: int = 100, plan: str | None = None) -> int:
    with write_session(engine) as s:
        acct = Account(
            email=f"{uuid.uuid4().hex[:10]}@example.test", password_hash="x", created_at=T0
        )
        s.add(acct)
        s.flush()
        ledger.open_account(s, acct.id)
        if credits:
            ledger.grant(
                s,
                acct.id,
                credits,
                action_type=ActionType.TRIAL_GRANT,
                source=GrantSource.TRIAL,
                idempotency_key=f"test-grant:{acct.id}",
            )
        if plan and plan != "free":
            s.add(
                Subscription(
                    account_id=acct.id,
                    plan_key=plan,
                    anchor_day=T0.day,
                    current_period_start=T0,
                    current_period_end=T0 + timedelta(days=30),
                    created_at=T0,
                    updated_at=T0,
                )
            )
        return acct.id


def submit(
    engine: Engine, acct: int, request: dict, crid: str | None = None, *, provider: str = "local"
) -> GenerationJob:
    with write_session(engine) as s:
        return jobs.submit(
            s, acct, request, client_request_id=crid or uuid.uuid4().hex, provider=provider
        )


def entries(engine: Engine, acct: int) -> list[LedgerEntry]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(LedgerEntry).where(LedgerEntry.account_id == acct).order_by(LedgerEntry.id)
            )
            .scalars()
            .all()
        )


def job_count(engine: Engine, acct: int | None = None) -> int:
    with read_session(engine) as s:
        stmt = select(func.count()).select_from(GenerationJob)
        if acct is not None:
            stmt = stmt.where(GenerationJob.account_id == acct)
        return s.execute(stmt).scalar_one()


def get(engine: Engine, job_id: int) -> GenerationJob:
    with read_session(engine) as s:
        return s.get(GenerationJob, job_id)
