"""Serve the real app once per test session and drive it with headless Chromium.

The server is `reflex run --env prod --single-port` (what `make run` starts) on
a free port, against a fresh SQLite database built by the migrations and the
demo seed. Reflex's build and state directories are per run
(REFLEX_WEB_WORKDIR / REFLEX_STATES_WORKDIR), so parallel runs do not clobber
each other or the developer's .web. The first build is cached under
test-artifacts/e2e-web and copied for later runs (a fresh one takes ~40 s).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _bun_dir() -> Path | None:
    for directory in BUN_DIRS:
        if (directory / "bun").exists():
            return directory
    found = shutil.which("bun")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
            return resp.status == 200 and b'"ok"' in resp.read()
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        pytest.skip(
            "Chromium is not installed (/usr/bin/chromium or `chromium` on PATH); "
            "install it with `apt-get install chromium` to run the browser tests"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def e2e_database(tmp_path_factory) -> str:
    """A migrated, demo-seeded SQLite database for the served app."""
    from workroom_app import db
    from workroom_app.schema import upgrade
    from workroom_app.seed import seed_demo

    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'workroom.db'}"
    engine = db.make_engine(url)
    upgrade(engine)
    seed_demo(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def app_engine(e2e_database):
    """An engine on the served app's database, for checking what the browser shows."""
    from workroom_app import db

    engine = db.make_engine(e2e_database)
    yield engine
    engine.dispose()


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
) -> tuple[str, subprocess.Popen]:
    """Serve the app (`reflex run --env prod --single-port`) on a free 127.0.0.1 port with
    its build, states, media and log under `run_dir`; returns (url, process) once it
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
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PATH": f"{bun_dir}:{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_WEB_WORKDIR": str(web_dir),
        "REFLEX_STATES_WORKDIR": str(run_dir / "states"),
        "WORKROOM_DATABASE_URL": database_url,
        "WORKROOM_PUBLIC_URL": url,
        # Per-run outputs and renderer port so parallel runs never collide;
        # fast renders keep the browser tests short.
        "WORKROOM_MEDIA_DIR": str(run_dir / "media"),
        "WORKROOM_LOCAL_PROVIDER_URL": f"http://127.0.0.1:{_free_port()}",
        "WORKROOM_LOCAL_RENDER_SECONDS": render_seconds,
        "WORKROOM_WORKER_POLL_INTERVAL": "0.2",
        # Every test's browser comes from 127.0.0.1: one address signing up and logging in
        # dozens of times is this suite, not an attack (the limits are tested on their own).
        "WORKROOM_RATE_LIMIT_LOGIN_PER_ADDRESS": "10000/minute",
        "WORKROOM_RATE_LIMIT_SIGNUP_PER_ADDRESS": "10000/hour",
        **(extra_env or {}),
    }
    log_path = run_dir / "server.log"
    reflex = REPO / ".venv" / "bin" / "reflex"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(reflex),
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
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            error = AppDidNotStart(
                proc.poll(), log_path.read_text(errors="replace")[-log_tail_chars:]
            )
            _stop(proc)
            raise error
        time.sleep(0.5)
    return url, proc


@pytest.fixture(scope="session")
def base_url(chromium_path, e2e_database, tmp_path_factory) -> Iterator[str]:
    bun_dir = _bun_dir()
    if bun_dir is None:
        pytest.skip("bun is not installed: run `make setup` (it installs bun into .tools/)")
    run_dir = tmp_path_factory.mktemp("e2e-reflex")
    proc = None
    try:
        try:
            url, proc = start_app(run_dir, e2e_database, bun_dir, render_seconds="1")
        except AppDidNotStart as exc:
            pytest.fail(f"{exc}:\n{exc.log_tail}")
        if not (WEB_CACHE / "package.json").exists():
            _save_web_cache(run_dir / "web")
        yield url
    finally:
        if proc is not None:
            _stop(proc)


def _save_web_cache(web_dir: Path) -> None:
    partial = WEB_CACHE.with_name(f"e2e-web.{os.getpid()}.tmp")
    try:
        shutil.copytree(web_dir, partial, symlinks=True)
        partial.rename(WEB_CACHE)  # atomic: a parallel run sees all or nothing
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Module-scoped on purpose: Playwright's sync API keeps an asyncio loop
    running in this thread while it is open, which would break later tests
    that call asyncio.run()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh browser profile (no cookies) per test."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_selector("[data-testid=balance]")


def confirmation_link(engine, email: str) -> str:
    """The link in the newest confirmation email to `email` (the outbox, no SMTP here)."""
    from sqlmodel import select

    from workroom_app.db import read_session
    from workroom_app.models import OutboxEmail

    with read_session(engine) as s:
        mail = s.exec(
            select(OutboxEmail)
            .where(OutboxEmail.to_address == email)
            .order_by(OutboxEmail.id.desc())
        ).first()
    assert mail is not None, "no confirmation email in the outbox"
    found = re.search(r"https?://\S+confirm\S*", mail.body_text)
    assert found, mail.body_text
    return found.group(0)
