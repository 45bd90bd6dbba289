"""What the per-event session check costs, on SQLite and PostgreSQL.

Two figures per engine:
- the check alone: `accounts.live_login` (one indexed query joining auth_session and
  account) through a read session in a worker thread, as state/session_guard.py runs it;
- per event: a trivial handler of a signed-in tab (AuthState.clear_error) sent through Reflex's
  real event processor with the app's middleware (the guard) and without it; the difference is
  what every event pays.

    python -m benchmarks.bench_session_check [--events 400] [--no-docs]

PostgreSQL runs when WORKROOM_TEST_POSTGRES_URL (or --postgres URL) is set. Prints the figures
and a JSON line; with docs on, rewrites its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid

from benchmarks._common import cpu_model, load_average, scratch_postgres, write_section

HEADING = "## Per-event session check (issue 8)"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _prepare(url: str):
    from workroom_app import db
    from workroom_app.billing import accounts
    from workroom_app.db import write_session
    from workroom_app.schema import upgrade

    engine = db.make_engine(url)
    upgrade(engine)
    db.get_engine = lambda _url=None: engine  # the app's code reads through this
    with write_session(engine) as s:
        # Some other sessions, so the lookup is an index hit among many rows.
        for i in range(200):
            other = accounts.register(s, f"other{i}@example.com", "x" * 12, "Other")
            accounts.create_login(s, other.id)
        account = accounts.sign_up(s, "bench@example.com", "x" * 12, "Bench")
        token = accounts.create_login(s, account.id)
    return engine, account.id, token


def _check_alone(token: str, n: int) -> list[float]:
    from workroom_app.billing import accounts
    from workroom_app.state.session_guard import read_live_login

    hashed = accounts.token_hash(token)

    async def main() -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            await asyncio.to_thread(read_live_login, hashed)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    return asyncio.run(main())


def _per_event(token: str, n: int, with_guard: bool) -> list[float]:
    from reflex.istate.manager.memory import StateManagerMemory
    from reflex_base.event import Event
    from reflex_base.event.processor import BaseStateEventProcessor

    import workroom_app.workroom_app as workroom
    from workroom_app.state.auth import AuthState
    from workroom_app.state.session import SessionState

    client_token = str(uuid.uuid4())
    router = {
        "pathname": "/login",
        "asPath": "/login",
        "query": {},
        "ip": "127.0.0.1",
        "token": client_token,
        "headers": {"cookie": f"workroom_session={token}"},
    }

    def event(state_cls, handler):
        return Event(
            name=f"{state_cls.get_full_name()}.{handler}", payload={}, router_data=dict(router)
        )

    async def main() -> list[float]:
        processor = BaseStateEventProcessor(
            backend_exception_handler=workroom.app.backend_exception_handler,
            middleware=workroom.app if with_guard else None,
        )
        processor.configure(state_manager=StateManagerMemory())
        out = []
        async with processor:
            await (
                await processor.enqueue(client_token, event(SessionState, "refresh_balance"))
            ).wait_all()
            await (await processor.enqueue(client_token, event(SessionState, "guard"))).wait_all()
            for _ in range(20):  # warm up
                await (
                    await processor.enqueue(client_token, event(AuthState, "clear_error"))
                ).wait_all()
            for _ in range(n):
                t0 = time.perf_counter()
                await (
                    await processor.enqueue(client_token, event(AuthState, "clear_error"))
                ).wait_all()
                out.append((time.perf_counter() - t0) * 1000)
        return out

    return asyncio.run(main())


def measure(url: str, n: int) -> dict:
    engine, _account_id, token = _prepare(url)
    try:
        floor_a = load_average()
        alone = _check_alone(token, n)
        without = _per_event(token, n, with_guard=False)
        with_guard = _per_event(token, n, with_guard=True)
        return {
            "check_p50_ms": statistics.median(alone),
            "check_p95_ms": _pct(alone, 0.95),
            "event_without_p50_ms": statistics.median(without),
            "event_without_p95_ms": _pct(without, 0.95),
            "event_with_p50_ms": statistics.median(with_guard),
            "event_with_p95_ms": _pct(with_guard, 0.95),
            "load": floor_a,
        }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--postgres", default=os.environ.get("WORKROOM_TEST_POSTGRES_URL", ""))
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    import workroom_app.workroom_app  # noqa: F401  (registers every state and handler, like the server)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = measure(f"sqlite:///{tmp}/bench.db", args.events)
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            results["PostgreSQL"] = measure(url.render_as_string(hide_password=False), args.events)

    rows = []
    for engine_name, r in results.items():
        rows.append(
            f"| {engine_name} | {r['check_p50_ms']:.2f} / {r['check_p95_ms']:.2f} | "
            f"{r['event_without_p50_ms']:.2f} / {r['event_without_p95_ms']:.2f} | "
            f"{r['event_with_p50_ms']:.2f} / {r['event_with_p95_ms']:.2f} | "
            f"{r['event_with_p50_ms'] - r['event_without_p50_ms']:+.2f} | {r['load']:.1f} |"
        )
        print(engine_name, {k: round(v, 3) for k, v in r.items()})
    print(
        json.dumps(
            {
                "bench": "session_check",
                "events": args.events,
                "results": {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()},
            }
        )
    )
    if args.no_docs:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_section(
        HEADING,
        [
            f"Measured {stamp} by `python -m benchmarks.bench_session_check --events {args.events}` on a shared "
            f"machine ({os.cpu_count()} cores, {cpu_model('unknown CPU')}; load average at the start of each engine "
            "in the table; other helpers' test runs were using the same 2 cores, so treat the figures as upper bounds).",
            "",
            "The check: `accounts.live_login`, one indexed query (auth_session ⨝ account by token hash) on a "
            "worker thread, as `state/session_guard.py` runs it before every event of a signed-in tab. Per event: a "
            "trivial handler (`AuthState.clear_error`) of a signed-in tab sent through Reflex's event processor "
            "without the app's middleware (floor) and with it (the guard), in the same run.",
            "",
            "| engine | check alone p50 / p95 ms | event without guard p50 / p95 ms | event with guard p50 / p95 ms "
            "| guard cost p50 ms | load |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
        ],
    )


if __name__ == "__main__":
    main()
