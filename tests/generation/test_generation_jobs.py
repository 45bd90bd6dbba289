"""The generation life cycle (PRODUCT_RULES §2-§4), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.concurrency import at_once, exceptions
from tests.support.generation import (
    IMAGE,
    T0,
    VOICE,
    balance,
    entries,
    get,
    job_count,
    make_account,
    submit,
)
from workroom_app.billing import catalog, clock, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs
from workroom_app.generation.errors import (
    CannotCancel,
    GenerationError,
    InvalidRequest,
    JobNotFound,
    NotEnoughCredits,
    PriceChanged,
    TooManyRunning,
)
from workroom_app.models import ActionType, JobStatus


@pytest.fixture(autouse=True)
def _pin_clock():
    with clock.pinned(T0):
        yield


def _claim(engine, job_id, worker="w1"):
    with write_session(engine) as s:
        return jobs.claim(s, job_id, worker, lease_seconds=30)


def _fail(engine, job_id, status=JobStatus.FAILED, error="boom"):
    with write_session(engine) as s:
        return jobs.fail(s, job_id, status, error)


# ------------------------------------------------------------------ submit


def test_debit_at_start_equals_the_server_quote(engine):
    acct = make_account(engine, 100)
    expected = catalog.quote(IMAGE, "free").cost
    assert expected == 16
    job = submit(engine, acct, {**IMAGE, "cost": 1, "price": 0})  # a browser's price is ignored
    assert job.status == JobStatus.QUEUED and job.cost == 16 and not job.unlimited
    assert balance(engine, acct) == 100 - 16
    debit = entries(engine, acct)[-1]
    assert debit.id == job.debit_entry_id
    assert (debit.amount, debit.action_type, debit.feature) == (-16, ActionType.GENERATION, "image")
    assert debit.reference_type == "generation" and debit.reference_id == str(job.id)
    assert debit.idempotency_key == f"gen:{acct}:{job.client_request_id}"
    assert jobs.params(job)["prompt"] == "a red fox"
    assert job.deadline_at - job.created_at == timedelta(seconds=jobs.DEADLINE_SECONDS["image"])


def test_same_client_request_id_twice_returns_the_first_job_and_charges_once(engine):
    acct = make_account(engine, 100)
    first = submit(engine, acct, IMAGE, "req-1")
    again = submit(engine, acct, IMAGE, "req-1")
    assert again.id == first.id
    assert balance(engine, acct) == 84
    assert job_count(engine, acct) == 1
    assert len([e for e in entries(engine, acct) if e.action_type == ActionType.GENERATION]) == 1


def test_a_price_the_user_was_not_shown_charges_nothing(engine):
    acct = make_account(engine, 100)
    with write_session(engine) as s, pytest.raises(PriceChanged) as err:
        jobs.submit(s, acct, IMAGE, client_request_id="seen-15", shown_cost=15)
    assert str(err.value).startswith("The price changed: this generation now costs 16 credits.")
    assert job_count(engine, acct) == 0 and balance(engine, acct) == 100
    with write_session(engine) as s:
        job = jobs.submit(s, acct, IMAGE, client_request_id="seen-16", shown_cost=16)
    assert job.cost == 16 and balance(engine, acct) == 84


def test_a_retried_submission_finds_its_job_before_any_price_check(engine):
    # The first try was accepted at 16; its retry (a double click) returns that job, charged
    # once, even when the price it carries is no longer the price.
    acct = make_account(engine, 100)
    with write_session(engine) as s:
        first = jobs.submit(s, acct, IMAGE, client_request_id="twice", shown_cost=16)
    with write_session(engine) as s:
        again = jobs.submit(s, acct, IMAGE, client_request_id="twice", shown_cost=3)
    assert again.id == first.id
    assert job_count(engine, acct) == 1 and balance(engine, acct) == 84


def test_insufficient_credits_writes_nothing(engine):
    acct = make_account(engine, 10)
    with pytest.raises(NotEnoughCredits) as err:
        submit(engine, acct, IMAGE)
    assert (err.value.needed, err.value.available, err.value.missing) == (16, 10, 6)
    assert "6 more" in str(err.value)
    assert job_count(engine, acct) == 0
    assert balance(engine, acct) == 10 and len(entries(engine, acct)) == 1


def test_refused_debit_leaves_no_job_even_if_the_caller_commits(engine):
    acct = make_account(engine, 10)
    with write_session(engine) as s, pytest.raises(NotEnoughCredits):
        jobs.submit(s, acct, IMAGE, client_request_id="x1")
        # the caller swallowed the error; its transaction commits
    assert job_count(engine, acct) == 0


@pytest.mark.parametrize(("plan", "limit"), [("free", 1), ("starter", 2)])
def test_concurrency_limit_per_plan(engine, plan, limit):
    acct = make_account(engine, 500, plan=plan)
    started = [submit(engine, acct, VOICE) for _ in range(limit)]
    before = balance(engine, acct)
    with pytest.raises(TooManyRunning) as err:
        submit(engine, acct, VOICE)
    assert f"runs {limit} generation" in str(err.value)
    assert balance(engine, acct) == before and job_count(engine, acct) == limit
    # a finished job frees its slot; running ones still count
    _claim(engine, started[0].id)
    with pytest.raises(TooManyRunning):
        submit(engine, acct, VOICE)
    with write_session(engine) as s:
        jobs.succeed(s, started[0].id, "x.wav", "audio/wav")
    assert submit(engine, acct, VOICE).status == JobStatus.QUEUED


def test_concurrent_submits_cannot_pass_the_limit_together(engine):
    acct = make_account(engine, 500, plan="free")
    results = at_once(4, lambda i: submit(engine, acct, VOICE, f"c{i}"))
    # Each either got a job or was refused with the limit; nothing else went wrong.
    assert all(not isinstance(r, Exception) or isinstance(r, GenerationError) for r in results)
    assert job_count(engine, acct) == 1
    assert sum(isinstance(r, TooManyRunning) for r in results) == 3
    assert balance(engine, acct) == 499


def test_unlimited_job_costs_nothing_writes_no_ledger_row_but_is_recorded(engine):
    acct = make_account(engine, 100, plan="pro")
    rows = len(entries(engine, acct))
    job = submit(engine, acct, {**IMAGE, "model": "flux_schnell"})
    assert job.unlimited and job.cost == 0 and job.debit_entry_id is None
    assert len(entries(engine, acct)) == rows and balance(engine, acct) == 100
    with read_session(engine) as s:
        assert [j.id for j in jobs.list_jobs(s, acct)] == [job.id]
    # its failure refunds nothing, and nothing breaks
    _fail(engine, job.id)
    assert len(entries(engine, acct)) == rows and get(engine, job.id).refund_entry_id is None


def test_unlimited_job_still_counts_towards_the_concurrency_limit(engine):
    acct = make_account(engine, 100, plan="pro")
    for _ in range(4):
        submit(engine, acct, {**IMAGE, "model": "flux_schnell"})
    with pytest.raises(TooManyRunning):
        submit(engine, acct, {**IMAGE, "model": "flux_schnell"})


BAD_REQUESTS = [
    ({**IMAGE, "model": "dall-e-9"}, "model"),
    (
        {
            "feature": "video",
            "model": "kling21",
            "resolution": "720p",
            "duration": -5,
            "prompt": "x",
        },
        "duration",
    ),
    (
        {
            "feature": "video",
            "model": "kling21",
            "resolution": "720p",
            "duration": 10**9,
            "prompt": "x",
        },
        "duration",
    ),
    (
        {
            "feature": "video",
            "model": "kling21",
            "resolution": "720p",
            "duration": "ten",
            "prompt": "x",
        },
        "duration",
    ),
    ({**IMAGE, "count": "2; DROP TABLE"}, "count"),
    ({**IMAGE, "count": True}, "count"),
    ({**IMAGE, "resolution": "16K"}, "resolution"),
    ({**IMAGE, "prompt": ""}, "prompt"),
    ({**IMAGE, "prompt": 42}, "prompt"),
    ({**IMAGE, "prompt": "x" * 5000}, "prompt"),
    ({"feature": "hologram", "model": "x"}, "feature"),
    ({"feature": "voiceover", "model": "standard", "text": "x" * 5001}, "text"),
    (
        {
            "feature": "video",
            "model": "kling21",
            "resolution": "1080p",
            "duration": 5,
            "prompt": "x",
        },
        "resolution",
    ),
    ("image please", None),
    (None, None),
]


def _assert_refused_and_nothing_written(engine, acct, request_, field):
    rows = len(entries(engine, acct))
    with pytest.raises(GenerationError) as err:
        submit(engine, acct, request_)
    assert str(err.value) and "Traceback" not in str(err.value)
    # The form field to mark, when the request names one; else none.
    assert getattr(err.value, "field", None) == field
    assert job_count(engine) == 0
    assert len(entries(engine, acct)) == rows and balance(engine, acct) == 10_000


@pytest.mark.parametrize(("request_", "field"), BAD_REQUESTS)
def test_bad_request_gets_a_clear_error_and_writes_nothing(sqlite_engine, request_, field):
    acct = make_account(sqlite_engine, 10_000)
    _assert_refused_and_nothing_written(sqlite_engine, acct, request_, field)


def test_bad_requests_write_nothing_on_postgres(pg_engine):
    # the same cases in one database: a fresh PostgreSQL database per case is slow
    acct = make_account(pg_engine, 10_000)
    for request_, field in BAD_REQUESTS:
        _assert_refused_and_nothing_written(pg_engine, acct, request_, field)


def test_plan_limit_error_names_the_plan_that_unlocks_it(engine):
    acct = make_account(engine, 1000)
    with pytest.raises(InvalidRequest) as err:
        submit(
            engine,
            acct,
            {
                "feature": "video",
                "model": "kling21",
                "resolution": "1080p",
                "duration": 5,
                "prompt": "x",
            },
        )
    assert err.value.required_plan == "starter"
    assert "Starter" in str(err.value)


def test_malformed_client_request_id_is_refused(engine):
    acct = make_account(engine, 100)
    for bad in ("", None, 5, "x" * 65, "a b"):
        with pytest.raises(InvalidRequest):
            submit(engine, acct, IMAGE, bad) if bad else _submit_raw(engine, acct, bad)
    assert job_count(engine) == 0


def _submit_raw(engine, acct, crid):
    with write_session(engine) as s:
        return jobs.submit(s, acct, IMAGE, client_request_id=crid)


# ------------------------------------------------------------------ failure and refund


def test_failure_refunds_the_same_amount_once_even_when_reported_twice(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _claim(engine, job.id)
    first = _fail(engine, job.id, JobStatus.FAILED, "provider crashed")
    second = _fail(engine, job.id, JobStatus.REJECTED, "again")
    assert first.status == second.status == JobStatus.FAILED
    assert second.error == "provider crashed"
    refunds = [e for e in entries(engine, acct) if e.action_type == ActionType.REFUND]
    assert len(refunds) == 1 and refunds[0].amount == 16 and refunds[0].id == first.refund_entry_id
    assert refunds[0].idempotency_key == f"refund:gen:{job.id}"
    assert balance(engine, acct) == 100


def test_failure_reported_concurrently_refunds_once(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _claim(engine, job.id)
    errors = exceptions(at_once(4, lambda _i: _fail(engine, job.id, JobStatus.FAILED, "x")))
    assert errors == []
    assert len([e for e in entries(engine, acct) if e.action_type == ActionType.REFUND]) == 1
    assert balance(engine, acct) == 100


def test_refund_written_before_a_crash_is_not_written_again(engine):
    """If a refund reached the ledger but the job row did not record it, the key
    makes the next report reuse it instead of refunding twice."""
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    with write_session(engine) as s:
        earlier = ledger.refund(s, job.debit_entry_id, idempotency_key=f"refund:gen:{job.id}")
    ended = _fail(engine, job.id)
    assert ended.refund_entry_id == earlier.entry_id
    assert len([e for e in entries(engine, acct) if e.action_type == ActionType.REFUND]) == 1
    assert balance(engine, acct) == 100


def test_fail_after_success_changes_nothing(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _claim(engine, job.id)
    with write_session(engine) as s:
        jobs.succeed(s, job.id, f"{acct}/{job.id}.png", "image/png")
    assert _fail(engine, job.id).status == JobStatus.SUCCEEDED
    assert balance(engine, acct) == 84


def test_success_after_timeout_keeps_the_timeout(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _fail(engine, job.id, JobStatus.TIMED_OUT, "late")
    with write_session(engine) as s:
        assert jobs.succeed(s, job.id, "x.png", "image/png").status == JobStatus.TIMED_OUT
    assert balance(engine, acct) == 100


def test_fail_takes_only_failure_statuses(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    with pytest.raises(ValueError):
        _fail(engine, job.id, JobStatus.SUCCEEDED)


# ------------------------------------------------------------------ sweep


def test_sweep_times_out_jobs_past_their_deadline_and_refunds_once(engine):
    acct = make_account(engine, 100)
    queued = submit(engine, acct, VOICE)
    with write_session(engine) as s:
        assert jobs.sweep(s) == []
    later = T0 + timedelta(seconds=jobs.DEADLINE_SECONDS["voiceover"] + 1)
    with clock.pinned(later), write_session(engine) as s:
        stopped = jobs.sweep(s, later)
    assert [j.id for j in stopped] == [queued.id]
    job = get(engine, queued.id)
    assert job.status == JobStatus.TIMED_OUT and job.refund_entry_id is not None
    assert balance(engine, acct) == 100
    with write_session(engine) as s:
        assert jobs.sweep(s, later + timedelta(hours=1)) == []
    assert len([e for e in entries(engine, acct) if e.action_type == ActionType.REFUND]) == 1


def test_sweep_stops_running_jobs_too(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, VOICE)
    _claim(engine, job.id)
    later = T0 + timedelta(hours=2)
    with clock.pinned(later), write_session(engine) as s:
        assert [j.id for j in jobs.sweep(s)] == [job.id]
    assert get(engine, job.id).status == JobStatus.TIMED_OUT


# ------------------------------------------------------------------ cancel / ownership


def test_cancel_a_queued_job_refunds_it(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    with write_session(engine) as s:
        cancelled = jobs.cancel(s, acct, job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert balance(engine, acct) == 100
    with write_session(engine) as s, pytest.raises(CannotCancel):
        jobs.cancel(s, acct, job.id)
    assert balance(engine, acct) == 100


def test_a_running_job_cannot_be_cancelled(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _claim(engine, job.id)
    with write_session(engine) as s, pytest.raises(CannotCancel) as err:
        jobs.cancel(s, acct, job.id)
    assert "already started" in str(err.value)
    assert get(engine, job.id).status == JobStatus.RUNNING and balance(engine, acct) == 84


BAD_IDS = ["other", 999_999, -1, 0, "abc", None, True, 1.5, [1], "1 OR 1=1"]


def test_another_users_job_or_a_bad_id_is_not_found_and_nothing_changes(engine):
    owner = make_account(engine, 100)
    intruder = make_account(engine, 100)
    job = submit(engine, owner, IMAGE)
    for bad_id in BAD_IDS:
        target = job.id if bad_id == "other" else bad_id
        with write_session(engine) as s, pytest.raises(JobNotFound) as err:
            jobs.cancel(s, intruder, target)
        assert str(err.value) == "That generation was not found.", bad_id
        with read_session(engine) as s, pytest.raises(JobNotFound):
            jobs.get_job(s, intruder, target)
    assert get(engine, job.id).status == JobStatus.QUEUED
    assert balance(engine, owner) == 84 and balance(engine, intruder) == 100
    assert len(entries(engine, owner)) == 2 and len(entries(engine, intruder)) == 1


# ------------------------------------------------------------------ worker-side transitions


def test_only_one_worker_claims_a_job(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    assert _claim(engine, job.id, "w1") is not None
    assert _claim(engine, job.id, "w2") is None
    # after the lease runs out (worker w1 died) another worker may take it over
    with clock.pinned(T0 + timedelta(seconds=31)):
        taken = _claim(engine, job.id, "w2")
    assert taken is not None and taken.worker_id == "w2"


def test_a_cancelled_job_is_not_claimed(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    with write_session(engine) as s:
        jobs.cancel(s, acct, job.id)
    assert _claim(engine, job.id) is None


def test_a_burst_of_jobs_is_claimed_at_once_leaving_out_the_ones_not_claimable(engine):
    accounts_ = [make_account(engine, 100) for _ in range(4)]
    queued = [submit(engine, acct, IMAGE) for acct in accounts_]
    _claim(engine, queued[1].id, "w2")  # another worker was faster
    with write_session(engine) as s:
        jobs.cancel(s, accounts_[2], queued[2].id)
    with write_session(engine) as s:
        taken = jobs.claim_many(s, [j.id for j in queued], "w1", lease_seconds=30)
        assert [j.id for j in taken] == [queued[0].id, queued[3].id]
        assert {j.status for j in taken} == {JobStatus.RUNNING}
        assert {j.worker_id for j in taken} == {"w1"}
        assert all(j.started_at is not None for j in taken)
    with write_session(engine) as s:
        assert jobs.claim_many(s, [j.id for j in queued], "w3", lease_seconds=30) == []
        assert jobs.claim_many(s, [], "w3", lease_seconds=30) == []


def test_progress_only_moves_forward_and_only_for_the_owning_worker(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    _claim(engine, job.id, "w1")
    with write_session(engine) as s:
        assert jobs.report_progress(s, job.id, 40, worker_id="w1")
        assert jobs.report_progress(s, job.id, 20, worker_id="w1")
        assert not jobs.report_progress(s, job.id, 90, worker_id="w2")
        assert jobs.report_progress(s, job.id, 250, worker_id="w1")
    assert get(engine, job.id).progress == 99  # 100 only with the result


def test_a_batch_of_progress_reports_moves_forward_only_for_the_owning_workers_running_jobs(
    engine,
):
    acct = make_account(engine, 1000, plan="studio")
    mine, theirs, ended, behind = (submit(engine, acct, IMAGE) for _ in range(4))
    for job in (mine, ended, behind):
        _claim(engine, job.id, "w1")
    _claim(engine, theirs.id, "w2")
    _fail(engine, ended.id)
    with write_session(engine) as s:
        assert jobs.report_progress(s, behind.id, 60, worker_id="w1")
    with write_session(engine) as s:
        ours = jobs.report_progress_many(
            s,
            [
                (mine.id, acct, 250, None),
                (theirs.id, acct, 50, None),
                (ended.id, acct, 50, None),
                (behind.id, acct, 30, 60),
            ],
            worker_id="w1",
            lease_seconds=30,
        )
        changed = dict(s.info.get("workroom.changes", {}))
    assert ours == {mine.id, behind.id}
    assert get(engine, mine.id).progress == 99  # 100 only with the result
    assert get(engine, behind.id).progress == 60  # never goes back
    assert get(engine, theirs.id).progress == 0 and get(engine, theirs.id).worker_id == "w2"
    assert get(engine, mine.id).lease_until.replace(tzinfo=None) == (
        T0 + timedelta(seconds=30)
    ).replace(tzinfo=None)
    assert changed == {acct: {"job"}}  # the owner hears of the job that moved


def test_list_jobs_pages_newest_first(engine):
    acct = make_account(engine, 1000, plan="studio")
    ids = [submit(engine, acct, VOICE).id for _ in range(5)]
    with read_session(engine) as s:
        first = jobs.list_jobs(s, acct, limit=2)
        second = jobs.list_jobs(s, acct, limit=2, before_id=first[-1].id)
        assert [j.id for j in first + second] == ids[::-1][:4]
        assert jobs.get_job(s, acct, ids[0]).id == ids[0]
        assert jobs.get_job(s, acct, str(ids[0])).id == ids[0]


def test_describe_reports_the_refund_for_the_failure_toast(engine):
    acct = make_account(engine, 100)
    job = submit(engine, acct, IMAGE)
    assert jobs.describe(job)["refunded"] == 0 and jobs.describe(job)["active"]
    failed = _fail(engine, job.id, JobStatus.FAILED, "x")
    info = jobs.describe(failed)
    assert (info["status"], info["status_label"], info["cost"], info["refunded"]) == (
        "failed",
        "Failed",
        16,
        16,
    )
    assert info["prompt"] == "a red fox" and not info["active"]


def test_worker_command_is_registered():
    from workroom_app.cli.main import build_parser
    from workroom_app.generation.cli import _cmd_worker

    args = build_parser().parse_args(["worker", "--once", "--poll-interval", "0.2"])
    assert args.func is _cmd_worker and args.once and args.poll_interval == 0.2
