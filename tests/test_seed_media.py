"""`workroom seed-demo` gives the demo user a real Generate history: job rows with the local
renderer's files, each linked to its seeded ledger debit (and the one refund), idempotently."""

from __future__ import annotations

import json
import wave
from datetime import UTC, datetime

import av
import pytest
from PIL import Image
from sqlmodel import select

from tests.support.pages import GenerateTab
from tests.support.reflex_events import run as run_events
from workroom_app import settings
from workroom_app.billing import accounts, clock
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.db import read_session
from workroom_app.generation import jobs
from workroom_app.models import GenerationJob, JobStatus, LedgerEntry
from workroom_app.seed import DEMO_EMAIL, seed_demo
from workroom_app.state.generate import GenerateState

NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def _media_files() -> list:
    root = settings.get_settings().media_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow  # renders the demo's media
def test_seeded_demo_history_has_real_jobs_linked_to_their_debits(app_db):
    engine = app_db
    with clock.pinned(NOW):
        seed_demo(engine)
        files = _media_files()
        with read_session(engine) as s:
            counts = (
                len(s.exec(select(GenerationJob)).all()),
                len(s.exec(select(LedgerEntry)).all()),
            )
        seed_demo(engine)  # again: nothing changes
    assert _media_files() == files
    with read_session(engine) as s:
        assert (
            len(s.exec(select(GenerationJob)).all()),
            len(s.exec(select(LedgerEntry)).all()),
        ) == counts
        demo = accounts.find_account(s, DEMO_EMAIL)
        demo_jobs = s.exec(select(GenerationJob).where(GenerationJob.account_id == demo.id)).all()
        debits = s.exec(
            select(LedgerEntry).where(
                LedgerEntry.account_id == demo.id, LedgerEntry.action_type == "generation"
            )
        ).all()
        assert len(demo_jobs) >= 10 and len(debits) == len(demo_jobs)
        by_debit = {j.debit_entry_id: j for j in demo_jobs}
        for debit in debits:  # every charge on Usage is a generation in the history, and back
            job = by_debit[debit.id]
            assert (debit.reference_type, debit.reference_id) == ("generation", str(job.id))
            assert -debit.amount == job.cost and debit.feature == job.feature
            assert debit.created_at.replace(tzinfo=None) == job.created_at.replace(tzinfo=None)
        failed = [j for j in demo_jobs if j.status == JobStatus.FAILED]
        assert (
            len(failed) == 1
            and failed[0].refund_entry_id is not None
            and failed[0].output_path is None
        )
        done = [j for j in demo_jobs if j.status == JobStatus.SUCCEEDED]
        assert len(done) == len(demo_jobs) - 1
        assert {j.feature for j in done} == {"image", "video", "voiceover", "lip_sync"}
        for job in done:
            _check_media(job)
        assert check_ledger(s) == []


def _check_media(job: GenerationJob) -> None:
    media_dir = settings.get_settings().media_dir
    paths = [jobs.output_file(job, media_dir, i) for i in range(1, job.output_count + 1)]
    assert all(p is not None and p.is_file() for p in paths), job.id
    params = json.loads(job.params_json)
    if job.feature == "image":
        assert job.output_count == params["count"] and job.output_mime == "image/png"
        for p in paths:
            with Image.open(p) as img:
                assert img.format == "PNG"
    elif job.feature == "voiceover":
        with wave.open(str(paths[0])) as w:
            assert w.getnframes() > 0
    else:
        assert job.output_mime == "video/mp4"
        with av.open(str(paths[0])) as container:
            video = container.streams.video[0]
            assert video.codec_context.name == "h264"
            assert float(video.duration * video.time_base) == params["duration"]
            if job.feature == "lip_sync":  # the seeded speech, muxed in
                assert container.streams.audio[0].codec_context.name == "aac"


@pytest.mark.slow  # renders the demo's media
def test_the_demo_users_generate_page_lists_the_seeded_history(app_db):
    with clock.pinned(NOW):
        seed_demo(app_db)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in(DEMO_EMAIL)
        await tab.send(GenerateState, "load")
        gen = await tab.state(GenerateState)
        # Not "Nothing generated yet": the newest page of the history, with files to open.
        assert len(gen.history) == 10 and gen.history_has_older
        assert any(j.output_urls for j in gen.history)
        assert all(j.status in ("succeeded", "failed") for j in gen.history)

    run_events(GenerateTab, scenario)


def test_a_demo_seeded_before_jobs_existed_gets_its_history_backfilled(app_db):
    # What older seed-demo versions left: Pro plan, "demo:" debits and a refund, no job rows.
    from workroom_app.billing import ledger, subscriptions
    from workroom_app.db import write_session
    from workroom_app.seed import DEMO_LOGINS, backfill_demo_jobs, ensure_account

    with write_session(app_db) as s:
        account, _ = ensure_account(s, DEMO_LOGINS[0])
        card = subscriptions.CardForm("4242 4242 4242 4242", 12, 2030, "123", "Demo")
        assert subscriptions.subscribe(s, account.id, "pro", card=card).ok
        image = ledger.debit(
            s, account.id, 16, feature="image", idempotency_key=f"demo:{account.id}:a"
        )
        video = ledger.debit(
            s, account.id, 75, feature="video", idempotency_key=f"demo:{account.id}:b"
        )
        refund = ledger.refund(s, video.entry_id, idempotency_key=f"demo-refund:{video.entry_id}")
        account_id = account.id
    with write_session(app_db) as s:
        assert backfill_demo_jobs(s, s.get(type(account), account_id)) == 2
    with write_session(app_db) as s:
        assert backfill_demo_jobs(s, s.get(type(account), account_id)) == 0  # idempotent
    with read_session(app_db) as s:
        made = {j.feature: j for j in s.exec(select(GenerationJob)).all()}
        assert (
            made["image"].debit_entry_id == image.entry_id
            and made["image"].status == JobStatus.SUCCEEDED
        )
        assert made["image"].output_count == 2 and made["image"].cost == 16
        assert all(jobs.output_file(made["image"], None, i).is_file() for i in (1, 2))
        assert (
            made["video"].status == JobStatus.FAILED
            and made["video"].refund_entry_id == refund.entry_id
        )
        assert check_ledger(s) == []
