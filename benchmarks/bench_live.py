"""The live layer under load: N signed-in tabs over the websocket, exactly as the browser talks.

    python -m benchmarks.bench_live                 # fast: 1, 25, 100 tabs, short windows
    python -m benchmarks.bench_live --tabs 1,100,500 --idle 10 --active-users 0 --port 3700
    python -m benchmarks.bench_live --postgres postgresql://postgres@127.0.0.1:5432/test \
        --redis redis://127.0.0.1:6379/12 --scaled --tabs 500,1000,2000 --no-bare

How: Chromium opens the served app once (log in, /generate, one generation) and the frames it
exchanges on Reflex's socket are recorded; every benchmark tab then replays that protocol
(engine.io/socket.io over one websocket, the recorded hydrate-and-load connect packet with the
tab's own client token and login token) from one asyncio process: no browser per tab. A bare
Reflex app (one state, one counter), built in a temporary folder, is served at the same time:
the floor. The two are measured side by side so that the shared machine's busy moments hit both
alike: the same idle window for their CPU, and probes and page loads alternating between them.

For each N (tabs idle on /generate, 4 tabs per account):
  backend CPU % and RSS (the server's whole process tree), SQL statements/s (the server counts
  them: WORKROOM_SQL_COUNT_DIR), a probe event's round trip p50/p95 (one tab, one cheap event at
  a time), hydrate p50/p95 (extra tabs opening /generate while the N are connected), and the
  time from a staff adjustment's commit to the new balance on every tab of that account.
Then active load: U users each submitting a cheap generation (1 credit), waiting for its result
(the Free plan runs one at a time), then thinking; submits/s, p95 from submit to the new balance on
the socket, errors, a clean `workroom ledger check`, and the jobs' times on the server.

--scaled serves Workroom through `scripts/run-scaled.sh` (what `make run-scaled` runs: PostgreSQL,
Redis, --workers web workers, a separate `workroom worker`). --port N starts the servers on
ports N, N+1, ... (default: free ports).

Prints a table, the ratios to the bare app, and one JSON line; --write puts them into
docs/benchmarks.md (section "Live layer (bench_live)").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import (  # noqa: E402
    cpu_model,
    load_average,
    scratch_postgres,
    write_section,
)

# Served as the browser tests serve it; the production build is reused from theirs when present.
from tests.support.served_app import (  # noqa: E402
    CHROMIUM_ARGS,
    WEB_CACHE,
    AppDidNotStart,
    bun_dir,
    reflex_env,
    save_web_cache,
    serve_prod,
    start_app,
    stop,
)

STARTUP_TIMEOUT_S = 420

PASSWORD = "bench-password-1"
TABS_PER_ACCOUNT = 4
HEADING = "## Live layer (bench_live)"
GENERATE_STATE = (
    "reflex___state____state.workroom_app___state___session____session_state."
    "workroom_app___state___generate____generate_state"
)
BALANCE_KEY = '"balance_rx_state_":'
REFUSED = re.compile(r'"error_rx_state_":"[^"]')
NO_ACTIVE_JOBS = '"active_jobs_rx_state_":[]'


# ------------------------------------------------------------------ a tiny websocket client


class Socket:
    """One tab's websocket (wsproto over asyncio streams): text frames in, text frames out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws) -> None:  # noqa: ANN001
        self.reader, self.writer, self.ws = reader, writer, ws
        self.inbox: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.closed = False
        self._task = asyncio.ensure_future(self._pump())

    @classmethod
    async def connect(cls, url: str, cookie: str = "") -> Socket:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request

        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"cookie", cookie.encode())] if cookie else []
        target = parts.path + ("?" + parts.query if parts.query else "")
        writer.write(ws.send(Request(host=parts.netloc, target=target, extra_headers=headers)))
        await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return cls(reader, writer, ws)
                raise ConnectionError(f"websocket refused: {event!r}")

    async def _pump(self) -> None:
        from wsproto.events import CloseConnection, Message, Ping, TextMessage

        buffer: list[str] = []
        try:
            while True:
                # Events first: the handshake's last read may already hold the first frames.
                for event in self.ws.events():
                    if isinstance(event, TextMessage):
                        buffer.append(event.data)
                        if event.message_finished:
                            text = "".join(buffer)
                            buffer.clear()
                            if text == "2":  # engine.io ping: answer, as the browser does
                                await self.send("3")
                            else:
                                self.inbox.put_nowait((time.perf_counter(), text))
                    elif isinstance(event, Ping):
                        self.writer.write(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        return
                    elif isinstance(event, Message):
                        pass
                data = await self.reader.read(1 << 20)
                if not data:
                    break
                self.ws.receive_data(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True

    async def send(self, text: str) -> None:
        from wsproto.events import TextMessage

        self.writer.write(self.ws.send(TextMessage(data=text)))
        await self.writer.drain()

    async def recv_until(self, predicate, timeout: float) -> tuple[float, str]:  # noqa: ANN001
        deadline = time.perf_counter() + timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError
            stamp, text = await asyncio.wait_for(self.inbox.get(), remaining)
            if predicate(text):
                return stamp, text

    def drain(self) -> int:
        n = 0
        while not self.inbox.empty():
            self.inbox.get_nowait()
            n += 1
        return n

    async def close(self) -> None:
        from wsproto.events import CloseConnection

        with contextlib.suppress(Exception):
            self.writer.write(self.ws.send(CloseConnection(code=1000)))
            await self.writer.drain()
        self.writer.close()
        self._task.cancel()


# ------------------------------------------------------------------ recording the protocol


def record(
    base: str, *, email: str | None, password: str | None, path: str, click: str | None
) -> dict:
    """Open `path` in Chromium (after logging in, for Workroom) and keep the socket frames of the
    last page load, plus the frame sent by clicking `click`."""
    from playwright.sync_api import sync_playwright

    sockets: list[dict] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base)
        page = context.new_page()

        def on_ws(ws) -> None:  # noqa: ANN001
            entry = {"url": ws.url, "sent": []}
            sockets.append(entry)
            ws.on("framesent", lambda f: entry["sent"].append(f))

        page.on("websocket", on_ws)
        if email:
            page.goto("/login")
            page.fill("#email", email)
            page.fill("#password", password)
            page.press("#password", "Enter")
            page.wait_for_selector("[data-testid=balance]")
        page.goto(path)
        page.wait_for_load_state("networkidle")
        time.sleep(1.0)
        if click:
            if email:
                page.get_by_test_id("prompt-input").fill("bench probe")
                time.sleep(0.5)
            page.locator(click).click()
            time.sleep(1.5)
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        browser.close()
    last = sockets[-1]
    connect = next(f for f in last["sent"] if f.startswith("40/_event,"))
    clicked = [f for f in last["sent"] if f.startswith("42/_event,")]
    return {
        "url": last["url"],
        "connect": connect,
        "click": clicked[-1] if clicked else None,
        "cookies": cookies,
    }


# ------------------------------------------------------------------ one tab


class Tab:
    def __init__(self, socket: Socket, token: str) -> None:
        self.socket = socket
        self.token = token


def _client_url(recorded_url: str, base: str, token: str) -> str:
    parts = urlsplit(recorded_url)
    query = re.sub(r"token=[^&]+", f"token={token}", parts.query)
    host = urlsplit(base)
    return f"ws://{host.netloc}{parts.path}?{query}"


async def open_tab(base: str, rec: dict, login_token: str | None) -> tuple[Tab, float]:
    """Connect and hydrate like the browser; returns the tab and its hydrate time (ms)."""
    token = str(uuid.uuid4())
    connect = rec["connect"]
    cookie = ""
    if login_token is not None:
        old = rec["cookies"]["workroom_session"]
        connect = connect.replace(old, login_token)
        cookie = f"workroom_session={login_token}"
    socket = await Socket.connect(_client_url(rec["url"], base, token), cookie)
    await socket.recv_until(lambda t: t.startswith("0{"), 30)
    started = time.perf_counter()
    await socket.send(connect)
    stamp, _ = await socket.recv_until(lambda t: '"is_hydrated_rx_state_":true' in t, 60)
    return Tab(socket, token), (stamp - started) * 1000


async def probe(tab: Tab, frame: str, count: int, gap: float) -> list[float]:
    """Round trips of a cheap event, one at a time (ms)."""
    times = []
    for _ in range(count):
        tab.socket.drain()
        started = time.perf_counter()
        await tab.socket.send(frame)
        stamp, _ = await tab.socket.recv_until(lambda t: t.startswith("42/_event,"), 30)
        times.append((stamp - started) * 1000)
        await asyncio.sleep(gap)
    return times


# ------------------------------------------------------------------ the servers


def tree_usage(proc: subprocess.Popen) -> tuple[float, int]:
    """(CPU seconds so far, RSS bytes) of the server and every process under it."""
    try:
        root = psutil.Process(proc.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0
    cpu = rss = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            cpu += t.user + t.system
            rss += p.memory_info().rss
    return cpu, rss


# ------------------------------------------------------------------ ports, processes


class Ports:
    """Ports for the servers this run starts: `base`, base+1, ... (--port), or free ones."""

    def __init__(self, base: int = 0) -> None:
        self.next = base

    def take(self) -> int:
        if not self.next:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]
        port, self.next = self.next, self.next + 1
        return port


def bun() -> Path:
    found = bun_dir()
    if found is None:
        sys.exit("bun is not installed: run `make setup` (it installs bun into .tools/)")
    return found


def wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                sys.exit(
                    f"the server at {url} did not start:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)


def start_workroom(
    run_dir: Path, db_url: str, ports: Ports, extra_env: dict[str, str]
) -> tuple[str, subprocess.Popen]:
    """`reflex run --env prod --single-port` (what `make run` serves, as the browser tests serve
    it), with the generation worker and the local renderer inside, on its own build, states and
    media folders."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        url, proc = start_app(
            run_dir,
            db_url,
            bun(),
            render_seconds=extra_env.pop("WORKROOM_LOCAL_RENDER_SECONDS", "0.3"),
            port=ports.take(),
            renderer_port=ports.take(),
            extra_env={
                # Every benchmark tab logs in from 127.0.0.1.
                "WORKROOM_RATE_LIMIT_LOGIN_PER_ADDRESS": "100000/minute",
                "WORKROOM_RATE_LIMIT_SIGNUP_PER_ADDRESS": "100000/hour",
                **extra_env,
            },
        )
    except AppDidNotStart as exc:
        sys.exit(f"Workroom did not start (exit {exc.exit_code}):\n{exc.log_tail}")
    if not (WEB_CACHE / "package.json").exists():
        save_web_cache(run_dir / "web")
    return url, proc


def start_scaled(
    run_dir: Path,
    db_url: str,
    ports: Ports,
    redis_url: str,
    workers: int,
    extra_env: dict[str, str],
) -> tuple[str, subprocess.Popen]:
    """`make run-scaled` as a user runs it (scripts/run-scaled.sh): PostgreSQL, Redis, `workers`
    web workers, one separate `workroom worker`."""
    web_dir = run_dir / "web"
    if (WEB_CACHE / "package.json").exists():
        shutil.copytree(WEB_CACHE, web_dir, symlinks=True)
    port, renderer = ports.take(), ports.take()
    url = f"http://127.0.0.1:{port}"
    env = reflex_env(
        bun(),
        {
            "REFLEX_WEB_WORKDIR": str(web_dir),
            "PORT": str(port),
            "WORKROOM_DATABASE_URL": db_url,
            "REFLEX_REDIS_URL": redis_url,
            "GRANIAN_WORKERS": str(workers),
            "WORKERS": "1",
            "WORKROOM_PUBLIC_URL": url,
            "WORKROOM_MEDIA_DIR": str(run_dir / "media"),
            "WORKROOM_LOCAL_PROVIDER_URL": f"http://127.0.0.1:{renderer}",
            "WORKROOM_RATE_LIMIT_LOGIN_PER_ADDRESS": "100000/minute",
            "WORKROOM_RATE_LIMIT_SIGNUP_PER_ADDRESS": "100000/hour",
            "WORKROOM_RATE_LIMIT_STORAGE": redis_url,
            **extra_env,
        },
    )
    log_path = run_dir / "scaled.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(REPO / "scripts" / "run-scaled.sh")],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_until_up(url, proc, log_path, "/api/health")
    return url, proc


BARE_APP = """
import reflex as rx


class State(rx.State):
    count: int = 0

    @rx.event
    def increment(self):
        self.count += 1


def index() -> rx.Component:
    return rx.vstack(rx.text(State.count, id="count"), rx.button("Increment", id="increment", on_click=State.increment))


app = rx.App()
app.add_page(index)
"""


def start_bare(run_dir: Path, ports: Ports) -> tuple[str, subprocess.Popen]:
    """`reflex init` a bare app in `run_dir` and serve it (prod, one port)."""
    app_dir = run_dir / "bare"
    app_dir.mkdir()
    env = reflex_env(bun())
    for key in [k for k in env if k.startswith(("WORKROOM_", "REFLEX_REDIS", "GRANIAN"))]:
        env.pop(key)
    reflex = str(REPO / ".venv" / "bin" / "reflex")
    subprocess.run(
        [reflex, "init", "--template", "blank", "--name", "bare"],
        cwd=app_dir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    (app_dir / "bare" / "bare.py").write_text(BARE_APP)
    port = ports.take()
    log_path = run_dir / "bare.log"
    proc = serve_prod(app_dir, port, env, log_path)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, proc, log_path, "/ping")
    return url, proc


def prepare_database(url: str, accounts_needed: int) -> list[tuple[int, str]]:
    """Migrate, seed, and make `accounts_needed` bench accounts with plenty of credits."""
    from sqlalchemy import select

    from workroom_app import db
    from workroom_app.billing import accounts, ledger
    from workroom_app.db import write_session
    from workroom_app.models import Account
    from workroom_app.schema import upgrade
    from workroom_app.seed import seed_demo

    engine = db.make_engine(url)
    upgrade(engine)
    seed_demo(engine)
    with write_session(engine) as s:
        template = accounts.sign_up(s, "bench-0@example.com", PASSWORD, "Bench 0")
        password_hash = template.password_hash
    ids = [template.id]
    with write_session(
        engine
    ) as s:  # the same hash for all: argon2 per account would dominate set-up
        for i in range(1, accounts_needed):
            account = Account(
                email=f"bench-{i}@example.com",
                password_hash=password_hash,
                display_name=f"Bench {i}",
                role="user",
                timezone="UTC",
                created_at=template.created_at,
            )
            s.add(account)
        s.flush()
        rows = s.exec(
            select(Account.id).where(Account.email.like("bench-%"), Account.id != template.id)
        ).all()
        ids += [r if isinstance(r, int) else r[0] for r in rows]
    with write_session(engine) as s:
        for account_id in ids:
            ledger.grant(
                s,
                account_id,
                1_000_000,
                action_type="staff_adjustment",
                source="staff",
                idempotency_key=f"bench-credits-{account_id}",
                reason="benchmark credits",
                actor_id=ids[0],
            )
    tokens = []
    with write_session(engine) as s:
        for account_id in ids:
            tokens.append((account_id, accounts.create_login(s, account_id)))
    engine.dispose()
    return tokens


# ------------------------------------------------------------------ phases


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def p50_95(values: list[float]) -> dict:
    return {
        "p50_ms": round(statistics.median(values), 1) if values else None,
        "p95_ms": round(pct(values, 95), 1),
    }


async def idle_phase(proc: subprocess.Popen, seconds: float, sql_dir: str | None) -> dict:
    from workroom_app import sql_counter

    cpu0, _ = tree_usage(proc)
    sql0 = sql_counter.read_total(sql_dir) if sql_dir else 0
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    await asyncio.sleep(0.6 if sql_dir else 0)  # the counter files are written twice a second
    elapsed = time.perf_counter() - t0
    cpu1, rss = tree_usage(proc)
    sql1 = sql_counter.read_total(sql_dir) if sql_dir else 0
    return {
        "cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "rss_mb": round(rss / 1e6),
        "sql_per_s": round((sql1 - sql0) / elapsed, 1) if sql_dir else None,
    }


async def push_phase(
    tabs_of_account: list[Tab], account_id: int, engine_url: str, rounds: int
) -> list[float]:
    """Staff adjustment committed here -> new balance on every tab of the account (ms, worst tab)."""
    from workroom_app import db
    from workroom_app.billing import ledger
    from workroom_app.db import write_session

    engine = db.make_engine(engine_url)
    times = []
    try:
        for _ in range(rounds):
            for tab in tabs_of_account:
                tab.socket.drain()

            def adjust() -> tuple[int, float]:
                with write_session(engine) as s:
                    result = ledger.staff_adjust(
                        s,
                        account_id,
                        1,
                        reason="bench push",
                        actor_id=account_id,
                        idempotency_key=f"bench-push-{uuid.uuid4().hex}",
                    )
                return result.balance_after, time.perf_counter()

            balance, committed = await asyncio.to_thread(adjust)
            needle = f'"balance_rx_state_":{balance}'
            stamps = await asyncio.gather(
                *(
                    t.socket.recv_until(lambda text, n=needle: n in text, 30)
                    for t in tabs_of_account
                )
            )
            times.append((max(s for s, _ in stamps) - committed) * 1000)
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()
    return times


async def active_phase(
    base: str, rec: dict, logins: list[tuple[int, str]], users: int, seconds: float, think: float
) -> dict:
    """`users` tabs (one per account) submitting cheap generations."""
    submit_template = rec["click"]
    tabs = []
    for _account_id, login in logins[:users]:
        tab, _ = await open_tab(base, rec, login)
        tabs.append(tab)
    latencies: list[float] = []
    errors = refused = 0
    stop_at = time.perf_counter() + seconds

    async def user(tab: Tab) -> None:
        nonlocal errors, refused
        await asyncio.sleep(random.random() * think)
        while time.perf_counter() < stop_at:
            frame = re.sub(
                r'"request_id","[^"]+"', f'"request_id","bench-{uuid.uuid4()}"', submit_template
            )
            tab.socket.drain()
            started = time.perf_counter()
            await tab.socket.send(frame)
            try:
                stamp, text = await tab.socket.recv_until(
                    lambda t: BALANCE_KEY in t or REFUSED.search(t), 30
                )
                if BALANCE_KEY in text:
                    latencies.append((stamp - started) * 1000)
                    # As a user does (and the Free plan's one job at a time asks): wait for the
                    # result before thinking about the next one.
                    await tab.socket.recv_until(lambda t: NO_ACTIVE_JOBS in t, 60)
                else:
                    refused += (
                        1  # a plan limit (jobs running at once): a clear message, nothing charged
                    )
            except TimeoutError:
                errors += 1
            await asyncio.sleep(think * (0.5 + random.random()))

    started = time.perf_counter()
    await asyncio.gather(*(user(t) for t in tabs))
    elapsed = time.perf_counter() - started
    for tab in tabs:
        await tab.socket.close()
    return {
        "users": users,
        "submits": len(latencies),
        "submits_per_s": round(len(latencies) / elapsed, 1),
        "errors": errors,
        "refused": refused,
        "submit_to_balance": p50_95(latencies),
    }


def job_timings(db_url: str) -> dict:
    """How long the active phase's jobs took on the server, from their rows: submitted ->
    started (dispatch and the wait for a free slot), started -> finished (the render)."""
    from sqlalchemy import create_engine, text  # noqa: PLC0415

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT created_at, started_at, finished_at FROM generation_job "
                    "WHERE started_at IS NOT NULL AND finished_at IS NOT NULL "
                    "AND client_request_id LIKE 'bench-%'"
                )
            ).all()
    finally:
        engine.dispose()

    def ms(a, b) -> float:  # noqa: ANN001  (SQLite returns text, PostgreSQL datetimes)
        from datetime import datetime  # noqa: PLC0415

        a, b = (datetime.fromisoformat(x) if isinstance(x, str) else x for x in (a, b))
        return (b - a).total_seconds() * 1000

    return {
        "jobs": len(rows),
        "to_start": p50_95([ms(r[0], r[1]) for r in rows]),
        "to_finish": p50_95([ms(r[1], r[2]) for r in rows]),
    }


def ledger_check(db_url: str) -> str:
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "workroom"), "ledger", "check"],
        cwd=REPO,
        env={**os.environ, "WORKROOM_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
    )
    return "clean" if out.returncode == 0 else f"FAILED: {(out.stdout + out.stderr)[-300:]}"


@dataclasses.dataclass
class Target:
    """One served app under measurement: Workroom, or the bare floor (no logins, no SQL count)."""

    name: str
    base: str
    proc: subprocess.Popen
    rec: dict
    probe_frame: str
    logins: list[tuple[int, str]] | None = None
    sql_dir: str | None = None
    db_url: str | None = None
    tabs: list[Tab] = dataclasses.field(default_factory=list)
    account_tabs: dict[int, list[Tab]] = dataclasses.field(default_factory=dict)

    def login_of(self, i: int) -> tuple[int, str] | None:
        if self.logins is None:
            return None
        return self.logins[(i // TABS_PER_ACCOUNT) % len(self.logins)]

    async def ramp(self, n: int) -> None:
        while len(self.tabs) < n:
            first, last = len(self.tabs), min(n, len(self.tabs) + 25)
            opened = await asyncio.gather(
                *(
                    open_tab(self.base, self.rec, (self.login_of(j) or (0, None))[1])
                    for j in range(first, last)
                )
            )
            for j, (tab, _ms) in enumerate(opened, start=first):
                self.tabs.append(tab)
                login = self.login_of(j)
                if login is not None:
                    self.account_tabs.setdefault(login[0], []).append(tab)


async def measure(
    targets: list[Target],
    levels: list[int],
    *,
    idle: float,
    probes: int,
    hydrates: int,
    push_rounds: int,
) -> dict[str, list[dict]]:
    """Ramp the idle tabs of every target through `levels`; at each, measure them side by side:
    CPU over the same idle window, then probes and hydrates alternating between the targets
    (one of each in turn), so that a busy moment of the shared machine hits both alike."""
    results: dict[str, list[dict]] = {t.name: [] for t in targets}
    for n in levels:
        for target in targets:
            await target.ramp(n)
        await asyncio.sleep(1.0)
        for target in targets:
            for tab in target.tabs:
                tab.socket.drain()
        usages = await asyncio.gather(*(idle_phase(t.proc, idle, t.sql_dir) for t in targets))
        rows = {}
        for target, usage in zip(targets, usages, strict=True):
            rows[target.name] = {
                "tabs": n,
                **usage,
                "frames_to_idle_tabs": sum(tab.socket.drain() for tab in target.tabs),
            }
        probe_times: dict[str, list[float]] = {t.name: [] for t in targets}
        for _ in range(probes):
            for target in targets:
                probe_times[target.name] += await probe(target.tabs[0], target.probe_frame, 1, 0)
            await asyncio.sleep(0.05)
        hydrate_times: dict[str, list[float]] = {t.name: [] for t in targets}
        for _ in range(hydrates):
            for target in targets:
                login = target.login_of(0)
                extra, ms = await open_tab(target.base, target.rec, login[1] if login else None)
                hydrate_times[target.name].append(ms)
                await extra.socket.close()
        for target in targets:
            row = rows[target.name]
            row["probe"] = p50_95(probe_times[target.name])
            row["hydrate"] = p50_95(hydrate_times[target.name])
            login = target.login_of(0)
            if login is not None and target.db_url is not None and push_rounds:
                tabs = target.account_tabs[login[0]]
                row["push_to_all_tabs"] = {
                    **p50_95(await push_phase(tabs, login[0], target.db_url, push_rounds)),
                    "tabs_of_account": len(tabs),
                }
            results[target.name].append(row)
            print(json.dumps({"target": target.name, **row}), flush=True)
    for target in targets:
        for tab in target.tabs:
            await tab.socket.close()
        target.tabs.clear()
    return results


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tabs", default="1,25,100", help="idle tab counts, ramped up (default 1,25,100)"
    )
    parser.add_argument(
        "--idle", type=float, default=8.0, help="seconds of idle measurement per level"
    )
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--hydrates", type=int, default=15)
    parser.add_argument("--push-rounds", type=int, default=10)
    parser.add_argument("--active-users", type=int, default=20)
    parser.add_argument("--active-seconds", type=float, default=20.0)
    parser.add_argument(
        "--think", type=float, default=2.0, help="seconds between a user's submissions"
    )
    parser.add_argument(
        "--max-parallel", type=int, default=32, help="jobs each generation worker runs at once"
    )
    parser.add_argument(
        "--postgres", default="", help="serve Workroom on a scratch database on this server"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="web workers (2+ needs Redis: --redis)"
    )
    parser.add_argument("--redis", default="", help="REFLEX_REDIS_URL for --workers 2+")
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="serve with `make run-scaled` (scripts/run-scaled.sh: --postgres, --redis, "
        "--workers web workers, a separate `workroom worker`)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="first port of the servers started (default: free)"
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Reflex floor")
    parser.add_argument(
        "--write", action="store_true", help="write the figures into docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    levels = sorted({int(x) for x in args.tabs.split(",") if x.strip()})
    load_before = load_average()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    report: dict = {
        "levels": levels,
        "machine": f"{cpu_model(platform.processor())}, {os.cpu_count()} CPUs",
        "load_before": round(load_before, 2),
    }
    with contextlib.ExitStack() as stack:
        if args.postgres:
            db_url = stack.enter_context(scratch_postgres(args.postgres)).render_as_string(
                hide_password=False
            )
            db_url = db_url.replace("postgresql+psycopg://", "postgresql://")
        else:
            db_url = f"sqlite:///{run_dir / 'bench.db'}"
        accounts_needed = max(args.active_users, max(levels) // TABS_PER_ACCOUNT + 1) + 1
        logins = prepare_database(db_url, accounts_needed)
        sql_dir = str(run_dir / "sql")
        extra_env = {
            "WORKROOM_SQL_COUNT_DIR": sql_dir,
            "WORKROOM_LOCAL_RENDER_SECONDS": "0.3",
            "WORKROOM_WORKER_MAX_PARALLEL": str(args.max_parallel),
        }
        ports = Ports(args.port)
        if args.scaled:
            if not (args.postgres and args.redis):
                sys.exit("--scaled needs --postgres and --redis")
            base, proc = start_scaled(
                run_dir, db_url, ports, args.redis, max(args.workers, 2), extra_env
            )
        else:
            if args.workers > 1:
                if not args.redis:
                    sys.exit("--workers 2+ needs --redis")
                extra_env.update(
                    {"REFLEX_REDIS_URL": args.redis, "GRANIAN_WORKERS": str(args.workers)}
                )
            base, proc = start_workroom(run_dir / "app", db_url, ports, extra_env)
        stack.callback(stop, proc)
        rec = record(
            base,
            email="bench-0@example.com",
            password=PASSWORD,
            path="/generate",
            click="[data-testid=generate-button]",
        )
        probe_frame = json.dumps(
            [
                "event",
                {
                    "name": f"{GENERATE_STATE}.dismiss_error",
                    "payload": {},
                    "router_data": {"pathname": "/generate", "asPath": "/generate"},
                },
            ],
            separators=(",", ":"),
        )
        probe_frame = "42/_event," + probe_frame
        print("workroom:", base, "database:", db_url.split("@")[-1], flush=True)
        targets = [
            Target(
                "workroom",
                base,
                proc,
                rec,
                probe_frame,
                logins=logins[1:],
                sql_dir=sql_dir,
                db_url=db_url,
            )
        ]
        if not args.no_bare:
            bare_url, bare_proc = start_bare(run_dir, ports)
            stack.callback(stop, bare_proc)
            bare_rec = record(bare_url, email=None, password=None, path="/", click="#increment")
            targets.append(Target("bare", bare_url, bare_proc, bare_rec, bare_rec["click"]))
        measured = asyncio.run(
            measure(
                targets,
                levels,
                idle=args.idle,
                probes=args.probes,
                hydrates=args.hydrates,
                push_rounds=args.push_rounds,
            )
        )
        report["workroom"] = measured["workroom"]
        if "bare" in measured:
            report["bare"] = measured["bare"]
            stop(targets[1].proc)
        if args.active_users:
            active = asyncio.run(
                active_phase(
                    base, rec, logins[1:], args.active_users, args.active_seconds, args.think
                )
            )
            active["ledger_check"] = ledger_check(db_url)
            active["jobs"] = job_timings(db_url)
            report["active"] = active
            print(json.dumps(active), flush=True)
        stop(proc)
    report["load_after"] = round(load_average(), 2)
    report["database"] = "postgresql" if args.postgres else "sqlite"
    report["web_workers"] = max(args.workers, 2) if args.scaled else args.workers
    report["scaled"] = args.scaled
    lines = render(report)
    print("\n".join(lines))
    print(json.dumps({"bench": "live", **report}, separators=(",", ":")))
    if args.write:
        write_section(HEADING, lines)
    shutil.rmtree(run_dir, ignore_errors=True)
    return 0


def render(report: dict) -> list[str]:
    bare = {r["tabs"]: r for r in report.get("bare", [])}
    lines = [
        f"{report['machine']}; shared machine, load average {report['load_before']} before, "
        f"{report['load_after']} after; {report['database']}, {report['web_workers']} web worker(s).",
        "",
        "| idle tabs | CPU % (Workroom / bare) | RSS MB | SQL statements/s | frames to idle tabs "
        "| probe p50/p95 ms (Workroom / bare) | hydrate p50/p95 ms (Workroom / bare) | push to every tab p50/p95 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["workroom"]:
        b = bare.get(row["tabs"], {})
        push = row.get("push_to_all_tabs") or {}
        lines.append(
            f"| {row['tabs']} | {row['cpu_pct']} / {b.get('cpu_pct', '–')} | {row['rss_mb']} "
            f"| {row['sql_per_s']} | {row['frames_to_idle_tabs']} "
            f"| {row['probe']['p50_ms']}/{row['probe']['p95_ms']} / "
            f"{(b.get('probe') or {}).get('p50_ms', '–')}/{(b.get('probe') or {}).get('p95_ms', '–')} "
            f"| {row['hydrate']['p50_ms']}/{row['hydrate']['p95_ms']} / "
            f"{(b.get('hydrate') or {}).get('p50_ms', '–')}/{(b.get('hydrate') or {}).get('p95_ms', '–')} "
            f"| {push.get('p50_ms', '–')}/{push.get('p95_ms', '–')} ({push.get('tabs_of_account', 0)} tabs) |"
        )
    if bare:
        lines += ["", "Ratios to the bare app (p95):"]
        for row in report["workroom"]:
            b = bare.get(row["tabs"])
            if not b:
                continue
            ratio = lambda a, c: round(a / c, 1) if c else float("nan")  # noqa: E731
            lines.append(
                f"- {row['tabs']} tabs: probe {ratio(row['probe']['p95_ms'], b['probe']['p95_ms'])}×, "
                f"hydrate {ratio(row['hydrate']['p95_ms'], b['hydrate']['p95_ms'])}×, "
                f"CPU {row['cpu_pct']} % vs {b['cpu_pct']} %"
            )
    if "active" in report:
        a = report["active"]
        lines += [
            "",
            f"Active: {a['users']} users submitting 1-credit generations: {a['submits_per_s']} submits/s, "
            f"submit → new balance on the socket p50 {a['submit_to_balance']['p50_ms']} ms, "
            f"p95 {a['submit_to_balance']['p95_ms']} ms, {a['errors']} errors, "
            f"{a['refused']} refused by the plan's limit of jobs at once; "
            f"`workroom ledger check` after: {a['ledger_check']}. Jobs on the server "
            f"({a['jobs']['jobs']}): submitted -> started p50/p95 "
            f"{a['jobs']['to_start']['p50_ms']}/{a['jobs']['to_start']['p95_ms']} ms, "
            f"started -> finished {a['jobs']['to_finish']['p50_ms']}/"
            f"{a['jobs']['to_finish']['p95_ms']} ms.",
        ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
