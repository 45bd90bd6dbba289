"""A failing event writes one log line, not a traceback, and at most a few a minute.

Any browser can send any event with any arguments; a forged one usually fails inside Reflex's
argument handling or the handler. Reflex's default handler logs the whole traceback (about 30
lines, with the failing event's data) for each, so a script could fill the disk and bury real
problems. This handler logs one line: the exception type, where it was raised in our code, and
nothing the browser sent; identical lines are rate limited (the count of suppressed ones is
reported with the next line that gets through). The browser gets the same toast as before.
"""

# No `from __future__ import annotations`: Reflex checks the handler's annotations as types.
import logging
import threading
import time
import traceback

import reflex as rx

log = logging.getLogger("workroom.events")

WINDOW_SECONDS = 60.0
LINES_PER_WINDOW = 5

_lock = threading.Lock()
_window_start = 0.0
_lines = 0
_suppressed = 0


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "workroom_app" in f.filename]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"


def log_failure(exc: BaseException) -> bool:
    """Log one line for a failed event unless the rate limit is spent. True when written."""
    global _window_start, _lines, _suppressed
    now = time.monotonic()
    with _lock:
        if now - _window_start > WINDOW_SECONDS:
            _window_start, _lines = now, 0
        if _lines >= LINES_PER_WINDOW:
            _suppressed += 1
            return False
        _lines += 1
        suppressed, _suppressed = _suppressed, 0
    extra = f" ({suppressed} similar lines suppressed)" if suppressed else ""
    log.warning("event failed: %s at %s%s", type(exc).__name__, _where(exc), extra)
    return True


def reset() -> None:
    global _window_start, _lines, _suppressed
    with _lock:
        _window_start, _lines, _suppressed = 0.0, 0, 0


def backend_exception_handler(exception: Exception):
    """rx.App(backend_exception_handler=...): one line in the log, a generic toast in the tab."""
    log_failure(exception)
    return rx.toast.error("Something went wrong. Reload the page and try again.", id="event-failed")
