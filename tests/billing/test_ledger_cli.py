"""`workroom ledger check`: exit 0 and a count when clean, 1 and the problems otherwise."""

from __future__ import annotations

from sqlalchemy import text

from tests.support.ledger import T0, make_account
from workroom_app.billing import clock, ledger
from workroom_app.cli import main as cli
from workroom_app.db import write_session
from workroom_app.models import ActionType, GrantSource


def test_ledger_check_command(engine, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_engine", lambda: engine)
    with clock.pinned(T0):
        acct = make_account(engine, "someone@example.test")
        make_account(engine, "other@example.test")
        with write_session(engine) as s:
            ledger.grant(
                s,
                acct,
                50,
                action_type=ActionType.TRIAL_GRANT,
                source=GrantSource.TRIAL,
                idempotency_key="trial",
            )
            ledger.debit(s, acct, 20, feature="image", idempotency_key="d")
    assert cli.main(["ledger", "check"]) == 0
    assert capsys.readouterr().out.strip() == "ledger clean: 2 accounts"
    assert cli.main(["ledger", "check", "--email", "someone@example.test"]) == 0
    assert capsys.readouterr().out.strip() == "ledger clean: 1 accounts"

    with write_session(engine) as s:
        s.execute(text(f"UPDATE account_balance SET balance = 999 WHERE account_id = {acct}"))
    assert cli.main(["ledger", "check"]) == 1
    out = capsys.readouterr().out
    assert "cached balance 999 != sum of ledger 30" in out and "problem(s)" in out
    assert cli.main(["ledger", "check", "--email", "other@example.test"]) == 0
    assert cli.main(["ledger", "check", "--email", "nobody@example.test"]) == 1
