"""What the local renderer draws: real files of the right kind, clearly labelled
as the local renderer's work (it is not an AI model).

Every render returns a list of (bytes, MIME type): one file, or one per image asked for.

- image: PNGs at the requested resolution; the prompt is written on each over
  shapes and colours chosen from a hash of the prompt (same prompt, same picture);
  `count` images are `count` separate files, each its own variant.
- video: an MP4 (H.264, through PyAV, see media.py) at preview size, as many
  frames as the duration asks at 8 frames per second.
- voiceover: a 16-bit mono WAV, about 15 characters per second: vowels become
  tones, consonants short noise bursts, spaces and punctuation pauses.
- face swap: the uploaded face, cut to an oval, composed onto the target image
  (PNG) or onto the frames of the target clip (MP4 as long as the clip).
- lip sync: the uploaded image (or the frames of the clip) with a mouth whose
  opening follows the loudness of the uploaded audio, and that audio as the
  MP4's AAC track: the video lasts as long as the audio.
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import itertools
import math
import random
import struct
import textwrap
import wave
from array import array
from collections.abc import Iterable, Iterator, Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from workroom_app.generation import media, uploads

RGB = tuple[int, int, int]

LABEL = "Rendered by Workroom local renderer"
IMAGE_SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}
VIDEO_HEIGHTS = {"480p": 480, "720p": 720, "1080p": 1080, "4K": 2160}
# Video frames are kept small so a render takes well under a second per video second.
PREVIEW_MAX_WIDTH = 480
FPS = 8
LOOP_SECONDS = 10  # the longest part of a lip sync's source clip kept to loop under the audio
CHARS_PER_SECOND = 15
SAMPLE_RATE = 16000


def _seed(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=max(8, size))
    except TypeError:  # very old Pillow without scalable default font
        return ImageFont.load_default()


def _palette(rng: random.Random, n: int = 6) -> list[tuple[int, int, int]]:
    base = rng.random()
    colours = []
    for i in range(n):
        h = (base + i / n + rng.uniform(-0.05, 0.05)) % 1.0
        colours.append(_hsv(h, rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95)))
    return colours


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _caption(draw: ImageDraw.ImageDraw, w: int, h: int, text: str, extra: str = "") -> None:
    """Prompt text (wrapped) at the top, the renderer label at the bottom, on bands
    so they stay readable over any background."""
    size = max(10, w // 32)
    font = _font(size)
    lines = textwrap.wrap(text, width=max(12, int(w / (size * 0.55))))[:6] if text else []
    if lines:
        band = int(size * 1.3 * len(lines) + size)
        draw.rectangle([0, 0, w, band], fill=(0, 0, 0))
        for i, line in enumerate(lines):
            draw.text(
                (size // 2, size // 2 + int(i * size * 1.3)), line, fill=(255, 255, 255), font=font
            )
    small = _font(max(9, w // 48))
    label = LABEL + (f" · {extra}" if extra else "")
    band_h = max(14, w // 30)
    draw.rectangle([0, h - band_h, w, h], fill=(20, 20, 20))
    draw.text((band_h // 3, h - band_h + band_h // 6), label, fill=(255, 220, 90), font=small)


def _shapes(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    w: int,
    h: int,
    colours: Sequence[RGB],
    shift: float = 0.0,
) -> None:
    for i in range(14):
        c = colours[i % len(colours)]
        cx = (rng.uniform(0, w) + shift * w * rng.uniform(-0.2, 0.2)) % w
        cy = rng.uniform(0, h)
        r = rng.uniform(0.04, 0.22) * min(w, h)
        kind = rng.randrange(3)
        box = [cx - r, cy - r, cx + r, cy + r]
        if kind == 0:
            draw.ellipse(box, fill=c)
        elif kind == 1:
            draw.rectangle(box, fill=c)
        else:
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=c)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_image(
    prompt: str, resolution: str = "1K", count: int = 1, model: str = ""
) -> list[tuple[bytes, str]]:
    """`count` PNG files, each a variant of the prompt at the full requested size."""
    side = IMAGE_SIZES.get(resolution, 1024)
    count = max(1, min(4, int(count or 1)))
    out = []
    for i in range(count):
        rng = _seed("image", prompt, model, i)
        colours = _palette(rng)
        img = Image.new("RGB", (side, side), colours[0])
        draw = ImageDraw.Draw(img)
        _shapes(draw, rng, side, side, colours[1:])
        _caption(draw, side, side, prompt, f"{model} {resolution} #{i + 1} of {count}")
        out.append((_png(img), "image/png"))
    return out


def _preview_size(resolution: str) -> tuple[int, int]:
    h = VIDEO_HEIGHTS.get(resolution, 720)
    w = h * 16 // 9
    scale = min(1.0, PREVIEW_MAX_WIDTH / w)
    return max(16, int(w * scale)) // 2 * 2, max(16, int(h * scale)) // 2 * 2


def _mp4(frames: Iterable[Image.Image], size: tuple[int, int], audio: array | None = None) -> bytes:
    return media.encode_mp4(frames, size, FPS, audio=audio)


def render_video(
    prompt: str, resolution: str = "720p", duration: float = 5, model: str = ""
) -> list[tuple[bytes, str]]:
    w, h = _preview_size(resolution)
    n = max(1, int(round(float(duration or 1) * FPS)))
    rng = _seed("video", prompt, model)
    colours = _palette(rng, 8)
    shapes = [
        (
            rng.uniform(0, w),
            rng.uniform(0, h),
            rng.uniform(0.05, 0.2) * h,
            rng.uniform(-3, 3),
            rng.uniform(-2, 2),
            c,
        )
        for c in colours[1:] * 2
    ]

    def frames() -> Iterator[Image.Image]:  # drawn one at a time as the encoder takes them
        for f in range(n):
            img = Image.new("RGB", (w, h), colours[0])
            draw = ImageDraw.Draw(img)
            for x, y, r, dx, dy, c in shapes:
                cx, cy = (x + dx * f * 4) % w, (y + dy * f * 4) % h
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
            _caption(draw, w, h, prompt, f"{model} {resolution} {f / FPS:.1f}s")
            yield img

    return [(_mp4(frames(), (w, h)), "video/mp4")]


def _char_samples(ch: str) -> bytes:
    n = SAMPLE_RATE // CHARS_PER_SECOND
    low = ch.lower()
    if low in "aeiouy":
        freq = 180 + 40 * "aeiouy".index(low)
        fade = lambda i: min(1.0, i / 200, (n - i) / 200)  # noqa: E731 - avoids clicks
        vals = [
            int(9000 * fade(i) * math.sin(2 * math.pi * freq * i / SAMPLE_RATE)) for i in range(n)
        ]
    elif low.isalnum():
        rng = _seed("consonant", low)
        burst = n // 2
        vals = [
            int(rng.uniform(-3500, 3500) * (1 - i / burst)) if i < burst else 0 for i in range(n)
        ]
    else:
        vals = [0] * n
    return struct.pack(f"<{n}h", *vals)


def render_voiceover(text: str, model: str = "") -> list[tuple[bytes, str]]:
    text = text or " "
    cache: dict[str, bytes] = {}
    chunks = []
    for ch in text:
        if ch not in cache:
            cache[ch] = _char_samples(ch)
        chunks.append(cache[ch])
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(b"".join(chunks))
    return [(buf.getvalue(), "audio/wav")]


# ------------------------------------------------------------------ uploads


def decode_data_uri(uri: object) -> tuple[bytes, str] | None:
    if not isinstance(uri, str) or not uri.startswith("data:") or "," not in uri:
        return None
    header, payload = uri.split(",", 1)
    mime = header[5:].split(";")[0]
    try:
        return base64.b64decode(payload, validate=True), mime
    except ValueError:
        return None


def _frames(
    data: bytes | None, mime: str, size: tuple[int, int], limit: int
) -> tuple[list[Image.Image], str]:
    """RGB frames of an uploaded image or clip, fitted to `size`, sampled at FPS (clips are
    decoded with PyAV: MP4, MOV, WebM, animated GIF). A file that cannot be decoded gives a
    plain frame that says so."""
    note = ""
    frames: list[Image.Image] = []
    if data:
        if mime.startswith("video/") or mime == "image/gif":
            try:
                frames = media.video_frames(data, size, FPS, limit)
            except media.MediaError:
                frames = []
        if not frames:
            try:
                with Image.open(io.BytesIO(data)) as src:
                    frames = [_fit(src.convert("RGB"), size)]
            except Exception:  # noqa: BLE001 - Pillow raises many kinds for a bad file
                frames = []
    if not frames:
        img = Image.new("RGB", size, (60, 60, 70))
        ImageDraw.Draw(img).text(
            (10, size[1] // 2),
            f"{mime or 'clip'}: not decodable by the local renderer",
            fill=(230, 230, 230),
            font=_font(max(10, size[0] // 40)),
        )
        frames = [img]
        note = "clip not decoded"
    return frames, note


def _frame_stream(
    data: bytes | None, mime: str, size: tuple[int, int], limit: int
) -> tuple[Iterator[Image.Image], str]:
    """(iterator of frames, note): like _frames but decoding a clip one frame at a time."""
    if data and (mime.startswith("video/") or mime == "image/gif"):
        stream = media.iter_video_frames(data, size, FPS, limit)
        try:
            first = next(stream)
        except (media.MediaError, StopIteration):
            pass
        else:
            return itertools.chain([first], stream), ""
    frames, note = _frames(data, mime, size, 1)  # a picture, or the labelled "not decoded" frame
    return iter(frames), note


def _clip_seconds(data: bytes | None, mime: str) -> float | None:
    """How long an uploaded clip plays (None for a still picture or an unreadable file)."""
    if not data:
        return None
    ext = uploads.sniff(data)
    if ext is None or not (mime.startswith("video/") or ext == "gif"):
        return None
    return uploads.media_seconds_of_bytes(data, ext) or None


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.fit(img, size)


def _face_cutout(data: bytes | None, diameter: int) -> tuple[Image.Image, Image.Image]:
    face = Image.new("RGB", (diameter, diameter), (200, 170, 150))
    if data:
        try:
            with Image.open(io.BytesIO(data)) as src:
                face = _fit(src.convert("RGB"), (diameter, diameter))
        except Exception:  # noqa: BLE001 - Pillow raises many kinds for a bad file
            pass
    mask = Image.new("L", (diameter, diameter), 0)
    ImageDraw.Draw(mask).ellipse([0, 0, diameter - 1, diameter - 1], fill=255)
    return face, mask


def render_face_swap(
    inputs: dict, mode: str = "image", resolution: str = "720p", duration: float = 3
) -> list[tuple[bytes, str]]:
    face = decode_data_uri(inputs.get("face"))
    target = decode_data_uri(inputs.get("target"))
    if mode == "video":
        size = _preview_size(resolution)
        # As long as the target clip (what it was priced by); the duration asked for otherwise.
        seconds = _clip_seconds(target[0], target[1]) if target else None
        n = max(1, int(math.ceil(float(seconds or duration or 1) * FPS - 1e-6)))
    else:
        size = (1024, 1024)
        if target:
            try:
                with Image.open(io.BytesIO(target[0])) as t:
                    scale = min(1.0, 1536 / max(t.size))
                    size = (max(16, int(t.size[0] * scale)), max(16, int(t.size[1] * scale)))
            except Exception:  # noqa: BLE001 - Pillow raises many kinds for a bad file
                pass
        n = 1
    source, note = _frame_stream(
        target[0] if target else None, target[1] if target else "", size, n
    )
    d = max(16, min(size) // 3)
    cut, mask = _face_cutout(face[0] if face else None, d)

    def frames() -> Iterator[Image.Image]:
        last = next(source)  # _frame_stream gives at least one frame
        for i in range(n):
            if i:
                last = next(source, None) or last  # a clip shorter than asked holds its last
            img = last.copy()
            bob = int(math.sin(i / FPS * 2 * math.pi) * d * 0.05)
            img.paste(cut, ((size[0] - d) // 2, size[1] // 6 + bob), mask)
            _caption(
                ImageDraw.Draw(img),
                size[0],
                size[1],
                "",
                "face swap" + (f", {note}" if note else ""),
            )
            yield img

    if mode == "video":
        return [(_mp4(frames(), size), "video/mp4")]
    return [(_png(next(frames())), "image/png")]


def audio_envelope(samples: array, n: int) -> list[float]:
    """Loudness (0-1) of decoded audio samples for n video frames."""
    return media.loudness(samples, n)


def _audio_samples(audio: tuple[bytes, str] | None) -> array | None:
    """The uploaded audio decoded with PyAV (any accepted format), or None when there is none
    or it cannot be decoded."""
    if not audio:
        return None
    try:
        samples = media.decode_audio(audio[0])
    except media.MediaError:
        return None
    return samples or None


def render_lip_sync(
    inputs: dict, resolution: str = "720p", duration: float = 3
) -> list[tuple[bytes, str]]:
    source = decode_data_uri(inputs.get("source"))
    audio = decode_data_uri(inputs.get("audio"))
    size = _preview_size(resolution)
    samples = _audio_samples(audio)
    # The video lasts as long as the audio it carries.
    seconds = len(samples) / media.AUDIO_RATE if samples is not None else float(duration or 1)
    n = max(1, int(math.ceil(seconds * FPS - 1e-6)))
    # A clip plays (looping when shorter than the audio); at most LOOP_SECONDS of it is kept.
    frames, note = _frames(
        source[0] if source else None, source[1] if source else "", size, min(n, LOOP_SECONDS * FPS)
    )
    if samples is not None:
        env = audio_envelope(samples, n)
    else:
        rng = _seed("envelope", hashlib.sha256(audio[0] if audio else b"").hexdigest())
        env = [abs(math.sin(i * 0.9)) * rng.uniform(0.5, 1.0) for i in range(n)]
        note = ", ".join(filter(None, [note, "audio not decoded"]))
    w, h = size
    label = "lip sync" + (f", {note}" if note else "")
    cx, cy = w // 2, int(h * 0.62)

    def out() -> Iterator[Image.Image]:
        for i in range(n):
            img = frames[i % len(frames)].copy()
            draw = ImageDraw.Draw(img)
            _caption(draw, w, h, "", label)
            mouth_h = int(4 + env[i] * h * 0.12)
            draw.rounded_rectangle(
                [cx - w // 10, cy - mouth_h // 2, cx + w // 10, cy + mouth_h // 2],
                radius=4,
                fill=(150, 20, 40),
                outline=(255, 255, 255),
            )
            yield img

    return [(_mp4(out(), size, audio=samples), "video/mp4")]


def render(model: str, inputs: dict) -> list[tuple[bytes, str]]:
    """Dispatch on the prediction's model ("<feature>/<model>"): the files, in order."""
    feature, _, name = str(model).partition("/")
    if feature == "image":
        return render_image(
            str(inputs.get("prompt", "")),
            str(inputs.get("resolution", "1K")),
            int(inputs.get("count", 1) or 1),
            name,
        )
    if feature == "video":
        return render_video(
            str(inputs.get("prompt", "")),
            str(inputs.get("resolution", "720p")),
            float(inputs.get("duration", 5) or 5),
            name,
        )
    if feature == "voiceover":
        return render_voiceover(str(inputs.get("text", "")), name)
    if feature == "face_swap":
        return render_face_swap(
            inputs,
            str(inputs.get("mode") or name or "image"),
            str(inputs.get("resolution", "720p")),
            float(inputs.get("duration", 3) or 3),
        )
    if feature == "lip_sync":
        return render_lip_sync(
            inputs, str(inputs.get("resolution", "720p")), float(inputs.get("duration", 3) or 3)
        )
    raise ValueError(f"unknown model {model!r}")
