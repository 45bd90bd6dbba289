"""The hosted prediction-API client against the local stand-in
(tests/support/fakes/hosted_provider.py): success, errors, retries, slow answers,
malformed bodies, the token, and a whole job through the worker."""

from __future__ import annotations

import asyncio
import io
import time
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.support.fakes.hosted_provider import FakeHostedAPI, tiny_png
from tests.support.generation import IMAGE, balance, get, make_account, submit
from workroom_app.generation.providers import FAILED, REJECTED, RUNNING, SUCCEEDED, ProviderError
from workroom_app.generation.providers.hosted import HostedProvider
from workroom_app.generation.worker import Worker
from workroom_app.models import JobStatus

TOKEN = "sk-test-123"


@pytest.fixture
def api():
    fake = FakeHostedAPI(token=TOKEN)
    with fake.serve():
        yield fake


def _client(url, **kw):
    kw.setdefault("timeout", 2.0)
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.01)
    return HostedProvider(url, token=TOKEN, **kw)


def _job(**params):
    import json

    p = {
        "feature": "image",
        "model": "flux_pro",
        "resolution": "1K",
        "count": 1,
        "prompt": "a cat",
        **params,
    }
    return SimpleNamespace(
        id=7,
        account_id=3,
        client_request_id="r1",
        feature=p["feature"],
        model=p["model"],
        params_json=json.dumps(p),
    )


def run(coro):
    return asyncio.run(coro)


async def _with(client, fn):
    try:
        return await fn(client)
    finally:
        await client.aclose()


def test_create_poll_fetch_with_bearer_token(api):
    async def go(c):
        pid = await c.create(_job())
        states = [await c.status(pid)]
        states.append(await c.status(pid))
        data, mime = await c.fetch_output(pid)
        return pid, states, data, mime

    pid, states, data, mime = run(_with(_client(api.url), go))
    assert states[0].state == RUNNING and states[0].progress == 50
    assert states[1].state == SUCCEEDED and states[1].progress == 100
    assert data == api.output_bytes and mime == "image/png"
    create = api.requests_to("/v1/predictions", "POST")[0]
    assert create["authorization"] == f"Bearer {TOKEN}"
    assert create["body"] == {
        "model": "image/flux_pro",
        "input": {
            "feature": "image",
            "model": "flux_pro",
            "resolution": "1K",
            "count": 1,
            "prompt": "a cat",
        },
    }
    assert create["idempotency_key"] == "workroom-3-7-r1"
    assert pid == "pred1"


def test_5xx_is_retried_with_backoff_then_succeeds(api):
    api.script("POST /v1/predictions", [500, 503])
    pid = run(_with(_client(api.url, retries=2), lambda c: c.create(_job())))
    assert pid == "pred1"
    creates = api.requests_to("/v1/predictions", "POST")
    assert len(creates) == 3
    # the retries carry the same idempotency key, so a service that honours it starts one prediction
    assert len({r["idempotency_key"] for r in creates}) == 1


def test_persistent_5xx_gives_a_retriable_error(api):
    api.script("GET /v1/predictions/{id}", [502, 502, 502])
    with pytest.raises(ProviderError) as err:
        run(_with(_client(api.url, retries=2), lambda c: c.status("pred1")))
    assert err.value.retriable and "HTTP 502" in str(err.value)
    assert len(api.requests_to("/v1/predictions/pred1", "GET")) == 3


def test_slow_answer_times_out_and_is_retried(api):
    api.script("GET /v1/predictions/{id}", ["slow:1.0"])
    pid = run(_with(_client(api.url), lambda c: c.create(_job())))

    started = time.monotonic()
    status = run(_with(_client(api.url, timeout=0.3, retries=1), lambda c: c.status(pid)))
    assert status.state == RUNNING  # the first try timed out, the retry answered
    assert time.monotonic() - started < 1.5


def test_slow_answers_every_time_give_a_retriable_timeout(api):
    api.script("GET /v1/predictions/{id}", ["slow:1.0", "slow:1.0"])
    with pytest.raises(ProviderError) as err:
        run(_with(_client(api.url, timeout=0.2, retries=1), lambda c: c.status("pred1")))
    assert err.value.retriable and "did not answer in time" in str(err.value)


@pytest.mark.parametrize(
    ("route", "answer", "message"),
    [
        ("POST /v1/predictions", "malformed", "not JSON"),
        ("POST /v1/predictions", {"status": "starting"}, "no prediction id"),
        ("POST /v1/predictions", {"id": "../../etc", "status": "starting"}, "no prediction id"),
        ("GET /v1/predictions/{id}", "malformed", "not JSON"),
        ("GET /v1/predictions/{id}", {"id": "pred1", "status": "exploded"}, "unknown status"),
        (
            "GET /v1/predictions/{id}",
            {"id": "pred1", "status": "succeeded", "output": None},
            "no output URL",
        ),
    ],
)
def test_malformed_bodies_give_clear_non_retriable_errors(api, route, answer, message):
    api.script(route, [answer])

    async def go(c):
        if route.startswith("POST"):
            return await c.create(_job())
        return await c.status("pred1")

    with pytest.raises(ProviderError) as err:
        run(_with(_client(api.url), go))
    assert message in str(err.value) and not err.value.retriable


def test_wrong_token_is_refused_without_retries(api):
    client = HostedProvider(api.url, token="wrong", timeout=2, retries=3, backoff=0.01)
    with pytest.raises(ProviderError) as err:
        run(_with(client, lambda c: c.create(_job())))
    assert (
        err.value.status_code == 401
        and "Invalid token" in str(err.value)
        and not err.value.retriable
    )
    assert len(api.requests_to("/v1/predictions", "POST")) == 1


def test_unknown_prediction_is_reported_as_lost(api):
    with pytest.raises(ProviderError) as err:
        run(_with(_client(api.url), lambda c: c.status("nope")))
    assert "no longer knows" in str(err.value) and not err.value.retriable


def test_failure_and_safety_rejection(api):
    api.polls_to_finish = 1
    api.outcome = "failed"

    async def go(c):
        pid = await c.create(_job())
        first = await c.status(pid)
        api.error = "NSFW content detected by the safety checker"
        second = await c.status(pid)
        return first, second

    first, second = run(_with(_client(api.url), go))
    assert first.state == FAILED and first.error == "model crashed"
    assert second.state == REJECTED


def test_cancel(api):
    async def go(c):
        pid = await c.create(_job())
        await c.cancel(pid)
        return await c.status(pid)

    assert run(_with(_client(api.url), go)).state == "canceled"


def test_output_on_another_host_is_fetched_without_the_token(api):
    cdn = FakeHostedAPI(token="unused")
    cdn.output_bytes = tiny_png((1, 2, 3))
    with cdn.serve() as cdn_url:
        api.output_base = cdn_url
        api.polls_to_finish = 1

        async def go(c):
            pid = await c.create(_job())
            return await c.fetch_output(pid)

        data, mime = run(_with(_client(api.url), go))
    assert data == cdn.output_bytes
    assert cdn.requests_to("/files/")[0]["authorization"] is None


def test_octet_stream_output_gets_its_type_from_the_bytes(api):
    api.output_mime = "application/octet-stream"
    api.polls_to_finish = 1

    async def go(c):
        return await c.fetch_output(await c.create(_job()))

    assert run(_with(_client(api.url), go))[1] == "image/png"


def test_settings_must_name_url_and_token():
    from workroom_app.settings import Settings

    with pytest.raises(ValueError, match="HOSTED_PROVIDER_URL"):
        HostedProvider.from_settings(Settings(hosted_provider_url="", hosted_provider_token="x"))
    with pytest.raises(ValueError, match="TOKEN"):
        HostedProvider.from_settings(
            Settings(hosted_provider_url="http://127.0.0.1:1", hosted_provider_token="")
        )


# ------------------------------------------------------------------ through the worker


def _work(engine, api, media, **client_kw):
    async def go():
        provider = _client(api.url, media_dir=media, **client_kw)
        worker = Worker(engine, provider, worker_id="hw", poll_interval=0.02, media_dir=media)
        try:
            await worker.run_once()
            await worker.wait_idle()
        finally:
            await provider.aclose()

    asyncio.run(go())


def test_worker_runs_a_job_on_the_hosted_api(sqlite_engine, api, tmp_path):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, IMAGE, provider="hosted")
    api.output_bytes = _png_of_size(32)
    _work(sqlite_engine, api, tmp_path)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.provider_job_id == "pred1"
    assert (tmp_path / str(acct) / f"{job.id}.png").read_bytes() == api.output_bytes
    assert balance(sqlite_engine, acct) == 84


def test_worker_refunds_when_the_hosted_job_fails(sqlite_engine, api, tmp_path):
    acct = make_account(sqlite_engine, 100)
    api.outcome = "failed"
    job = submit(sqlite_engine, acct, IMAGE, provider="hosted")
    _work(sqlite_engine, api, tmp_path)
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.FAILED and "model crashed" in done.error
    assert balance(sqlite_engine, acct) == 100


def test_hosted_worker_leaves_local_jobs_alone(sqlite_engine, api, tmp_path):
    acct = make_account(sqlite_engine, 100)
    job = submit(sqlite_engine, acct, IMAGE, provider="local")
    _work(sqlite_engine, api, tmp_path)
    assert get(sqlite_engine, job.id).status == JobStatus.QUEUED
    assert api.requests == []


def test_worker_refuses_an_output_of_the_wrong_kind(sqlite_engine, api, tmp_path):
    acct = make_account(sqlite_engine, 100)
    job = submit(
        sqlite_engine,
        acct,
        {"feature": "voiceover", "model": "standard", "text": "hello"},
        provider="hosted",
    )
    _work(sqlite_engine, api, tmp_path)  # the stand-in answers with a PNG
    done = get(sqlite_engine, job.id)
    assert done.status == JobStatus.FAILED and "wrong kind of file" in done.error
    assert balance(sqlite_engine, acct) == 100


def test_worker_keeps_the_job_while_the_api_is_down(sqlite_engine, api, tmp_path):
    acct = make_account(sqlite_engine, 100)
    api.script("POST /v1/predictions", [503, 503])
    job = submit(sqlite_engine, acct, IMAGE, provider="hosted")
    _work(sqlite_engine, api, tmp_path, retries=1)
    held = get(sqlite_engine, job.id)
    # not failed: the outage may pass; the lease is released so the next pass retries
    assert held.status == JobStatus.RUNNING and held.lease_until is None
    _work(sqlite_engine, api, tmp_path, retries=1)
    assert get(sqlite_engine, job.id).status == JobStatus.SUCCEEDED


def _png_of_size(n):
    buf = io.BytesIO()
    Image.new("RGB", (n, n), (9, 9, 9)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_list_of_output_urls_is_fetched_file_by_file(api):
    # N images come back as N URLs; each is fetched, in order. A malformed entry fails the answer.
    async def go(c):
        pid = await c.create(_job(count=2))
        api.script(
            "GET /v1/predictions/{id}",
            [
                {
                    "id": pid,
                    "status": "succeeded",
                    "output": [f"{api.url}/files/{pid}", {"url": f"{api.url}/files/b"}],
                },
                {"id": pid, "status": "succeeded", "output": [f"{api.url}/files/{pid}", 7]},
            ],
        )
        files = await c.fetch_outputs(pid)
        try:
            await c.fetch_outputs(pid)
        except ProviderError as exc:
            return files, str(exc)
        return files, None

    files, error = run(_with(_client(api.url), go))
    assert files == [(api.output_bytes, "image/png")] * 2
    assert len(api.requests_to("/files/")) == 2
    assert error == "The generation service sent no output URL."
