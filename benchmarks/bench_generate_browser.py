"""Generation page speed in Chromium.

1. Cost update: inside the page, from the input/change event on a control to the Generate
   button's new text (performance.now() before dispatching the event, a MutationObserver on the
   button label for the end), over many changes of model, resolution, duration, count and text.
   Goal: p95 <= 5 ms.
2. Click on Generate to the new balance on screen (MutationObserver on the header balance),
   with the local provider. Goal: p95 <= 150 ms.

    .venv/bin/python benchmarks/bench_generate_browser.py            # starts its own app
    .venv/bin/python benchmarks/bench_generate_browser.py --url http://127.0.0.1:3000 \
        --email you@example.com --password ...                       # against a running app

Its own app is started like the browser tests' fixture (tests/e2e/conftest.py): `reflex run
--env prod --single-port` on a free port, a fresh migrated SQLite database, the worker and the
local renderer in the app process. The bench user is on the Free plan (no unlimited models, so
every change moves the price) with plenty of credits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._common import cpu_model  # noqa: E402
from tests.support.served_app import CHROMIUM_ARGS, AppDidNotStart, bun_dir, stop  # noqa: E402
from tests.support.served_app import start_app as start_e2e_app  # noqa: E402

PASSWORD = "bench-password-1"

COST_STEP_JS = """
async ([feature, n]) => {
  const form = () => document.querySelector(`form[data-generate-form][data-feature=${feature}]`);
  const samples = [];
  let skipped = 0;
  const visible = (el) => !el.disabled && !el.closest('[data-field]').hidden;
  for (let i = 0; samples.length < n && i < n * 4; i++) {
    const f = form();
    const label = f.querySelector('[data-role=label]');
    const selects = [...f.querySelectorAll('select[data-param]')].filter(visible);
    const text = f.querySelector('textarea[data-param=text]');
    let apply, kind;
    if (text && i % 2 === 0) {
      kind = 'text';
      // Typing in the voiceover text: 100 more characters is one more unit.
      const longer = text.value.length < 4800;
      apply = () => {
        text.value = longer ? text.value + 'x'.repeat(100) : 'x'.repeat(50);
        text.dispatchEvent(new Event('input', {bubbles: true}));
      };
    } else {
      const sel = selects[i % selects.length];
      const options = [...sel.options].filter(o => !o.disabled && o.value !== sel.value);
      if (!options.length) { skipped++; continue; }
      const value = options[i % options.length].value;
      kind = sel.getAttribute('data-param');
      apply = () => { sel.value = value; sel.dispatchEvent(new Event('change', {bubbles: true})); };
    }
    const before = label.textContent;
    const done = new Promise((resolve) => {
      const mo = new MutationObserver(() => {
        if (label.textContent !== before) { mo.disconnect(); resolve(performance.now()); }
      });
      mo.observe(label, {childList: true, characterData: true, subtree: true});
      setTimeout(() => { mo.disconnect(); resolve(null); }, 200);
    });
    const t0 = performance.now();
    apply();
    const t1 = await done;
    if (t1 === null) skipped++;  // this change did not move the price
    else samples.push([kind, t1 - t0]);
    await new Promise(r => requestAnimationFrame(() => r()));
  }
  return {samples, skipped};
}
"""

CLICK_JS = """
async () => {
  const bal = document.querySelector('[data-testid=balance]');
  const before = bal.textContent;
  return await new Promise((resolve) => {
    let t0 = 0;
    const mo = new MutationObserver(() => {
      if (bal.textContent !== before) { mo.disconnect(); resolve(performance.now() - t0); }
    });
    mo.observe(bal, {childList: true, characterData: true, subtree: true});
    setTimeout(() => { mo.disconnect(); resolve(null); }, 10000);
    t0 = performance.now();
    document.querySelector('[data-testid=generate-button]').click();
  });
}
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": round(pct(values, 95), 3),
        "max_ms": round(max(values), 3),
    }


def machine() -> str:
    cpu = cpu_model(platform.processor() or "")
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def start_app(run_dir: Path) -> tuple[str, subprocess.Popen, str]:
    """Serve the app like the browser tests do; returns (url, process, bench user's email)."""
    from workroom_app import db
    from workroom_app.billing import accounts, ledger
    from workroom_app.db import write_session
    from workroom_app.schema import upgrade

    bun = bun_dir()
    if bun is None:
        sys.exit("bun is not installed: run `make setup`")
    url_db = f"sqlite:///{run_dir / 'bench.db'}"
    engine = db.make_engine(url_db)
    upgrade(engine)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with write_session(engine) as s:
        account = accounts.sign_up(s, email, PASSWORD, "Bench")
        ledger.staff_adjust(
            s,
            account.id,
            100_000,
            reason="benchmark credits",
            actor_id=account.id,
            idempotency_key=f"bench-{email}",
        )
    engine.dispose()
    try:
        url, proc = start_e2e_app(run_dir, url_db, bun, render_seconds="0.3", log_tail_chars=3000)
    except AppDidNotStart as exc:
        sys.exit("the app did not start:\n" + exc.log_tail)
    return url, proc, email


def run(url: str, email: str, password: str, changes: int, clicks: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.press("#password", "Enter")
        page.wait_for_selector("[data-testid=balance]")
        page.goto("/generate")
        page.wait_for_function(
            "(document.querySelector('[data-testid=generate-button]')||{innerText:''}).innerText.includes('·')"
        )

        cost: list[float] = []
        by_kind: dict[str, list[float]] = {}
        skipped = 0
        per_feature = max(10, changes // 4)
        for feature in ("image", "video", "voiceover", "lip_sync"):
            page.get_by_test_id(f"feature-{feature}").click()
            page.wait_for_selector(f"form[data-feature={feature}][data-ready]")
            result = page.evaluate(COST_STEP_JS, [feature, per_feature])
            for kind, ms in result["samples"]:
                cost.append(ms)
                by_kind.setdefault(kind, []).append(ms)
            skipped += result["skipped"]

        page.get_by_test_id("feature-image").click()
        page.wait_for_selector("form[data-feature=image][data-ready]")
        page.get_by_test_id("model-select").select_option("flux_pro")
        page.get_by_test_id("prompt-input").fill("benchmark: a lighthouse at dusk")
        click: list[float] = []
        warmup = 3
        for i in range(clicks + warmup):
            # The Free plan runs one generation at a time: wait for the previous one to end.
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=active-job]').length === 0", timeout=30_000
            )
            page.wait_for_function(
                "!document.querySelector('[data-testid=generate-button]').disabled", timeout=30_000
            )
            ms = page.evaluate(CLICK_JS)
            if ms is None:
                raise SystemExit(
                    "the balance did not change after a click: " + page.inner_text("body")[:500]
                )
            if i >= warmup:
                click.append(ms)
        version = browser.version
        browser.close()
    return {
        "cost_update": {**summary(cost), "skipped_changes": skipped},
        "cost_update_by_control": {k: summary(v) for k, v in sorted(by_kind.items())},
        "click_to_balance": summary(click),
        "chromium": version,
        "machine": machine(),
    }


def live_snapshot_cost(runs: int = 500) -> dict:
    """What one tick of the live push costs the server: state/live.py read_snapshot (balance row
    + newest 20 jobs) for an account with 1,000 jobs, on SQLite."""
    from unittest import mock

    from workroom_app import db
    from workroom_app.billing import accounts, ledger
    from workroom_app.db import write_session
    from workroom_app.generation import jobs
    from workroom_app.models import JobStatus
    from workroom_app.schema import upgrade
    from workroom_app.state import live

    engine = db.make_engine(f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-live-')) / 'live.db'}")
    upgrade(engine)
    with write_session(engine) as s:
        account_id = accounts.sign_up(s, "live@example.com", PASSWORD, "Live").id
        ledger.staff_adjust(
            s, account_id, 10_000, reason="bench", actor_id=account_id, idempotency_key="live-bench"
        )
        for i in range(1000):
            job = jobs.submit(
                s,
                account_id,
                {
                    "feature": "image",
                    "model": "flux_schnell",
                    "resolution": "1K",
                    "count": "1",
                    "prompt": "p",
                },
                client_request_id=f"live-{i}",
            )
            jobs.fail(s, job.id, JobStatus.FAILED, "bench")
    times = []
    with mock.patch.object(db, "get_engine", lambda url=None: engine):
        for _ in range(20):
            live.read_snapshot(account_id)
        for _ in range(runs):
            t0 = time.perf_counter()
            live.read_snapshot(account_id)
            times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return summary(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: start one)")
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--changes", type=int, default=200, help="control changes to time (>= 50)")
    parser.add_argument("--clicks", type=int, default=30, help="generations to time")
    args = parser.parse_args()
    proc = None
    if args.url:
        if not (args.email and args.password):
            parser.error("--url needs --email and --password of a user with credits")
        url, email, password = args.url, args.email, args.password
    else:
        run_dir = Path(tempfile.mkdtemp(prefix="bench-generate-"))
        url, proc, email = start_app(run_dir)
        password = PASSWORD
    try:
        result = run(url, email, password, max(50, args.changes), args.clicks)
    finally:
        if proc is not None:
            stop(proc)
    result["live_snapshot_sqlite"] = live_snapshot_cost()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
