"""Small real media files for tests: a WAV tone and H.264 MP4 clips (made with PyAV)."""

from __future__ import annotations

import io
import math
import struct
import wave

from PIL import Image, ImageDraw

from workroom_app.generation import media


def tone_wav(seconds: float = 4.0, rate: int = 8000, *, rising: bool = True) -> bytes:
    """A 220 Hz tone, growing louder from silence when `rising` (so loudness changes over time)."""
    n = int(rate * seconds)
    samples = [
        int(20000 * ((i / n) if rising else 1.0) * math.sin(2 * math.pi * 220 * i / rate))
        for i in range(n)
    ]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{n}h", *samples))
    return buf.getvalue()


def clip_mp4(seconds: float = 2.0, fps: int = 8, size: tuple[int, int] = (96, 64)) -> bytes:
    """An H.264 MP4 of a moving square, `seconds` long."""
    frames = []
    for i in range(max(1, int(round(seconds * fps)))):
        img = Image.new("RGB", size, (40, 40, 120))
        ImageDraw.Draw(img).rectangle([i % size[0], 10, i % size[0] + 16, 26], fill=(250, 250, 250))
        frames.append(img)
    return media.encode_mp4(frames, size, fps)
