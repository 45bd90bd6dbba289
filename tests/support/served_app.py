"""Serve the real app the way `make run` does (`reflex run --env prod --single-port`) on a free
port, for the browser tests (tests/e2e) and the browser benchmarks: its build, states, media and
log in a folder of the caller's, its database given. The first build is cached under
test-artifacts/e2e-web and copied for later runs (a fresh one takes ~40 s)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB_CACHE = REPO / "test-artifacts" / "e2e-web"
BUN_DIRS = [REPO / ".tools" / "node_modules" / ".bin"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
STARTUP_TIMEOUT_S = 300


def chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def bun_dir() -> Path | None:
    for directory in BUN_DIRS:
        if (directory / "bun").exists():
            return directory
    found = shutil.which("bun")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
            return resp.status == 200 and b'"ok"' in resp.read()
    except OSError:
        return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def reflex_env(bun: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment `reflex run` needs here: bun from .tools, the venv's commands first, no
    update check and no telemetry; plus `extra`."""
    return {
        **os.environ,
        "PATH": f"{bun}:{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "REFLEX_TELEMETRY_ENABLED": "false",
        **(extra or {}),
    }


def serve_prod(app_dir: Path, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`reflex run --env prod --single-port` of the app in `app_dir` on 127.0.0.1:`port`, in a
    process group of its own (stop() ends it and all it started), its output in `log_path`."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "reflex"),
                "run",
                "--env",
                "prod",
                "--single-port",
                "--frontend-port",
                str(port),
                "--backend-port",
                str(port),
                "--backend-host",
                "127.0.0.1",
            ],
            cwd=app_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class AppDidNotStart(RuntimeError):
    def __init__(self, exit_code: int | None, log_tail: str) -> None:
        super().__init__(f"the app did not start (exit {exit_code})")
        self.exit_code = exit_code
        self.log_tail = log_tail


def start_app(
    run_dir: Path,
    database_url: str,
    bun_dir: Path,
    *,
    render_seconds: str,
    timeout_s: float = STARTUP_TIMEOUT_S,
    log_tail_chars: int = 4000,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
    renderer_port: int | None = None,
) -> tuple[str, subprocess.Popen]:
    """Serve the app (`reflex run --env prod --single-port`) on 127.0.0.1 (`port`, or a free
    one) with its build, states, media and log under `run_dir`; returns (url, process) once it
    answers (the caller stops it). If it dies or times out: stops it and raises
    AppDidNotStart with the log's tail."""
    web_dir = run_dir / "web"
    if (WEB_CACHE / "package.json").exists():
        shutil.copytree(WEB_CACHE, web_dir, symlinks=True)
    # The demo history's files were seeded into this test session's media folder
    # (tests/conftest.py): the served app gets its own copy, so its Download links work.
    seeded_media = os.environ.get("WORKROOM_MEDIA_DIR")
    if seeded_media and Path(seeded_media).is_dir():
        shutil.copytree(seeded_media, run_dir / "media", dirs_exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = reflex_env(
        bun_dir,
        {
            "REFLEX_WEB_WORKDIR": str(web_dir),
            "REFLEX_STATES_WORKDIR": str(run_dir / "states"),
            "WORKROOM_DATABASE_URL": database_url,
            "WORKROOM_PUBLIC_URL": url,
            # Per-run outputs and renderer port so parallel runs never collide;
            # fast renders keep the browser tests short.
            "WORKROOM_MEDIA_DIR": str(run_dir / "media"),
            "WORKROOM_LOCAL_PROVIDER_URL": f"http://127.0.0.1:{renderer_port or free_port()}",
            "WORKROOM_LOCAL_RENDER_SECONDS": render_seconds,
            "WORKROOM_WORKER_POLL_INTERVAL": "0.2",
            # Every test's browser comes from 127.0.0.1: one address signing up and logging in
            # dozens of times is this suite, not an attack (the limits are tested on their own).
            "WORKROOM_RATE_LIMIT_LOGIN_PER_ADDRESS": "10000/minute",
            "WORKROOM_RATE_LIMIT_SIGNUP_PER_ADDRESS": "10000/hour",
            **(extra_env or {}),
        },
    )
    log_path = run_dir / "server.log"
    proc = serve_prod(REPO, port, env, log_path)
    deadline = time.monotonic() + timeout_s
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            error = AppDidNotStart(
                proc.poll(), log_path.read_text(errors="replace")[-log_tail_chars:]
            )
            stop(proc)
            raise error
        time.sleep(0.5)
    return url, proc


def save_web_cache(web_dir: Path) -> None:
    partial = WEB_CACHE.with_name(f"e2e-web.{os.getpid()}.tmp")
    try:
        shutil.copytree(web_dir, partial, symlinks=True)
        partial.rename(WEB_CACHE)  # atomic: a parallel run sees all or nothing
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
