"""Local renderer media: how long the real files take to make and how much
memory the largest ones need, with PyAV's H.264/AAC encoding, plus how long measuring an upload's
length takes (what the Generate page waits for after a file arrives).

Floor, measured in the same run: encoding the same number of blank frames (the x264 cost alone),
so a figure can be read against what the shared machine gave at that moment.

Run:  .venv/bin/python benchmarks/bench_media.py [--fast]
Prints one line per case and a JSON line; --fast uses shorter media (for a quick check).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from benchmarks._common import load_average  # noqa: E402
from tests.support.media_samples import clip_mp4, tone_wav  # noqa: E402
from workroom_app.generation import media, renderers, uploads  # noqa: E402


def _uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    lip_s, clip_s, video_s = (10, 5, 5) if args.fast else (60, 30, 10)
    face = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 170, 150)).save(face, format="PNG")
    png = face.getvalue()
    audio = tone_wav(float(lip_s), rate=16000)
    clip = clip_mp4(float(clip_s), size=(320, 180))
    cases = [
        (
            f"video {video_s} s 1080p",
            lambda: renderers.render(
                "video/veo3", {"prompt": "waves", "resolution": "1080p", "duration": video_s}
            ),
        ),
        (
            f"lip sync {lip_s} s, picture + WAV",
            lambda: renderers.render(
                "lip_sync/standard",
                {
                    "resolution": "720p",
                    "source": _uri(png, "image/png"),
                    "audio": _uri(audio, "audio/wav"),
                },
            ),
        ),
        (
            f"face swap video {clip_s} s clip",
            lambda: renderers.render(
                "face_swap/video",
                {
                    "mode": "video",
                    "resolution": "720p",
                    "face": _uri(png, "image/png"),
                    "target": _uri(clip, "video/mp4"),
                },
            ),
        ),
        (
            "4 images 1K",
            lambda: renderers.render(
                "image/flux_pro", {"prompt": "x", "resolution": "1K", "count": 4}
            ),
        ),
    ]
    results = {"load_average_start": round(load_average(), 2), "fast": args.fast, "cases": {}}
    print(f"load average at start: {results['load_average_start']}")
    blank = [Image.new("RGB", (480, 270), (40, 40, 40))] * (lip_s * renderers.FPS)
    _out, floor_ms = _timed(lambda: media.encode_mp4(blank, (480, 270), renderers.FPS))
    print(f"floor: encode {len(blank)} blank 480x270 frames: {floor_ms:.0f} ms")
    results["floor_encode_ms"] = round(floor_ms, 1)
    for name, fn in cases:
        files, ms = _timed(fn)
        size = sum(len(d) for d, _m in files)
        print(f"{name}: {ms:.0f} ms, {len(files)} file(s), {size / 1024:.0f} KB")
        results["cases"][name] = {"ms": round(ms, 1), "files": len(files), "kb": round(size / 1024)}
    for name, data, ext in [(f"WAV {lip_s} s", audio, "wav"), (f"MP4 {clip_s} s", clip, "mp4")]:
        seconds, ms = _timed(lambda data=data, ext=ext: uploads.media_seconds_of_bytes(data, ext))
        print(f"measure upload length, {name}: {ms:.1f} ms ({seconds:.2f} s)")
        results["cases"][f"measure {name}"] = {"ms": round(ms, 2)}
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    results["load_average_end"] = round(load_average(), 2)
    print(
        f"peak memory of the process: {results['max_rss_mb']} MB; load average at end: {results['load_average_end']}"
    )
    print(json.dumps({"benchmark": "media", **results}))


if __name__ == "__main__":
    main()
