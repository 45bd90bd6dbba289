"""Reading and writing audio and video with PyAV (FFmpeg's libraries, shipped in the `av` wheel).

Two users of this module:
- uploads.py asks how long an uploaded clip or audio file is, on the server, when it arrives:
  that length (never a number from the browser) is what a lip sync or a face swap video is
  priced by;
- renderers.py decodes uploaded clips and audio and writes its MP4 files (H.264 video, AAC audio).

No numpy: PyAV's frames convert to and from Pillow images and raw bytes, which is all we need.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.stream import Stream
from PIL import Image, ImageOps

AUDIO_RATE = 16000  # what decoded audio is resampled to (mono, signed 16-bit)
AAC_RATE = 44100
# A container can round its length to the millisecond: 4.0004 s is billed as 4 s, not 5.
BILLING_TOLERANCE = 0.005


class MediaError(ValueError):
    """The bytes are not a clip or audio file FFmpeg can read."""


@dataclass(frozen=True)
class MediaInfo:
    seconds: float  # 0 for a still image
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    frames: int = 0  # video frames, when the container says


def billed_seconds(seconds: float) -> int:
    """Whole seconds charged for a clip of this length: rounded up, at least one."""
    return max(1, math.ceil(seconds - BILLING_TOLERANCE))


def seconds_text(seconds: float) -> str:
    """ "4.0 s", "61.2 s": how long a file is, to the tenth of a second, in the unit the
    catalog's limits use."""
    return f"{seconds:,.1f} s"


def _open(data: bytes) -> InputContainer:
    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(str(exc)) from None


def _stream_seconds(stream: Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def probe(data: bytes) -> MediaInfo:
    """How long the clip or audio is and what it holds. Reads the header, and decodes the
    packets only when the header does not say (a raw MP3 stream, some WebM files)."""
    with _open(data) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        if video is None and audio is None:
            raise MediaError("no audio or video stream")
        lengths = [
            s
            for s in (
                _stream_seconds(video) if video else None,
                _stream_seconds(audio) if audio else None,
            )
            if s
        ]
        seconds = max(lengths) if lengths else None
        if seconds is None and container.duration is not None:
            seconds = container.duration / av.time_base
        if seconds is None or seconds <= 0:
            seconds = _measure(container)
        width = video.codec_context.width if video is not None else 0
        height = video.codec_context.height if video is not None else 0
        return MediaInfo(
            seconds=float(seconds),
            has_video=video is not None,
            has_audio=audio is not None,
            width=int(width or 0),
            height=int(height or 0),
            frames=int(video.frames or 0) if video is not None else 0,
        )


def _measure(container: InputContainer) -> float:
    """Length from the packets themselves (end of the last one)."""
    end = 0.0
    for packet in container.demux():
        if packet.pts is None or packet.time_base is None:
            continue
        finish = packet.pts + (packet.duration or 0)
        end = max(end, float(finish * packet.time_base))
    if end <= 0:
        raise MediaError("the file holds no playable audio or video")
    return end


# ------------------------------------------------------------------ decoding


def decode_audio(data: bytes, rate: int = AUDIO_RATE, limit_seconds: float | None = None) -> array:
    """The first audio stream as mono signed 16-bit samples at `rate` (an array('h'))."""
    out = array("h")
    limit = None if limit_seconds is None else int(limit_seconds * rate)
    with _open(data) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    out.frombytes(bytes(converted.planes[0])[: converted.samples * 2])
                if limit is not None and len(out) >= limit:
                    break
            for converted in resampler.resample(None):
                out.frombytes(bytes(converted.planes[0])[: converted.samples * 2])
        except av.FFmpegError as exc:
            if not out:
                raise MediaError(str(exc)) from None
    return out if limit is None else out[:limit]


def loudness(samples: array, n: int) -> list[float]:
    """Loudness (RMS, 0-1 relative to the loudest) of `samples` cut into n equal windows."""
    if n <= 0:
        return []
    if not samples:
        return [0.0] * n
    per = len(samples) / n
    env = []
    for i in range(n):
        chunk = samples[int(i * per) : max(int(i * per) + 1, int((i + 1) * per))]
        step = max(1, len(chunk) // 400)  # a few hundred samples measure a window well enough
        picked = chunk[::step]
        env.append(math.sqrt(sum(s * s for s in picked) / len(picked)) / 32768 if picked else 0.0)
    peak = max(env)
    return [v / peak for v in env] if peak > 0 else env


def video_frames(data: bytes, size: tuple[int, int], fps: int, limit: int) -> list[Image.Image]:
    """Frames of the first video stream sampled at `fps` (at most `limit`), fitted to `size`."""
    return list(iter_video_frames(data, size, fps, limit))


def iter_video_frames(
    data: bytes, size: tuple[int, int], fps: int, limit: int
) -> Iterator[Image.Image]:
    """video_frames() one at a time, so a long clip never sits in memory whole. Raises
    MediaError before the first frame when the clip cannot be decoded."""
    container = _open(data)
    try:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = container.decode(stream)
        first = True
        next_time, count = 0.0, 0
        while count < limit:
            try:
                frame = next(decoded)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                if first:
                    raise MediaError(str(exc)) from None
                break  # a damaged tail: keep what played
            t = float(frame.time) if frame.time is not None else count / fps
            if t + 1e-6 < next_time:
                continue
            first = False
            count += 1
            next_time += 1 / fps
            yield ImageOps.fit(frame.to_image().convert("RGB"), size)
        if first:
            raise MediaError("the clip has no frames")
    finally:
        container.close()


# ------------------------------------------------------------------ encoding


def encode_mp4(
    frames: Iterable[Image.Image],
    size: tuple[int, int],
    fps: int,
    *,
    audio: array | None = None,
    audio_rate: int = AUDIO_RATE,
) -> bytes:
    """An MP4: H.264 video (yuv420p, plays in every browser) and, with `audio` (mono s16
    samples), an AAC track of exactly that audio."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = size
        vstream.pix_fmt = "yuv420p"
        # ultrafast: renders must stay quick on a shared 2-core machine; flat drawings compress well anyway.
        vstream.options = {"preset": "ultrafast", "crf": "23"}
        vstream.codec_context.time_base = Fraction(1, fps)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=AAC_RATE)
            astream.layout = "mono"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image.convert("RGB"))
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        if astream is not None and audio:
            _encode_audio(container, astream, audio, audio_rate)
    return buf.getvalue()


def _encode_audio(
    container: OutputContainer, stream: AudioStream, samples: array, rate: int
) -> None:
    chunk = 4096
    pts = 0
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=AAC_RATE)
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(part))
        frame.planes[0].update(part.tobytes())
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = Fraction(1, rate)
        pts += len(part)
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                container.mux(packet)
    for converted in resampler.resample(None):
        for packet in stream.encode(converted):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
