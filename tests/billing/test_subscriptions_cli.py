"""`workroom renew --due`, `workroom clock advance --days N`, `workroom outbox list|show|send`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.subscriptions import T0, invoices_of, sign_up, subscribe, subscription_of
from workroom_app.billing import clock
from workroom_app.cli import main as cli


@pytest.fixture
def run(sqlite_engine, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_engine", lambda: sqlite_engine)

    def _run(*argv: str) -> tuple[int, str]:
        code = cli.main(list(argv))
        return code, capsys.readouterr().out

    return _run


def test_renew_due_outbox_and_clock_commands(sqlite_engine, run, monkeypatch, tmp_path):
    with clock.pinned(T0):
        a = sign_up(sqlite_engine, "cli@example.com")
        subscribe(sqlite_engine, a, "pro")
    with clock.pinned(datetime(2026, 2, 28, 10, 0, tzinfo=UTC)):
        code, out = run("renew", "--due")
        assert code == 0 and "renewed 1" in out
        code, out = run("renew", "--due")
        assert "renewed 0" in out
    assert subscription_of(sqlite_engine, a).current_period_end.date().isoformat() == "2026-03-31"
    number = invoices_of(sqlite_engine, a)[-1].number

    code, out = run("outbox", "list")
    assert code == 0 and number in out and "cli@example.com" in out
    pdf = tmp_path / "r.pdf"
    code, out = run("outbox", "show", "2", "--save-attachment", str(pdf))
    assert code == 0 and f"Subject: Your Workroom receipt {number}" in out
    assert pdf.read_bytes().startswith(b"%PDF")
    assert run("outbox", "show", "999")[0] == 1
    from workroom_app.settings import get_settings

    monkeypatch.setattr(get_settings(), "smtp_host", "")
    code, out = run("outbox", "send")
    assert code == 0 and "stay in the outbox" in out

    assert run("clock", "advance", "--days", "-1")[0] == 2
    try:
        code, out = run("clock", "advance", "--days", "2")
        assert code == 0
        assert abs(clock.read_offset(sqlite_engine) - 2 * 86400) < 1
        assert clock.now() > datetime.now(UTC) + timedelta(days=1, hours=23)
    finally:
        clock._cached_offset = (0.0, -1e9)  # the next test reads real time again
