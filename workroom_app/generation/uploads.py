"""Files users upload for face swap and lip sync.

The type is decided from the file's first bytes (its magic number), never from
the name or the browser's Content-Type, both of which the user controls.
Images are also opened with Pillow, so a PNG header on top of junk is refused.
Stored as media_dir/uploads/<account_id>/<random>.<ext>; a submission refers
to an upload by that file name, and only its owner's directory is searched.

Clips and audio are opened with PyAV (generation/media.py) when they arrive: a file FFmpeg
cannot read is refused, and the length of the upload a feature is priced by (TIMED_ROLES) is
measured here, on the server, checked against the catalog and the plan, and measured again from
the stored file when the generation is submitted. No length ever comes from the browser.
"""

from __future__ import annotations

import functools
import io
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workroom_app.billing import catalog as catalog_module
from workroom_app.generation.errors import InvalidUpload
from workroom_app.settings import get_settings

MB = 1024 * 1024
MAX_BYTES = {"image": 10 * MB, "video": 50 * MB, "audio": 20 * MB}
KIND_LABELS = {
    "image": "an image (PNG, JPEG, WebP or GIF)",
    "video": "a video (MP4, MOV, WebM or animated GIF)",
    "audio": "an audio file (WAV, MP3, OGG, FLAC or M4A)",
}
# ext -> (kind, mime)
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("image", "image/png"),
    "jpg": ("image", "image/jpeg"),
    "webp": ("image", "image/webp"),
    "gif": ("image", "image/gif"),
    "mp4": ("video", "video/mp4"),
    "mov": ("video", "video/quicktime"),
    "webm": ("video", "video/webm"),
    "wav": ("audio", "audio/wav"),
    "mp3": ("audio", "audio/mpeg"),
    "ogg": ("audio", "audio/ogg"),
    "flac": ("audio", "audio/flac"),
    "m4a": ("audio", "audio/mp4"),
}
# Which uploads each feature needs, by role, and the kinds each role accepts (jobs.submit and
# the upload handlers check against it; the Generate page shows one input per role).
UPLOAD_ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "face_swap": {"face": ("image",), "target": ("image", "video")},
    "lip_sync": {"source": ("image", "video"), "audio": ("audio",)},
}
ROLE_LABELS = {
    "face": "the face image",
    "target": "the target image or video",
    "source": "the video or image to animate",
    "audio": "the audio file",
}
# The upload whose length a feature is priced by: a lip sync lasts as long as its audio, a
# face swap video as long as its target clip.
TIMED_ROLES = {"lip_sync": "audio", "face_swap": "target"}
_REF_RE = re.compile(r"^[0-9a-f]{32}\.(" + "|".join(FORMATS) + r")$")


@dataclass(frozen=True)
class StoredUpload:
    ref: str  # what a generation request names in "uploads"
    kind: str  # image, video, audio
    mime: str
    size: int
    path: Path
    seconds: float | None = None  # length of a clip or audio file (None for a still image)


def sniff(data: bytes) -> str | None:
    """The format extension for these bytes, or None when not a supported type."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "m4a"
        if brand == b"qt  ":
            return "mov"
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def kinds_of(ext: str) -> tuple[str, ...]:
    kind = FORMATS[ext][0]
    # An animated GIF is a fine short video clip as well as an image.
    return ("image", "video") if ext == "gif" else (kind,)


def _accept_text(accept: tuple[str, ...]) -> str:
    return " or ".join(KIND_LABELS[k] for k in accept)


def _size_text(n: int) -> str:
    if n >= MB / 10:
        return f"{n / MB:.1f}".removesuffix(".0") + " MB"
    return f"{n / 1024:.0f} KB"


# For messages elsewhere (the Generate page names what a refused file should have been).
accept_text = _accept_text
size_text = _size_text


def _check(data: object, accept: tuple[str, ...], what: str) -> tuple[str, str, str, float | None]:
    """(ext, kind, mime, seconds) of acceptable bytes: seconds is the length of a clip or audio
    file (None for a still image); InvalidUpload saying what is wrong."""
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise InvalidUpload(f"{what} is empty. Choose {_accept_text(accept)}.")
    data = bytes(data)
    ext = sniff(data)
    if ext is None:
        raise InvalidUpload(f"{what} is not a supported type. Choose {_accept_text(accept)}.")
    kinds = [k for k in kinds_of(ext) if k in accept]
    if not kinds:
        raise InvalidUpload(
            f"{what} is {KIND_LABELS[FORMATS[ext][0]].split(' (')[0]} ({ext.upper()}); "
            f"choose {_accept_text(accept)}."
        )
    limit = max(MAX_BYTES[k] for k in kinds)
    if len(data) > limit:
        raise InvalidUpload(f"{what} is {_size_text(len(data))}; the limit is {_size_text(limit)}.")
    if FORMATS[ext][0] == "image":
        from PIL import Image  # noqa: PLC0415  (Pillow: loaded only to read images)

        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except Exception:  # noqa: BLE001  (whatever Pillow trips on, the file is unreadable)
            raise InvalidUpload(
                f"{what} looks like a {ext.upper()} image but cannot be read."
            ) from None
    seconds = None
    if FORMATS[ext][0] != "image" or ext == "gif":
        seconds = media_seconds_of_bytes(data, ext)
        if seconds is None:
            raise InvalidUpload(
                f"{what} looks like {ext.upper()} but cannot be played. Choose {_accept_text(accept)}."
            )
    return ext, kinds[0], FORMATS[ext][1], seconds


def media_seconds_of_bytes(data: bytes, ext: str) -> float | None:
    """How long a clip or audio file plays; 0.0 for a still picture; None when unreadable."""
    from workroom_app.generation import media  # noqa: PLC0415  (PyAV: loaded only to read media)

    if ext == "gif":
        return _gif_seconds(data)
    if FORMATS[ext][0] == "image":
        return 0.0
    try:
        info = media.probe(data)
    except media.MediaError:
        return None
    wanted = info.has_audio if FORMATS[ext][0] == "audio" else info.has_video
    return info.seconds if wanted and info.seconds > 0 else None


def _gif_seconds(data: bytes) -> float:
    """An animated GIF's length (the sum of its frame delays); 0.0 for a single frame."""
    from PIL import Image, ImageSequence  # noqa: PLC0415  (Pillow: loaded only to read images)

    with Image.open(io.BytesIO(data)) as img:
        if getattr(img, "n_frames", 1) <= 1:
            return 0.0
        # A delay of 0 or 10 ms is shown by browsers as 100 ms.
        total_ms = sum(
            (f.info.get("duration") or 100) if (f.info.get("duration") or 0) > 10 else 100
            for f in ImageSequence.Iterator(img)
        )
    return total_ms / 1000


def length_problem(
    feature: str, what: str, seconds: float, plan_key: str | None = None
) -> str | None:
    """Why an upload of this length cannot be used for `feature` (its length in the message),
    or None. The catalog's longest duration for the feature, then the plan's cap."""
    from workroom_app.generation import media  # noqa: PLC0415  (PyAV: loaded only to read media)

    cat = catalog_module.get_catalog()
    try:
        feat = cat.feature(feature)
    except catalog_module.UnknownFeature:
        return None
    longest = max(
        (m.durations[-1] for m in feat.models.values() if m.has_duration and m.durations),
        default=None,
    )
    length = media.seconds_text(seconds)
    if longest is not None and media.billed_seconds(seconds) > longest:
        return f"{what} is {length} long; {feat.label} takes up to {longest:,} s. Choose a shorter file."
    if plan_key is not None:
        limit = cat.plan_limit(plan_key, feature, duration=media.billed_seconds(seconds))
        if limit is not None:
            return f"{what} is {length} long: {limit}."
    return None


def _media_dir(media_dir: Path | None) -> Path:
    if media_dir is not None:
        return Path(media_dir)

    return get_settings().media_dir


def account_dir(account_id: int, media_dir: Path | None = None) -> Path:
    return _media_dir(media_dir) / "uploads" / str(int(account_id))


def save_upload(
    account_id: int,
    data: bytes,
    accept: tuple[str, ...],
    *,
    what: str = "The file",
    media_dir: Path | None = None,
    length_check: Callable[[float], None] | None = None,
) -> StoredUpload:
    """Check and store one upload; returns its reference for a generation request.
    `length_check` sees the length of a clip or audio file and raises to refuse it."""
    ext, kind, mime, seconds = _check(data, accept, what)
    if seconds and length_check is not None:
        length_check(seconds)
    folder = account_dir(account_id, media_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ref = f"{secrets.token_hex(16)}.{ext}"
    path = folder / ref
    tmp = folder / f".{ref}.part"
    tmp.write_bytes(bytes(data))
    os.replace(tmp, path)  # a half-written file never carries a valid name
    return StoredUpload(ref=ref, kind=kind, mime=mime, size=len(data), path=path, seconds=seconds)


def save_for_role(
    account_id: int,
    feature: str,
    role: str,
    data: bytes,
    *,
    media_dir: Path | None = None,
    plan_key: str | None = None,
) -> StoredUpload:
    """Store the upload for one input of face swap / lip sync (role: face, target, source, audio).

    The upload a feature is priced by is refused, with its length, when it is longer than the
    catalog allows for the feature or than `plan_key`'s plan allows."""
    roles = UPLOAD_ROLES.get(feature, {})
    if role not in roles:
        raise InvalidUpload("This feature does not take that upload.")
    what = ROLE_LABELS[role][0].upper() + ROLE_LABELS[role][1:]

    def check_length(seconds: float) -> None:
        problem = length_problem(feature, what, seconds, plan_key)
        if problem:
            raise InvalidUpload(problem)

    timed = TIMED_ROLES.get(feature) == role
    return save_upload(
        account_id,
        data,
        roles[role],
        what=what,
        media_dir=media_dir,
        length_check=check_length if timed else None,
    )


@functools.lru_cache(maxsize=256)
def _stored_seconds(path: str, size: int, mtime_ns: int) -> float | None:
    data = Path(path).read_bytes()
    ext = sniff(data)
    return media_seconds_of_bytes(data, ext) if ext else None


def stored_seconds(account_id: int, ref: str, media_dir: Path | None = None) -> float | None:
    """Length of a stored upload, measured from the file (cached per file version)."""
    path = path_of(account_id, ref, media_dir)
    try:
        stat = path.stat()
    except OSError:
        raise InvalidUpload("The uploaded file was not found; upload it again.") from None
    return _stored_seconds(str(path), stat.st_size, stat.st_mtime_ns)


def check_reference(
    account_id: int,
    ref: object,
    role: str,
    accept: tuple[str, ...],
    *,
    media_dir: Path | None = None,
) -> str:
    """The reference when it names an existing upload of this account of an accepted kind."""
    label = ROLE_LABELS.get(role, "the file")
    if ref is None or ref == "":
        raise InvalidUpload(f"Upload {label}.")
    if not isinstance(ref, str) or not _REF_RE.match(ref):
        raise InvalidUpload(f"Upload {label} again: the reference is not valid.")
    ext = ref.rsplit(".", 1)[1]
    if not any(k in accept for k in kinds_of(ext)):
        raise InvalidUpload(f"For {label}, choose {_accept_text(accept)}.")
    if not (account_dir(account_id, media_dir) / ref).is_file():
        raise InvalidUpload(f"Upload {label} again: the file was not found.")
    return ref


def path_of(account_id: int, ref: str, media_dir: Path | None = None) -> Path:
    if not _REF_RE.match(ref):
        raise InvalidUpload("The upload reference is not valid.")
    return account_dir(account_id, media_dir) / ref


def mime_of(ref: str) -> str:
    return FORMATS[ref.rsplit(".", 1)[1]][1]
