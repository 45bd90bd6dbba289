"""The Generation page state, driven through Reflex's real event path (as a browser sends events),
the owner-only media route, and the live push.

A browser can call any handler with anything: every forged or malformed call must leave a clear
message and change nothing (no job row, no ledger row, the same balance).
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.support.factories import sign_up
from tests.support.fixtures import BOTH_ENGINES
from tests.support.pages import GenerateTab, job_snapshot, png_bytes, runner, video_form
from workroom_app import settings
from workroom_app.billing import accounts, catalog, ledger
from workroom_app.db import read_session, write_session
from workroom_app.generation import jobs, uploads
from workroom_app.http import media_routes
from workroom_app.models import GenerationJob, JobStatus
from workroom_app.state.generate import GenerateState, endings, failure_toast, job_view
from workroom_app.state.session import SessionState

run = runner(GenerateTab)


# ------------------------------------------------------------------ submit


@BOTH_ENGINES
def test_submit_debits_exactly_the_catalog_price_and_shows_the_job(app_db):
    account_id = sign_up(app_db, "ann@example.com")  # 50 trial credits, Free plan
    price = catalog.quote(
        {"feature": "video", "model": "seedance_lite", "resolution": "720p", "duration": 5}, "free"
    )
    assert price.cost == 20

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, "load")
        await tab.send(GenerateState, "submit", form_data=video_form())
        gen = await tab.state(GenerateState)
        assert gen.error == ""
        assert gen.submit_seq == 1
        assert [j.title for j in gen.active_jobs] == ["Video · Seedance Lite · 720p · 5 s"]
        assert gen.active_jobs[0].cost_text == "20 credits" and gen.active_jobs[0].can_cancel
        session = await tab.state(SessionState)
        assert session.balance == 30 and session.balance_text == "30"

    run(scenario)
    assert job_snapshot(app_db, account_id)[:2] == (30, 1)
    with read_session(app_db) as s:
        job = s.exec(select(GenerationJob)).one()
        assert (job.cost, job.status, job.feature) == (20, JobStatus.QUEUED, "video")
        assert json.loads(job.params_json)["prompt"] == "a lighthouse at dusk"


def test_the_same_request_id_twice_charges_once(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    form = video_form()

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, "submit", form_data=form)
        await tab.send(GenerateState, "submit", form_data=form)  # a double click
        gen = await tab.state(GenerateState)
        assert len(gen.active_jobs) == 1 and gen.error == ""

    run(scenario)
    assert job_snapshot(app_db, account_id)[:2] == (30, 1)


def test_a_price_the_user_did_not_see_is_not_charged(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        # The page showed 16 credits (say, an old price list); the catalog says 20.
        await tab.send(GenerateState, "submit", form_data=video_form(shown_cost="16"))
        gen = await tab.state(GenerateState)
        assert gen.error.startswith("The price changed: this generation now costs 20 credits.")
        assert "Nothing was charged" in gen.error

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


def test_not_enough_credits_says_how_many_are_missing_and_offers_upgrade(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        # Veo 3, 720p, 5 s = 200 credits; the trial has 50.
        await tab.send(
            GenerateState, "submit", form_data=video_form(model="veo3", shown_cost="200")
        )
        gen = await tab.state(GenerateState)
        assert "150 more needed" in gen.error
        assert gen.error_upgrade is True

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


BAD_FORMS = [
    (video_form(model="sora9", shown_cost=None), "Unknown model for Video"),
    (video_form(duration="-5", shown_cost=None), "Duration must be 5 s, 8 s or 10 s"),
    (
        video_form(duration="99999999999999999999", shown_cost=None),
        "The duration sent is not valid.",
    ),
    (video_form(duration="5.5", shown_cost=None), "Duration must be a whole number of seconds"),
    (video_form(duration="five", shown_cost=None), "Duration must be a whole number of seconds"),
    (video_form(duration=5, shown_cost=None), "The duration sent is not valid."),
    (video_form(resolution="1080p", shown_cost=None), "1080p needs the Starter plan or higher"),
    (
        video_form(duration="8", shown_cost=None),
        "Video longer than 5 s needs the Starter plan or higher",
    ),
    ({**video_form(), "feature": "hologram"}, "Choose a feature"),
    (video_form(prompt="   ", shown_cost=None), "Describe what to generate in the prompt."),
    (video_form(prompt="x" * 2001), "The prompt is 2,001 characters; the limit is 2,000."),
    (video_form(request_id=None), "This form is out of date"),
    (video_form(request_id="bad id with spaces"), "This form is out of date"),
    (video_form(shown_cost="-3"), "The cost shown is not valid"),
    (
        {
            "feature": "image",
            "model": "flux_schnell",
            "resolution": "1K",
            "count": "9",
            "prompt": "p",
            "request_id": f"web-{uuid.uuid4()}",
        },
        "Count must be between 1 and 4",
    ),
    (
        {
            "feature": "voiceover",
            "model": "standard",
            "text": "x" * 5001,
            "request_id": f"web-{uuid.uuid4()}",
        },
        "The text is 5,001 characters; the limit is 5,000.",
    ),
    (
        {"feature": "face_swap", "model": "image", "request_id": f"web-{uuid.uuid4()}"},
        "Upload the face image.",
    ),
    (
        {
            "feature": "lip_sync",
            "model": "pro",
            "resolution": "720p",
            "duration": "10",
            "request_id": f"web-{uuid.uuid4()}",
        },
        "Upload the video or image to animate.",
    ),
]


@pytest.mark.parametrize("form, message", BAD_FORMS, ids=[m[:40] for _f, m in BAD_FORMS])
def test_bad_input_gets_a_clear_message_and_changes_nothing(app_db, form, message):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, "submit", form_data=form)
        gen = await tab.state(GenerateState)
        assert message in gen.error
        assert gen.active_jobs == []

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"form_data": "feature=video"},
        {"form_data": ["video"]},
        {"form_data": None},
        {"form_data": video_form(), "cost": 0},
        {},
    ],
)
def test_forged_submit_payloads_change_nothing(app_db, payload):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        # A missing or unknown argument: Reflex refuses the event before the handler runs. A
        # form_data of the wrong shape reaches the handler, which must answer it.
        refused = None if set(payload) == {"form_data"} else TypeError
        await tab.send(GenerateState, "submit", refused=refused, **payload)

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


def test_signed_out_tab_cannot_submit(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.send(GenerateState, "submit", form_data=video_form())
        assert (await tab.state(GenerateState)).active_jobs == []

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


def test_browser_cannot_set_generate_vars(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        for name, value in [
            ("_upload_refs", {"face_swap:face": "../../etc/passwd"}),
            ("submit_seq", 99),
            ("_history_before", 1),
            ("balance", 10_000),
        ]:
            # Reflex refuses it: no setter of that name exists.
            await tab.send(
                GenerateState, "setvar", var_name=name, value=value, refused=AttributeError
            )
        gen = await tab.state(GenerateState)
        assert gen._upload_refs == {} and gen.submit_seq == 0
        assert (await tab.state(SessionState)).balance == 50

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


# ------------------------------------------------------------------ cancel


@BOTH_ENGINES
def test_owner_cancels_a_queued_job_and_gets_the_credits_back(app_db):
    account_id = sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, "submit", form_data=video_form())
        gen = await tab.state(GenerateState)
        job_id = gen.active_jobs[0].id
        await tab.send(GenerateState, "cancel", job_id=job_id)
        gen = await tab.state(GenerateState)
        assert gen.active_jobs == []
        assert gen.history[0].status == "cancelled"
        assert gen.history[0].refund_text == "20 credits returned"
        assert (await tab.state(SessionState)).balance == 50

    run(scenario)
    with read_session(app_db) as s:
        job = s.exec(select(GenerationJob)).one()
        assert job.status == JobStatus.CANCELLED and job.refund_entry_id is not None
        assert ledger.balance(s, account_id) == 50


@pytest.mark.parametrize(
    "job_id", ["other", -1, 0, "1; DROP TABLE generation_job", True, 10**30, None, [1], {"id": 1}]
)
def test_cancel_of_another_users_job_or_a_bad_id_changes_nothing(app_db, job_id):
    sign_up(app_db, "ann@example.com")
    mallory = sign_up(app_db, "mallory@example.com")
    owner = accounts_id = None
    with write_session(app_db) as s:
        owner = accounts.find_account(s, "ann@example.com").id
        job = jobs.submit(
            s,
            owner,
            {
                "feature": "video",
                "model": "seedance_lite",
                "resolution": "720p",
                "duration": "5",
                "prompt": "mine",
            },
            client_request_id="owner-job-1",
        )
        ann_job = job.id
    target = ann_job if job_id == "other" else job_id
    before = (job_snapshot(app_db, owner), job_snapshot(app_db, mallory))
    del accounts_id

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("mallory@example.com")
        await tab.send(GenerateState, "cancel", job_id=target)

    run(scenario)
    assert (job_snapshot(app_db, owner), job_snapshot(app_db, mallory)) == before
    with read_session(app_db) as s:
        assert s.get(GenerationJob, ann_job).status == JobStatus.QUEUED


# ------------------------------------------------------------------ history


def test_history_pages_by_keyset_newest_first(app_db):
    account_id = sign_up(app_db, "ann@example.com", extra_credits=1000)
    with write_session(app_db) as s:
        ids = []
        for i in range(23):
            job = jobs.submit(
                s,
                account_id,
                {
                    "feature": "image",
                    "model": "flux_schnell",
                    "resolution": "1K",
                    "count": "1",
                    "prompt": f"p{i}",
                },
                client_request_id=f"hist-{i}",
            )
            jobs.fail(
                s, job.id, JobStatus.FAILED, "boom"
            )  # free the slot (Free runs one at a time)
            ids.append(job.id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, "load")
        gen = await tab.state(GenerateState)
        assert [h.id for h in gen.history] == ids[::-1][:10]
        assert gen.history_has_older and not gen.history_has_newer
        assert (
            gen.history[0].refund_text == "1 credit returned"
            and gen.history[0].status_label == "Failed"
        )
        await tab.send(GenerateState, "history_older")
        await tab.send(GenerateState, "history_older")
        gen = await tab.state(GenerateState)
        assert [h.id for h in gen.history] == ids[::-1][20:]
        assert not gen.history_has_older and gen.history_has_newer
        await tab.send(GenerateState, "history_older")  # past the end: nothing changes
        await tab.send(GenerateState, "history_newer")
        await tab.send(GenerateState, "history_newer")
        gen = await tab.state(GenerateState)
        assert [h.id for h in gen.history] == ids[::-1][:10] and not gen.history_has_newer

    run(scenario)


# ------------------------------------------------------------------ uploads


def test_uploads_are_checked_by_content_and_kept_per_account(app_db):
    account_id = sign_up(app_db, "ann@example.com")

    class FakeUpload:
        def __init__(self, data: bytes, filename: str):
            self._data, self.filename = data, filename

        async def read(self, size: int = -1) -> bytes:
            return self._data if size < 0 else self._data[:size]

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        gen = await tab.state(GenerateState)
        # A text file named like a picture: refused by its content, with the accepted kinds named.
        await gen.upload_face([FakeUpload(b"hello, not an image", "face.png")])
        assert gen.upload_errors["face"].startswith("The face image is not a supported type.")
        assert gen._upload_refs == {}
        # Audio where an image belongs.
        await gen.upload_face([FakeUpload(b"RIFF\x00\x00\x00\x00WAVEfmt ", "voice.wav")])
        assert "choose an image" in gen.upload_errors["face"]
        await gen.upload_face([FakeUpload(png_bytes(), "me.png")])
        assert "face" not in gen.upload_errors
        assert gen.uploads["face"].name == "me.png" and gen.uploads["face"].kind == "image"
        ref = gen._upload_refs["face_swap:face"]
        assert uploads.path_of(account_id, ref).is_file()
        await gen.upload_face([])
        assert (
            gen.upload_errors["face"]
            == "Choose one file for the face image: an image (PNG, JPEG, WebP or GIF)."
        )

    run(scenario)


def test_face_swap_with_uploads_is_submitted_and_priced(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    face = uploads.save_for_role(account_id, "face_swap", "face", png_bytes())
    target = uploads.save_for_role(account_id, "face_swap", "target", png_bytes())

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        gen = await tab.state(GenerateState)
        gen._upload_refs = {"face_swap:face": face.ref, "face_swap:target": target.ref}
        await tab.send(
            GenerateState,
            "submit",
            form_data={
                "feature": "face_swap",
                "model": "image",
                "request_id": f"web-{uuid.uuid4()}",
                "shown_cost": "2",
            },
        )
        gen = await tab.state(GenerateState)
        assert gen.error == "" and gen.active_jobs[0].title == "Face swap · Image"

    run(scenario)
    with read_session(app_db) as s:
        job = s.exec(select(GenerationJob)).one()
        assert json.loads(job.params_json)["uploads"] == {"face": face.ref, "target": target.ref}
        assert ledger.balance(s, account_id) == 48


# ------------------------------------------------------------------ failure toast


def test_a_failed_job_toasts_the_credits_returned(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    with write_session(app_db) as s:
        job = jobs.submit(
            s,
            account_id,
            {
                "feature": "video",
                "model": "seedance_lite",
                "resolution": "720p",
                "duration": "5",
                "prompt": "[fail]",
            },
            client_request_id="fail-1",
        )
        job = jobs.fail(s, job.id, JobStatus.FAILED, "Failed on purpose")
        view = job_view(job)
    assert view.failed and view.refund_text == "20 credits returned"
    assert failure_toast(view) == "Generation failed · 20 credits returned"
    running = dataclasses.replace(view, status="running", active=True, failed=False, refund_text="")
    other = dataclasses.replace(view, id=view.id + 1, status="running", active=True, failed=False)
    # The tab watched both; one ended (in the history now), the other still runs.
    ended, watching = endings([view.id, other.id], [other], [view])
    assert ended == [view] and watching == [other.id]
    # Still listed as running: nothing ended, both watched.
    assert endings([view.id], [running], [running]) == ([], [view.id])
    # Ended but not on the page read with it: kept watching, no toast yet.
    assert endings([view.id], [], []) == ([], [view.id])


# ------------------------------------------------------------------ live push
# (tests/state/test_live.py: the push on commit to the tabs of the changed account)


# ------------------------------------------------------------------ media route


def _client() -> TestClient:
    return TestClient(Starlette(routes=media_routes.MEDIA_ROUTES))


def test_media_route_serves_the_owner_only(app_db, tmp_path):
    ann = sign_up(app_db, "ann@example.com")
    sign_up(app_db, "mallory@example.com")
    with write_session(app_db) as s:
        job = jobs.submit(
            s,
            ann,
            {
                "feature": "image",
                "model": "flux_schnell",
                "resolution": "1K",
                "count": "1",
                "prompt": "p",
            },
            client_request_id="media-1",
        )
        relative = f"{ann}/{job.id}.png"
        path = settings.get_settings().media_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes())
        jobs.succeed(s, job.id, relative, "image/png")
        pending = jobs.submit(
            s,
            ann,
            {
                "feature": "image",
                "model": "flux_schnell",
                "resolution": "1K",
                "count": "1",
                "prompt": "q",
            },
            client_request_id="media-2",
        )
        ann_token = accounts.create_login(s, ann)
        mallory_token = accounts.create_login(s, accounts.find_account(s, "mallory@example.com").id)
        face = uploads.save_for_role(ann, "face_swap", "face", png_bytes())
        job_id, pending_id = job.id, pending.id

    client = _client()
    client.cookies.set("workroom_session", ann_token)
    ok = client.get(f"/api/media/jobs/{job_id}")
    assert (
        ok.status_code == 200
        and ok.headers["content-type"] == "image/png"
        and ok.content == png_bytes()
    )
    download = client.get(f"/api/media/jobs/{job_id}?download=1")
    assert download.headers["content-disposition"].startswith("attachment")
    assert client.get(f"/api/media/uploads/{face.ref}").status_code == 200
    for url in [
        f"/api/media/jobs/{pending_id}",
        "/api/media/jobs/999999",
        "/api/media/jobs/abc",
        "/api/media/jobs/-1",
        "/api/media/uploads/..%2F..%2Fsecret.png",
        "/api/media/uploads/nope.png",
    ]:
        assert client.get(url).status_code == 404, url

    other = _client()
    other.cookies.set("workroom_session", mallory_token)
    assert other.get(f"/api/media/jobs/{job_id}").status_code == 404
    assert other.get(f"/api/media/uploads/{face.ref}").status_code == 404
    assert _client().get(f"/api/media/jobs/{job_id}").status_code == 404  # signed out


def test_catalog_route_is_what_quote_js_prices_from():
    response = _client().get("/api/catalog.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(catalog.catalog_for_browser()))
