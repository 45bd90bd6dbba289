"""A generation worker that dies is restarted, and /api/health says the app is degraded
meanwhile; with workers as their own processes, health follows their heartbeats."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.testclient import TestClient

import workroom_app.workroom_app as workroom
from tests.support.fixtures import serve_database
from workroom_app import background, settings
from workroom_app.db import write_session
from workroom_app.generation import worker


def _health(client: TestClient) -> dict:
    response = client.get("/api/health")
    assert response.status_code == 200
    return response.json()


def test_a_crashing_worker_is_restarted_and_health_says_degraded(sqlite_engine, monkeypatch):
    serve_database(monkeypatch, sqlite_engine)
    monkeypatch.setattr(background, "RESTART_BACKOFF", (0.05,))
    monkeypatch.setitem(background.worker_status, "state", "not started")
    monkeypatch.setitem(background.worker_status, "restarts", 0)
    monkeypatch.setitem(background.worker_status, "error", None)
    runs = []
    seen_while_restarting: list[dict] = []

    async def crashing(stop):
        runs.append(1)
        if len(runs) < 3:
            raise OSError("address already in use")
        await stop.wait()

    api = Starlette(routes=[r for r in workroom.API_ROUTES if r.path == "/api/health"])

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.ensure_future(background.supervise_worker(stop, run=crashing))
        await asyncio.sleep(0.02)
        seen_while_restarting.append(dict(background.worker_status))
        while len(runs) < 3:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        assert background.worker_status["state"] == "running"
        stop.set()
        await task

    asyncio.run(scenario())
    assert seen_while_restarting[0]["state"] == "restarting"
    assert "address already in use" in seen_while_restarting[0]["error"]
    assert (
        background.worker_status["restarts"] == 2 and background.worker_status["state"] == "stopped"
    )
    with TestClient(api) as client:
        background.worker_status.update(state="restarting", error="OSError: address already in use")
        body = _health(client)
        assert body["status"] == "degraded" and "restarting" in body["detail"]
        background.worker_status.update(state="running", error=None)
        assert _health(client) == {"status": "ok"}


def test_health_follows_separate_workers_heartbeats(sqlite_engine, monkeypatch):
    serve_database(monkeypatch, sqlite_engine)
    monkeypatch.setenv("WORKROOM_RUN_WORKER", "0")
    settings.get_settings.cache_clear()
    api = Starlette(routes=[r for r in workroom.API_ROUTES if r.path == "/api/health"])
    with TestClient(api) as client:
        body = _health(client)
        assert body["status"] == "degraded" and "no generation worker" in body["detail"]
        with write_session(sqlite_engine) as s:
            worker._heartbeat(s, "host:1:abc")
        assert _health(client) == {"status": "ok"}
        with write_session(sqlite_engine) as s:
            worker._heartbeat(s, "host:1:abc", stopping=True)  # a clean stop removes it
        assert _health(client)["status"] == "degraded"
    settings.get_settings.cache_clear()
