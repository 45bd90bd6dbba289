"""The local generation service end to end: real HTTP on a free port, the real
worker, real files (PNG / MP4 / WAV) checked by their headers and lengths; MP4 files are
opened with PyAV (their streams, codecs and duration)."""

from __future__ import annotations

import asyncio
import io
import wave
from datetime import timedelta

import pytest
from PIL import Image

from tests.support.generation import (
    IMAGE,
    T0,
    balance,
    entries,
    get,
    make_account,
    submit,
)
from tests.support.media_samples import clip_mp4, tone_wav
from workroom_app.billing import clock
from workroom_app.db import write_session
from workroom_app.generation import jobs, renderers, uploads
from workroom_app.generation.local_service import ServiceThread
from workroom_app.generation.providers.local import LocalProvider, is_reachable
from workroom_app.generation.worker import Worker
from workroom_app.models import ActionType, JobStatus

RENDER_SECONDS = 0.15


@pytest.fixture(scope="module")
def service_url():
    service = ServiceThread(port=0, render_seconds=RENDER_SECONDS, failure_rate=0.0)
    url = service.start()
    yield url
    service.stop()


@pytest.fixture
def media(tmp_path):
    return tmp_path / "media"


def _run(engine, url, media, *, worker_id="w-test", passes=1):
    async def go():
        provider = LocalProvider(url, timeout=20, retries=1, backoff=0.01, media_dir=media)
        worker = Worker(engine, provider, worker_id=worker_id, poll_interval=0.03, media_dir=media)
        try:
            started = []
            for _ in range(passes):
                started += await worker.run_once()
                await worker.wait_idle()
            return started
        finally:
            await provider.aclose()

    return asyncio.run(go())


def _output(job, media):
    path = jobs.output_file(job, media)
    assert path is not None and path.is_file()
    assert path.parent == media / str(job.account_id) and path.stem == str(job.id)
    return path.read_bytes()


def test_service_health(service_url):
    assert is_reachable(service_url)


def test_image_job_end_to_end_produces_a_real_png(engine, service_url, media):
    acct = make_account(engine, 100)
    job = submit(engine, acct, {**IMAGE, "resolution": "1K", "count": 1})
    assert _run(engine, service_url, media) == [job.id]
    done = get(engine, job.id)
    assert (
        done.status == JobStatus.SUCCEEDED
        and done.progress == 100
        and done.output_mime == "image/png"
    )
    assert done.provider_job_id and done.output_path.endswith(".png")
    data = _output(done, media)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (1024, 1024)
    assert balance(engine, acct) == 100 - 4


def test_voiceover_wav_length_follows_the_text(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    text = "Workroom reads this sentence out loud for the test. " * 3
    job = submit(sqlite_engine, acct, {"feature": "voiceover", "model": "standard", "text": text})
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.output_mime == "audio/wav", done.error
    data = _output(done, media)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds == pytest.approx(len(text) / renderers.CHARS_PER_SECOND, rel=0.02)


def _streams(data: bytes) -> dict:
    """What PyAV finds in an MP4: {"video": (codec, seconds, frames), "audio": (codec, seconds)}."""
    import av

    out = {}
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("mov,mp4")
        for stream in container.streams:
            seconds = float(stream.duration * stream.time_base)
            if stream.type == "video":
                frames = sum(1 for _ in container.decode(stream))
                out["video"] = (stream.codec_context.name, seconds, frames)
        container.seek(0)
        for stream in container.streams.audio:
            out["audio"] = (stream.codec_context.name, float(stream.duration * stream.time_base))
    return out


def test_video_is_an_h264_mp4_with_frames_for_the_duration(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    job = submit(
        sqlite_engine,
        acct,
        {
            "feature": "video",
            "model": "seedance_lite",
            "resolution": "480p",
            "duration": 5,
            "prompt": "waves on a beach",
        },
    )
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.output_mime == "video/mp4", done.error
    data = _output(done, media)
    assert data[4:8] == b"ftyp" and done.output_path.endswith(".mp4")
    codec, seconds, frames = _streams(data)["video"]
    assert (
        codec == "h264" and seconds == pytest.approx(5.0, abs=0.01) and frames == 5 * renderers.FPS
    )


def test_n_images_are_n_image_files(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, {**IMAGE, "resolution": "1K", "count": 3})
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.output_count == 3, done.error
    files = [jobs.output_file(done, media, i) for i in (1, 2, 3)]
    assert [f.name for f in files] == [f"{job.id}.png", f"{job.id}-2.png", f"{job.id}-3.png"]
    pictures = []
    for f in files:
        with Image.open(f) as img:
            assert img.format == "PNG" and img.size == (1024, 1024)  # each one whole, not a tile
            pictures.append(img.convert("RGB").tobytes())
    assert len(set(pictures)) == 3  # three different variants
    assert jobs.output_file(done, media, 4) is None


def _png(colour, size=(64, 64)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_face_swap_composes_the_uploaded_face_onto_the_target(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    face = uploads.save_for_role(acct, "face_swap", "face", _png((0, 255, 0)), media_dir=media)
    target = uploads.save_for_role(
        acct, "face_swap", "target", _png((0, 0, 255), (300, 200)), media_dir=media
    )
    req = {
        "feature": "face_swap",
        "mode": "image",
        "uploads": {"face": face.ref, "target": target.ref},
    }
    with _media_setting(media):
        job = submit(sqlite_engine, acct, req)
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    with Image.open(io.BytesIO(_output(done, media))) as img:
        img = img.convert("RGB")
        assert img.size == (300, 200)
        assert img.getpixel((150, 200 // 6 + 33)) == (0, 255, 0)  # the face, centred near the top
        assert img.getpixel((5, 100)) == (0, 0, 255)  # the target around it
    assert balance(sqlite_engine, acct) == 98


def _is_mouth(rgb):
    r, g, b = rgb
    return r > 110 and g < 70 and b < 90


def _mouth_heights(data: bytes, size=(480, 270)) -> list[int]:
    """Height of the mouth bar (its colour is (150, 20, 40)) in the centre column of each frame."""
    import av

    heights = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(container.streams.video[0]):
            img = frame.to_image().convert("RGB")
            heights.append(sum(_is_mouth(img.getpixel((size[0] // 2, y))) for y in range(size[1])))
    return heights


def test_lip_sync_is_an_mp4_with_the_uploaded_audio_and_a_moving_mouth(
    sqlite_engine, service_url, media
):
    acct = make_account(sqlite_engine, 100)
    source = uploads.save_for_role(
        acct, "lip_sync", "source", _png((200, 180, 160)), media_dir=media
    )
    audio = uploads.save_for_role(acct, "lip_sync", "audio", tone_wav(2.0), media_dir=media)
    req = {
        "feature": "lip_sync",
        "model": "standard",
        "resolution": "720p",
        "uploads": {"source": source.ref, "audio": audio.ref},
    }
    with _media_setting(media):
        job = submit(sqlite_engine, acct, req)
    assert job.cost == 10  # 2 s of audio at 5 credits a second
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.output_mime == "video/mp4", done.error
    data = _output(done, media)
    streams = _streams(data)
    vcodec, vseconds, frames = streams["video"]
    acodec, aseconds = streams["audio"]
    assert vcodec == "h264" and acodec == "aac"
    assert vseconds == pytest.approx(2.0, abs=0.01) and frames == 2 * renderers.FPS
    assert aseconds == pytest.approx(2.0, abs=0.06)  # AAC frames round up to 1024 samples
    # The audio in the MP4 is the uploaded audio: a tone growing louder, so its loudness rises.
    from workroom_app.generation import media as media_lib

    loud = media_lib.loudness(media_lib.decode_audio(data), 4)
    assert loud[0] < loud[1] < loud[2] < loud[3]
    # The mouth opens wider as the audio gets louder.
    heights = _mouth_heights(data)
    assert len(set(heights)) > 2 and heights[-1] > heights[1] + 10


def test_lip_sync_of_a_clip_plays_the_clip_and_an_mp3_or_other_audio_is_decoded(
    sqlite_engine, service_url, media
):
    acct = make_account(sqlite_engine, 100)
    source = uploads.save_for_role(
        acct, "lip_sync", "source", clip_mp4(1.0, size=(160, 90)), media_dir=media
    )
    # An M4A (AAC in MP4) the standard library could never read.
    from workroom_app.generation import media as media_lib

    m4a = _m4a(media_lib.decode_audio(tone_wav(1.5)))
    audio = uploads.save_for_role(acct, "lip_sync", "audio", m4a, media_dir=media)
    assert audio.mime == "audio/mp4" and audio.seconds == pytest.approx(1.5, abs=0.05)
    with _media_setting(media):
        job = submit(
            sqlite_engine,
            acct,
            {
                "feature": "lip_sync",
                "model": "standard",
                "resolution": "720p",
                "uploads": {"source": source.ref, "audio": audio.ref},
            },
        )
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED, done.error
    streams = _streams(_output(done, media))
    assert streams["audio"][0] == "aac" and streams["video"][1] == pytest.approx(1.5, abs=0.13)


def _m4a(samples) -> bytes:
    from fractions import Fraction

    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(samples))
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 16000
        frame.pts = 0
        frame.time_base = Fraction(1, 16000)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def test_face_swap_video_is_an_mp4_as_long_as_the_target_clip(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    face = uploads.save_for_role(acct, "face_swap", "face", _png((0, 255, 0)), media_dir=media)
    target = uploads.save_for_role(acct, "face_swap", "target", clip_mp4(2.0), media_dir=media)
    with _media_setting(media):
        job = submit(
            sqlite_engine,
            acct,
            {
                "feature": "face_swap",
                "mode": "video",
                "resolution": "720p",
                "duration": 30,
                "uploads": {"face": face.ref, "target": target.ref},
            },
        )
    assert job.cost == 6  # 2 s at 3 credits a second: the clip's length, not the 30 s asked
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.output_mime == "video/mp4", done.error
    codec, seconds, frames = _streams(_output(done, media))["video"]
    assert (
        codec == "h264" and seconds == pytest.approx(2.0, abs=0.01) and frames == 2 * renderers.FPS
    )


def test_fail_marker_fails_the_job_and_returns_the_credits(engine, service_url, media):
    acct = make_account(engine, 100)
    job = submit(engine, acct, {**IMAGE, "prompt": "a fox [fail]"})
    assert balance(engine, acct) == 84
    _run(engine, service_url, media)
    done = get(engine, job.id)
    assert done.status == JobStatus.FAILED and "[fail]" in done.error
    assert done.refund_entry_id is not None and balance(engine, acct) == 100
    refunds = [e for e in entries(engine, acct) if e.action_type == ActionType.REFUND]
    assert [r.amount for r in refunds] == [16]


def test_reject_marker_is_reported_as_rejected(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, {**IMAGE, "prompt": "[reject] something"})
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.REJECTED and balance(sqlite_engine, acct) == 100


def test_failure_rate_one_fails_every_job(sqlite_engine, media):
    service = ServiceThread(port=0, render_seconds=0.05, failure_rate=1.0)
    url = service.start()
    try:
        acct = make_account(sqlite_engine, 100)
        job = submit(sqlite_engine, acct, IMAGE)
        _run(sqlite_engine, url, media)
    finally:
        service.stop()
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.FAILED and "at random" in done.error
    assert balance(sqlite_engine, acct) == 100


# ------------------------------------------------------------------ restart recovery


def test_restart_resumes_a_running_job_by_polling_the_provider_again(engine, service_url, media):
    acct = make_account(engine, 100)
    job = submit(engine, acct, {**IMAGE, "resolution": "1K", "count": 1})

    async def first_worker_dies():
        provider = LocalProvider(service_url, media_dir=media)
        try:
            with write_session(engine) as s:
                jobs.claim(s, job.id, "dead-worker", lease_seconds=30)
            pid = await provider.create(get(engine, job.id))
            with write_session(engine) as s:
                jobs.mark_running(s, job.id, pid, worker_id="dead-worker")
            return pid
        finally:
            await provider.aclose()

    pid = asyncio.run(first_worker_dies())
    # a new worker does not touch it while the dead one's lease holds...
    assert _run(engine, service_url, media, worker_id="new") == []
    # ...and takes it over once the lease has run out, polling the same prediction
    with clock.pinned(clock.now() + timedelta(seconds=31)):
        assert _run(engine, service_url, media, worker_id="new") == [job.id]
    done = get(engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.provider_job_id == pid
    assert _output(done, media).startswith(b"\x89PNG")
    assert balance(engine, acct) == 96


def test_restart_resends_a_job_claimed_but_never_sent(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, {**IMAGE, "resolution": "1K", "count": 1})
    with write_session(sqlite_engine) as s:
        jobs.claim(s, job.id, "dead-worker", lease_seconds=30)
    with clock.pinned(clock.now() + timedelta(seconds=31)):
        assert _run(sqlite_engine, service_url, media) == [job.id]
    assert get(sqlite_engine, job.id).status == JobStatus.SUCCEEDED


def test_restart_past_the_deadline_times_out_and_refunds(engine, service_url, media):
    acct = make_account(engine, 100)
    with clock.pinned(T0):
        job = submit(engine, acct, IMAGE)
        with write_session(engine) as s:
            jobs.claim(s, job.id, "dead-worker", lease_seconds=30)
            jobs.mark_running(s, job.id, "lost-prediction", worker_id="dead-worker")
    with clock.pinned(T0 + timedelta(hours=1)):
        assert _run(engine, service_url, media) == []
    done = get(engine, job.id)
    assert done.status == JobStatus.TIMED_OUT and balance(engine, acct) == 100


def test_a_job_the_service_forgot_fails_with_a_refund(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, IMAGE)
    with write_session(sqlite_engine) as s:
        jobs.claim(s, job.id, "dead-worker", lease_seconds=30)
        jobs.mark_running(s, job.id, "unknownprediction", worker_id="dead-worker")
    with clock.pinned(clock.now() + timedelta(seconds=31)):
        _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.FAILED and "no longer knows" in done.error
    assert balance(sqlite_engine, acct) == 100


def test_two_workers_never_run_the_same_job(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 1000, plan="studio")
    ids = [
        submit(
            sqlite_engine, acct, {"feature": "voiceover", "model": "expressive", "text": f"job {i}"}
        ).id
        for i in range(6)
    ]

    async def two():
        providers = [LocalProvider(service_url, media_dir=media) for _ in range(2)]
        workers = [
            Worker(sqlite_engine, p, worker_id=f"w{i}", poll_interval=0.03, media_dir=media)
            for i, p in enumerate(providers)
        ]
        try:
            started = await asyncio.gather(*(w.run_once() for w in workers))
            await asyncio.gather(*(w.wait_idle() for w in workers))
            return started
        finally:
            for p in providers:
                await p.aclose()

    a, b = asyncio.run(two())
    assert set(a).isdisjoint(b)
    assert sorted(a + b) == sorted(ids)[: len(a + b)]
    for jid in a + b:
        assert get(sqlite_engine, jid).status == JobStatus.SUCCEEDED


class _media_setting:
    """submit() checks uploads under settings.media_dir: point it at the test's folder."""

    def __init__(self, media):
        self.media = media

    def __enter__(self):
        from workroom_app.settings import get_settings

        self.settings = get_settings()
        self.old = self.settings.media_dir
        self.settings.media_dir = self.media

    def __exit__(self, *exc):
        self.settings.media_dir = self.old


# ------------------------------------------------------------------ the worker loop


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ensure_local_service_starts_one_when_nothing_answers():
    from workroom_app.generation.providers.local import ensure_local_service

    url = f"http://127.0.0.1:{_free_port()}"
    assert not is_reachable(url)
    service = ensure_local_service(url)
    try:
        assert service is not None and is_reachable(url)
        assert ensure_local_service(url) is None  # already running: not started twice
    finally:
        service.stop()


def test_run_worker_finishes_jobs_and_stops_on_the_event(
    sqlite_engine, service_url, media, monkeypatch
):
    from workroom_app.generation.worker import run_worker
    from workroom_app.settings import get_settings

    monkeypatch.setattr(get_settings(), "media_dir", media)
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, {**IMAGE, "resolution": "1K", "count": 1})

    async def go():
        stop = asyncio.Event()
        provider = LocalProvider(service_url, media_dir=media)
        task = asyncio.create_task(run_worker(stop, 0.02, engine=sqlite_engine, provider=provider))
        try:
            for _ in range(300):
                if get(sqlite_engine, job.id).status == JobStatus.SUCCEEDED:
                    break
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await provider.aclose()

    asyncio.run(go())
    assert get(sqlite_engine, job.id).status == JobStatus.SUCCEEDED
    assert (media / str(acct) / f"{job.id}.png").is_file()


def test_a_stopped_worker_releases_its_jobs_for_an_immediate_resume(
    sqlite_engine, media, monkeypatch
):
    from workroom_app.generation.worker import run_worker

    slow = ServiceThread(port=0, render_seconds=30)
    url = slow.start()
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, IMAGE)

    async def go():
        stop = asyncio.Event()
        provider = LocalProvider(url, media_dir=media)
        task = asyncio.create_task(run_worker(stop, 0.02, engine=sqlite_engine, provider=provider))
        try:
            for _ in range(300):
                if get(sqlite_engine, job.id).provider_job_id:
                    break
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await provider.aclose()

    try:
        asyncio.run(go())
    finally:
        slow.stop()
    held = get(sqlite_engine, job.id)
    assert held.status == JobStatus.RUNNING and held.provider_job_id and held.lease_until is None
    with write_session(sqlite_engine) as s:
        assert jobs.claimable_ids(s) == [job.id]


def test_an_upload_gone_from_disk_fails_the_job_with_a_refund(sqlite_engine, service_url, media):
    acct = make_account(sqlite_engine, 100)
    face = uploads.save_for_role(acct, "face_swap", "face", _png((0, 255, 0)), media_dir=media)
    target = uploads.save_for_role(acct, "face_swap", "target", _png((0, 0, 255)), media_dir=media)
    with _media_setting(media):
        job = submit(
            sqlite_engine,
            acct,
            {
                "feature": "face_swap",
                "mode": "image",
                "uploads": {"face": face.ref, "target": target.ref},
            },
        )
    face.path.unlink()
    _run(sqlite_engine, service_url, media)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.FAILED and "no longer available" in done.error
    assert balance(sqlite_engine, acct) == 100
