"""Serve the real app once per test session and drive it with headless Chromium.

The server is `reflex run --env prod --single-port` (what `make run` starts) on
a free port, against a fresh SQLite database built by the migrations and the
demo seed. Reflex's build and state directories are per run
(REFLEX_WEB_WORKDIR / REFLEX_STATES_WORKDIR), so parallel runs do not clobber
each other or the developer's .web. The first build is cached under
test-artifacts/e2e-web and copied for later runs (a fresh one takes ~40 s).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import served_app
from tests.support.served_app import (
    CHROMIUM_ARGS,
    WEB_CACHE,
    AppDidNotStart,
    bun_dir,
    chromium,
    save_web_cache,
    start_app,
    stop,
)

# What benchmarks/bench_live.py imports from here, under its old names, until it imports
# tests.support.served_app itself (that file is another engineer's for now).
_bun_dir, _free_port, _stop = bun_dir, served_app.free_port, stop


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = chromium()
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


@pytest.fixture(scope="session")
def base_url(chromium_path, e2e_database, tmp_path_factory) -> Iterator[str]:
    bun = bun_dir()
    if bun is None:
        pytest.skip("bun is not installed: run `make setup` (it installs bun into .tools/)")
    run_dir = tmp_path_factory.mktemp("e2e-reflex")
    proc = None
    try:
        try:
            url, proc = start_app(run_dir, e2e_database, bun, render_seconds="1")
        except AppDidNotStart as exc:
            pytest.fail(f"{exc}:\n{exc.log_tail}")
        if not (WEB_CACHE / "package.json").exists():
            save_web_cache(run_dir / "web")
        yield url
    finally:
        if proc is not None:
            stop(proc)


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
