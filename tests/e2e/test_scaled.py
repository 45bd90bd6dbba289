"""The scaled deployment (`make run-scaled`, docs/deploy.md) in Chromium: two web workers sharing
tabs through Reflex's Redis state manager, PostgreSQL, and the generation worker as its own
process. Whichever web worker serves a tab: log-in, the header balance, a generation and the live
push (a change on commit, through PostgreSQL NOTIFY) all work.

Needs WORKROOM_TEST_POSTGRES_URL and a Redis server (WORKROOM_TEST_REDIS_URL, default
redis://127.0.0.1:6379/3); skips with the reason otherwise.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from tests.support.browser import log_in
from tests.support.served_app import REPO, AppDidNotStart, bun_dir, free_port, start_app, stop

pytestmark = pytest.mark.browser

REDIS_URL = os.environ.get("WORKROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
PG_URL = os.environ.get("WORKROOM_TEST_POSTGRES_URL", "")


def _skip_reason() -> str | None:
    if not PG_URL:
        return "WORKROOM_TEST_POSTGRES_URL is not set"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {REDIS_URL} is not reachable: {exc.__class__.__name__}"
    return None


@pytest.fixture(scope="module")
def scaled(chromium_path, tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bun = bun_dir()
    if bun is None:
        pytest.skip("bun is not installed: run `make setup`")
    from workroom_app import db
    from workroom_app.schema import upgrade
    from workroom_app.seed import seed_demo

    admin = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"wr_e2e_scaled_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False).replace("+psycopg", "")
    engine = db.make_engine(url)
    upgrade(engine)
    seed_demo(engine)
    run_dir = tmp_path_factory.mktemp("e2e-scaled")
    shared = {
        "WORKROOM_DATABASE_URL": url,
        "WORKROOM_MEDIA_DIR": str(run_dir / "media"),
        "WORKROOM_LOCAL_PROVIDER_URL": f"http://127.0.0.1:{free_port()}",
        "WORKROOM_LOCAL_RENDER_SECONDS": "0.5",
    }
    worker_log = open(run_dir / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "workroom"), "worker"],
        cwd=REPO,
        env={**os.environ, **shared},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc = None
    try:
        try:
            base, proc = start_app(
                run_dir,
                url,
                bun,
                render_seconds="0.5",
                extra_env={
                    **shared,
                    "REFLEX_REDIS_URL": REDIS_URL,
                    "GRANIAN_WORKERS": "2",
                    "WORKROOM_RUN_WORKER": "0",
                },
            )
        except AppDidNotStart as exc:
            pytest.fail(f"{exc}:\n{exc.log_tail}")
        yield base, engine, proc
    finally:
        if proc is not None:
            stop(proc)
        stop(worker)
        worker_log.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _web_workers(proc: subprocess.Popen) -> int:
    """Processes serving the app under `reflex run` (granian's workers are its children)."""
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    return len(out.split())


def test_two_web_workers_share_tabs_and_push_on_commit(scaled, browser):
    import urllib.request

    from workroom_app.billing import accounts, ledger
    from workroom_app.db import write_session

    base, engine, proc = scaled
    assert _web_workers(proc) == 2
    with urllib.request.urlopen(f"{base}/api/health", timeout=5) as resp:
        assert b'"ok"' in resp.read()  # the separate worker reports in
    email, password = f"scaled-{uuid.uuid4().hex[:8]}@example.com", "a-long-password"
    with write_session(engine) as s:
        account_id = accounts.sign_up(s, email, password, "Scaled").id
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    try:
        page = context.new_page()
        log_in(page, email, password)
        # Several tabs: their sockets land on either web worker.
        tabs = [page]
        for path in ("/home", "/usage", "/generate"):
            tab = context.new_page()
            tab.goto(path)
            expect(tab.get_by_test_id("balance")).to_have_text("50 credits")
            tabs.append(tab)
        # A generation on one tab: charged, run by the separate worker, shown everywhere.
        gen = tabs[-1]
        gen.get_by_test_id("prompt-input").fill("a lighthouse at dusk")
        gen.get_by_test_id("generate-button").click()
        expect(gen.get_by_test_id("history-row").first).to_contain_text("Done", timeout=30_000)
        with write_session(engine) as s:
            after_generation = ledger.balance(s, account_id)
        assert after_generation < 50
        for tab in tabs:
            expect(tab.get_by_test_id("balance")).to_have_text(
                f"{after_generation} credits", timeout=5_000
            )
        # A change made outside any tab (a staff adjustment): pushed on commit to every tab.
        with write_session(engine) as s:
            ledger.staff_adjust(
                s,
                account_id,
                25,
                reason="goodwill",
                actor_id=account_id,
                idempotency_key=f"scaled-{account_id}",
            )
        for tab in tabs:
            expect(tab.get_by_test_id("balance")).to_have_text(
                f"{after_generation + 25} credits", timeout=5_000
            )
    finally:
        context.close()
