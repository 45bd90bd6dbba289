from sqlalchemy import inspect


def test_migrations_build_every_table(engine):
    tables = set(inspect(engine).get_table_names())
    assert {"account", "ledger_entry", "credit_grant", "account_balance"} <= tables
