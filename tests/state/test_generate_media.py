"""Lip sync and face swap video are priced by the length of the uploaded media, measured on the
server with PyAV when the file arrives and again on submit; what the browser says about a
duration is never used. Uploads go through Reflex's real event path: the same Event with the
same UploadFile objects that Reflex's upload endpoint enqueues.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from reflex_base.event import Event
from reflex_components_core.core._upload import UploadFile
from sqlmodel import select
from starlette.datastructures import Headers

from tests.support.factories import sign_up
from tests.support.media_samples import clip_mp4, tone_wav
from tests.support.pages import GenerateTab, job_snapshot, png_bytes, runner
from workroom_app.db import read_session
from workroom_app.generation import uploads
from workroom_app.models import GenerationJob
from workroom_app.state.generate import GenerateState


class MediaTab(GenerateTab):
    async def upload(self, handler: str, data: bytes, filename: str) -> None:
        """What Reflex's /_upload endpoint does with a multipart request: one Event whose `files`
        are UploadFile objects, enqueued on the event processor for this tab."""
        upload = UploadFile(
            file=io.BytesIO(data),
            path=Path(filename),
            size=len(data),
            headers=Headers({"content-type": "application/octet-stream"}),
        )
        event = Event(
            name=f"{GenerateState.get_full_name()}.{handler}",
            payload={"files": [upload]},
            router_data={"pathname": self.path, "asPath": self.path, "query": {}},
        )
        await self.send_event(event, label=f"GenerateState.{handler}")


run = runner(MediaTab)


def lip_sync_form(**over) -> dict[str, str]:
    form = {
        "feature": "lip_sync",
        "model": "standard",
        "resolution": "720p",
        "request_id": f"web-{uuid.uuid4()}",
    }
    form.update(over)
    return {k: v for k, v in form.items() if v is not None}


def test_lip_sync_is_priced_by_the_uploaded_audio_not_the_duration_menu(app_db):
    # Before: a 4-second WAV with "1 s" picked cost 5 credits and succeeded.
    account_id = sign_up(app_db, "ann@example.com")  # Free plan, 50 trial credits
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.upload("upload_source", png_bytes(), "face.png")
        await tab.upload("upload_audio", tone_wav(4.0), "voice.wav")
        gen = await tab.state(GenerateState)
        assert gen.upload_errors == {}
        audio = gen.uploads["audio"]
        assert (audio.length_text, audio.seconds) == (
            "4.0 s",
            4,
        )  # shown in the form, priced in the page

        # The old menu's "1 s" and its 5 credits: refused, nothing charged, the real price named.
        await tab.send(
            GenerateState, "submit", form_data=lip_sync_form(duration="1", shown_cost="5")
        )
        gen = await tab.state(GenerateState)
        assert gen.error.startswith("The price changed: this generation now costs 20 credits.")
        assert gen.active_jobs == []
        assert job_snapshot(app_db, account_id) == before

        # A forged long duration changes nothing either: 4 s it is.
        await tab.send(
            GenerateState, "submit", form_data=lip_sync_form(duration="60", shown_cost="300")
        )
        assert "now costs 20 credits" in (await tab.state(GenerateState)).error

        await tab.send(
            GenerateState, "submit", form_data=lip_sync_form(duration="1", shown_cost="20")
        )
        gen = await tab.state(GenerateState)
        assert gen.error == ""
        assert [j.title for j in gen.active_jobs] == ["Lip sync · Standard · 720p · 4 s"]

    run(scenario)
    assert job_snapshot(app_db, account_id)[:2] == (30, 1)
    with read_session(app_db) as s:
        job = s.exec(select(GenerationJob)).one()
        params = json.loads(job.params_json)
        assert (job.cost, params["duration"], params["media_seconds"]) == (20, 4, 4.0)


def test_a_part_second_is_billed_as_a_whole_second(app_db):
    account_id = sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.upload("upload_source", png_bytes(), "face.png")
        await tab.upload("upload_audio", tone_wav(2.5), "voice.wav")
        audio = (await tab.state(GenerateState)).uploads["audio"]
        assert (audio.length_text, audio.seconds) == ("2.5 s", 3)
        await tab.send(GenerateState, "submit", form_data=lip_sync_form(shown_cost="15"))
        assert (await tab.state(GenerateState)).error == ""

    run(scenario)
    assert job_snapshot(app_db, account_id)[0] == 35


def test_audio_longer_than_the_catalog_allows_is_refused_with_its_length(app_db):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.upload("upload_audio", tone_wav(61.2, rate=4000, rising=False), "speech.wav")
        gen = await tab.state(GenerateState)
        assert gen.upload_errors["audio"] == (
            "The audio file is 61.2 s long; Lip sync takes up to 60 s. Choose a shorter file."
        )
        assert "audio" not in gen.uploads and gen._upload_refs == {}

    run(scenario)
    assert job_snapshot(app_db, account_id) == before
    assert not uploads.account_dir(account_id).exists()  # nothing was stored


def test_a_plan_cap_on_the_length_is_named_with_the_files_length(monkeypatch):
    # The shipped catalog caps only Video's length per plan; a catalog that caps lip sync on Free
    # refuses a longer upload naming its length and the plan that allows it.
    import tomllib

    from workroom_app.billing import catalog

    assert uploads.length_problem("lip_sync", "The audio file", 4.0, "free") is None
    data = tomllib.loads(Path(catalog.__file__).with_name("catalog.toml").read_text())
    data["plans"]["free"]["max_duration"]["lip_sync"] = 3
    monkeypatch.setattr(catalog, "get_catalog", lambda: catalog.parse_catalog(data))
    assert uploads.length_problem("lip_sync", "The audio file", 4.0, "free") == (
        "The audio file is 4.0 s long: Lip sync longer than 3 s needs the Starter plan or higher."
    )
    assert uploads.length_problem("lip_sync", "The audio file", 3.0, "free") is None


def test_face_swap_video_is_priced_by_the_target_clip(app_db):
    account_id = sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.upload("upload_face", png_bytes(), "me.png")
        await tab.upload("upload_target", png_bytes(), "still.png")
        # A still picture has no length: a video swap needs a clip.
        await tab.send(
            GenerateState,
            "submit",
            form_data={
                "feature": "face_swap",
                "model": "video",
                "resolution": "720p",
                "duration": "1",
                "request_id": f"web-{uuid.uuid4()}",
                "shown_cost": "3",
            },
        )
        assert "needs a video as the target" in (await tab.state(GenerateState)).error
        await tab.upload("upload_target", clip_mp4(3.0), "clip.mp4")
        target = (await tab.state(GenerateState)).uploads["target"]
        assert (target.kind, target.length_text, target.seconds) == ("video", "3.0 s", 3)
        await tab.send(
            GenerateState,
            "submit",
            form_data={
                "feature": "face_swap",
                "model": "video",
                "resolution": "720p",
                "duration": "1",
                "request_id": f"web-{uuid.uuid4()}",
                "shown_cost": "9",
            },
        )
        gen = await tab.state(GenerateState)
        assert gen.error == "" and gen.active_jobs[0].title == "Face swap · Video · 720p · 3 s"

    run(scenario)
    assert job_snapshot(app_db, account_id)[:2] == (41, 1)


def test_a_clip_that_cannot_be_played_is_refused(app_db):
    sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        fake_mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\0" * 64
        await tab.upload("upload_target", fake_mp4, "broken.mp4")
        error = (await tab.state(GenerateState)).upload_errors["target"]
        assert error.startswith("The target image or video looks like MP4 but cannot be played.")

    run(scenario)


# ------------------------------------------------------------------ wrong type / size messages


REJECTIONS = [
    (
        "rejected_audio",
        [{"file": {"path": "./notes.txt"}, "errors": [{"code": "file-invalid-type"}]}],
        "audio",
        "“notes.txt” (.TXT) is the wrong type for the audio file. Choose an audio file (WAV, MP3, OGG, FLAC or M4A).",
    ),
    (
        "rejected_face",
        [{"file": {"path": "holiday.mov"}, "errors": [{"code": "file-invalid-type"}]}],
        "face",
        "“holiday.mov” (.MOV) is the wrong type for the face image. Choose an image (PNG, JPEG, WebP or GIF).",
    ),
    (
        "rejected_target",
        [{"file": {"path": "big.mp4"}, "errors": [{"code": "file-too-large"}]}],
        "target",
        "“big.mp4” is larger than 50 MB, the limit for the target image or video. Choose a smaller file.",
    ),
    (
        "rejected_source",
        [{"file": {"path": "a.png"}}, {"file": {"path": "b.png"}}],
        "source",
        "Choose one file for the video or image to animate: an image (PNG, JPEG, WebP or GIF) or a video "
        "(MP4, MOV, WebM or animated GIF).",
    ),
    # What Chromium sends for a refused file (the file's name does not survive serialisation).
    (
        "rejected_audio",
        [{"file": {}, "errors": [{"code": "file-invalid-type", "message": "File type must be"}]}],
        "audio",
        "That file is the wrong type for the audio file. Choose an audio file (WAV, MP3, OGG, FLAC or M4A).",
    ),
    # Forged or odd records from a browser: a plain message, nothing breaks.
    (
        "rejected_audio",
        "junk",
        "audio",
        "That file cannot be used for the audio file. Choose an audio file "
        "(WAV, MP3, OGG, FLAC or M4A).",
    ),
    (
        "rejected_audio",
        [{"file": {"path": ["x"]}, "errors": "nope"}],
        "audio",
        "That file cannot be used for the audio file. Choose an audio file (WAV, MP3, OGG, FLAC or M4A).",
    ),
]


@pytest.mark.parametrize(
    "handler, rejected, role, message", REJECTIONS, ids=[r[3][:30] for r in REJECTIONS]
)
def test_a_file_the_picker_refuses_says_what_is_wrong_and_what_to_choose(
    app_db, handler, rejected, role, message
):
    account_id = sign_up(app_db, "ann@example.com")
    before = job_snapshot(app_db, account_id)

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.send(GenerateState, handler, rejected=rejected)
        gen = await tab.state(GenerateState)
        assert gen.upload_errors.get(role) == message
        assert gen._upload_refs == {}

    run(scenario)
    assert job_snapshot(app_db, account_id) == before


def test_a_wrong_type_that_reaches_the_server_names_its_type_and_the_accepted_ones(app_db):
    sign_up(app_db, "ann@example.com")

    async def scenario(new_browser):
        tab = new_browser()
        await tab.log_in("ann@example.com")
        await tab.upload("upload_audio", png_bytes(), "voice.wav")
        assert (await tab.state(GenerateState)).upload_errors["audio"] == (
            "The audio file is an image (PNG); choose an audio file (WAV, MP3, OGG, FLAC or M4A)."
        )
        await tab.upload("upload_audio", b"just some text", "voice.wav")
        assert (await tab.state(GenerateState)).upload_errors["audio"] == (
            "The audio file is not a supported type. Choose an audio file (WAV, MP3, OGG, FLAC or M4A)."
        )

    run(scenario)


# ------------------------------------------------------------------ several files per job


def test_each_of_n_images_is_served_to_its_owner_only_with_its_own_download(app_db):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from workroom_app import settings
    from workroom_app.billing import accounts
    from workroom_app.db import write_session
    from workroom_app.generation import jobs
    from workroom_app.http import media_routes
    from workroom_app.state.generate import job_view

    ann = sign_up(app_db, "ann@example.com", extra_credits=100)
    sign_up(app_db, "mallory@example.com")
    media_dir = settings.get_settings().media_dir
    with write_session(app_db) as s:
        job = jobs.submit(
            s,
            ann,
            {
                "feature": "image",
                "model": "flux_pro",
                "resolution": "1K",
                "count": "2",
                "prompt": "two cats",
            },
            client_request_id="two-images",
        )
        paths = [jobs.output_relative_path(ann, job.id, i, "png") for i in (1, 2)]
        for i, relative in enumerate(paths):
            (media_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (media_dir / relative).write_bytes(png_bytes() + bytes([i]))
        jobs.succeed(s, job.id, paths[0], "image/png", output_count=2)
        view = job_view(jobs.get_job(s, ann, job.id))
        ann_token = accounts.create_login(s, ann)
        mallory_token = accounts.create_login(s, accounts.find_account(s, "mallory@example.com").id)
        job_id = job.id

    assert view.output_urls == [f"/api/media/jobs/{job_id}/1", f"/api/media/jobs/{job_id}/2"]
    client = TestClient(Starlette(routes=media_routes.MEDIA_ROUTES))
    client.cookies.set("workroom_session", ann_token)
    for i in (1, 2):
        got = client.get(f"/api/media/jobs/{job_id}/{i}?download=1")
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.content == png_bytes() + bytes([i - 1])
        assert f'filename="workroom-image-{job_id}-{i}.png"' in got.headers["content-disposition"]
        assert got.headers["content-disposition"].startswith("attachment")
    for url in [
        f"/api/media/jobs/{job_id}/3",
        f"/api/media/jobs/{job_id}/0",
        f"/api/media/jobs/{job_id}/-1",
        f"/api/media/jobs/{job_id}/x",
        f"/api/media/jobs/{job_id}/99999",
    ]:
        assert client.get(url).status_code == 404, url
    other = TestClient(Starlette(routes=media_routes.MEDIA_ROUTES))
    other.cookies.set("workroom_session", mallory_token)
    assert other.get(f"/api/media/jobs/{job_id}/2").status_code == 404
    # Staff read everything: the Reports queue links to the reported result.
    with write_session(app_db) as s:
        helper = accounts.sign_up(
            s, "help@staff.test", "correct horse battery", "h", role="support"
        )
        staff_token = accounts.create_login(s, helper.id)
    staff_client = TestClient(Starlette(routes=media_routes.MEDIA_ROUTES))
    staff_client.cookies.set("workroom_session", staff_token)
    got = staff_client.get(f"/api/media/jobs/{job_id}/2")
    assert got.status_code == 200 and got.content == png_bytes() + bytes([1])
    for url in (f"/api/media/jobs/{job_id}/3", "/api/media/jobs/99999999999"):
        assert staff_client.get(url).status_code == 404, url
    assert (
        TestClient(Starlette(routes=media_routes.MEDIA_ROUTES))
        .get(f"/api/media/jobs/{job_id}/2")
        .status_code
        == 404
    )
