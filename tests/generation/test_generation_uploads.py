"""Uploads for face swap and lip sync: type by magic bytes, size limits, clear
messages, per-account storage; a submission with a bad upload writes nothing."""

from __future__ import annotations

import io
import wave

import pytest
from PIL import Image

from tests.support.generation import balance, job_count, make_account, submit
from tests.support.media_samples import clip_mp4
from workroom_app.generation import uploads
from workroom_app.generation.errors import InvalidUpload


def png(size=(32, 32)):
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg():
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="JPEG")
    return buf.getvalue()


def wav():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    return buf.getvalue()


MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\0" * 64
WEBM = b"\x1a\x45\xdf\xa3" + b"\0" * 64
MP3 = b"ID3\x04\x00" + b"\0" * 64


@pytest.fixture
def media(tmp_path, monkeypatch):
    from workroom_app.settings import get_settings

    monkeypatch.setattr(get_settings(), "media_dir", tmp_path / "media")
    return tmp_path / "media"


@pytest.mark.parametrize(
    ("data", "ext"),
    [
        (png(), "png"),
        (jpeg(), "jpg"),
        (wav(), "wav"),
        (MP4, "mp4"),
        (WEBM, "webm"),
        (MP3, "mp3"),
        (b"hello", None),
    ],
)
def test_type_comes_from_the_magic_bytes(data, ext):
    assert uploads.sniff(data) == ext


def test_an_mp3_named_like_an_image_is_still_audio(media):
    with pytest.raises(InvalidUpload) as err:
        uploads.save_for_role(1, "face_swap", "face", MP3)
    assert "audio file (MP3)" in str(err.value) and "image" in str(err.value)


def test_a_png_header_on_junk_is_refused(media):
    with pytest.raises(InvalidUpload, match="cannot be read"):
        uploads.save_for_role(1, "face_swap", "face", b"\x89PNG\r\n\x1a\n" + b"junk" * 50)


def test_unknown_and_empty_files_are_refused_with_what_to_choose(media):
    with pytest.raises(InvalidUpload, match="not a supported type"):
        uploads.save_for_role(1, "lip_sync", "audio", b"plain text, not audio")
    with pytest.raises(InvalidUpload, match="empty"):
        uploads.save_for_role(1, "lip_sync", "audio", b"")
    with pytest.raises(InvalidUpload):
        uploads.save_for_role(1, "lip_sync", "audio", "a string, not bytes")
    assert not (media / "uploads").exists()


def test_size_limit_names_the_size_and_the_limit(media, monkeypatch):
    monkeypatch.setitem(uploads.MAX_BYTES, "video", 1024)
    with pytest.raises(InvalidUpload) as err:
        uploads.save_for_role(1, "face_swap", "target", MP4 + b"\0" * 2048)
    assert str(err.value) == "The target image or video is 2 KB; the limit is 1 KB."
    monkeypatch.setitem(uploads.MAX_BYTES, "video", 2 * uploads.MB)
    with pytest.raises(InvalidUpload, match=r"is 2\.\d MB; the limit is 2 MB"):
        uploads.save_for_role(1, "face_swap", "target", MP4 + b"\0" * (2 * uploads.MB + 200_000))


def test_accepted_upload_is_stored_under_the_account(media):
    clip = clip_mp4(1.5)
    stored = uploads.save_for_role(5, "lip_sync", "source", clip)
    assert stored.kind == "video" and stored.mime == "video/mp4"
    assert stored.path == media / "uploads" / "5" / stored.ref
    assert stored.path.read_bytes() == clip
    assert stored.seconds == pytest.approx(1.5)
    assert uploads.check_reference(5, stored.ref, "source", ("image", "video")) == stored.ref


def test_a_role_the_feature_does_not_have_is_refused(media):
    with pytest.raises(InvalidUpload):
        uploads.save_for_role(1, "image", "face", png())


def test_submit_face_swap_without_uploads_writes_nothing(engine, media):
    acct = make_account(engine, 100)
    with pytest.raises(InvalidUpload, match="Upload the face image"):
        submit(engine, acct, {"feature": "face_swap", "mode": "image"})
    assert job_count(engine) == 0 and balance(engine, acct) == 100


def test_submit_with_another_accounts_upload_writes_nothing(engine, media):
    owner = make_account(engine, 100)
    other = make_account(engine, 100)
    face = uploads.save_for_role(owner, "face_swap", "face", png())
    target = uploads.save_for_role(owner, "face_swap", "target", png())
    req = {
        "feature": "face_swap",
        "mode": "image",
        "uploads": {"face": face.ref, "target": target.ref},
    }
    with pytest.raises(InvalidUpload, match="not found"):
        submit(engine, other, req)
    assert job_count(engine) == 0 and balance(engine, other) == 100
    job = submit(engine, owner, req)
    assert job.cost == 2 and balance(engine, owner) == 98


@pytest.mark.parametrize("ref", ["../../etc/passwd", "x.png", 12, {"a": 1}, "0" * 32 + ".exe"])
def test_malformed_upload_references_are_refused(engine, media, ref):
    acct = make_account(engine, 100)
    with pytest.raises(InvalidUpload):
        submit(
            engine,
            acct,
            {
                "feature": "lip_sync",
                "model": "standard",
                "resolution": "720p",
                "duration": 3,
                "uploads": {"source": ref, "audio": ref},
            },
        )
    assert job_count(engine) == 0


def test_audio_where_the_face_belongs_is_refused(engine, media):
    acct = make_account(engine, 100)
    audio = uploads.save_for_role(acct, "lip_sync", "audio", wav())
    target = uploads.save_for_role(acct, "face_swap", "target", png())
    with pytest.raises(InvalidUpload, match="choose an image"):
        submit(
            engine,
            acct,
            {
                "feature": "face_swap",
                "mode": "image",
                "uploads": {"face": audio.ref, "target": target.ref},
            },
        )
    assert job_count(engine) == 0
