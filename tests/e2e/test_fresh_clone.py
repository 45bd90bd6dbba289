"""A new user's first command works: clone the repository into an empty folder,
run the README's run command exactly as written (on a free port), wait for the
app, and log in as the demo user.

This is the slowest test (it installs a fresh virtualenv and builds the
frontend: a few minutes), and the one that caught `make run` failing on a fresh
clone while every other test was green. Only committed files take part: that is
what a new user gets.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.served_app import CHROMIUM_ARGS, chromium, free_port, healthy, stop

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
# pip install + bun + the first production build of the frontend.
FIRST_RUN_TIMEOUT_S = 900

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def readme_commands() -> tuple[str, str]:
    """The two commands of the README's "Two commands" block (run, test), with
    their trailing comments removed."""
    text = README.read_text()
    section = text.split("## Two commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README: the 'Two commands' section has no ```sh block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) == 2, f"README should give exactly two commands, found {commands}"
    return commands[0], commands[1]


def _clean_env(port: int) -> dict[str, str]:
    """The environment of a new user's shell: none of this test run's Workroom
    or Reflex settings, no virtualenv, and the given port."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WORKROOM_", "REFLEX_", "VIRTUAL_ENV", "PYTEST"))
    }
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["PORT"] = str(port)
    # The local renderer's default port may be taken by a developer's own
    # `make run`; a new user has nothing there. Everything else is default.
    env["WORKROOM_LOCAL_PROVIDER_URL"] = f"http://127.0.0.1:{free_port()}"
    return env


def test_readme_run_command_serves_the_app_from_a_fresh_clone(tmp_path):
    run_command, _test_command = readme_commands()
    clone = tmp_path / "workroom"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert not (clone / "var").exists(), "a fresh clone must start without var/"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", run_command],
            cwd=clone,
            env=_clean_env(port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + FIRST_RUN_TIMEOUT_S
        while not healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"`{run_command}` exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`{run_command}` not healthy after {FIRST_RUN_TIMEOUT_S}s:\n{_tail(log_path)}"
                )
            time.sleep(2)

        with urllib.request.urlopen(f"{url}/login", timeout=30) as resp:
            assert resp.status == 200
        output = log_path.read_text(errors="replace")
        assert "demo@workroom.test" in output, "the run command prints the demo logins"
        assert f"localhost:{port}" in output, "the run command prints the URL it serves"
        _log_in_as_demo(url)
    finally:
        stop(proc)


def _log_in_as_demo(url: str) -> None:
    chromium_path = chromium()
    if chromium_path is None:
        pytest.skip("Chromium is not installed: health and /login answered; log-in not tried")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(base_url=url)
            page.set_default_timeout(60_000)
            page.goto("/login")
            page.fill("#email", "demo@workroom.test")
            page.fill("#password", "workroom-demo")
            page.press("#password", "Enter")
            balance = page.wait_for_selector("[data-testid=balance]")
            assert re.search(r"\d", balance.inner_text())
        finally:
            browser.close()


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
