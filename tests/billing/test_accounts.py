"""Accounts: sign-up with the trial grant, log-in, server-side sessions, roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from workroom_app.billing import accounts, clock, ledger
from workroom_app.billing.accounts import AuthError
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    Account,
    ActionType,
    AuthSession,
    CreditGrant,
    LedgerEntry,
    Role,
    Subscription,
    SubscriptionStatus,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _sign_up(engine, email="ann@example.com", password="correct horse", name="Ann"):
    with write_session(engine) as s:
        return accounts.sign_up(s, email, password, name)


def _entries(engine, account_id):
    with read_session(engine) as s:
        return s.exec(select(LedgerEntry).where(LedgerEntry.account_id == account_id)).all()


def test_sign_up_grants_the_trial_once(engine):
    account = _sign_up(engine)
    entries = _entries(engine, account.id)
    assert [(e.action_type, e.amount, e.balance_after) for e in entries] == [
        (ActionType.TRIAL_GRANT, 50, 50)
    ]
    with read_session(engine) as s:
        assert ledger.balance(s, account.id) == 50
        grant = s.exec(select(CreditGrant).where(CreditGrant.account_id == account.id)).one()
        assert grant.expires_at is None and grant.source == "trial"


def test_retried_trial_grant_changes_nothing(engine):
    account = _sign_up(engine)
    with write_session(engine) as s:
        again = accounts.grant_trial(s, account.id)
    assert again.created is False
    assert len(_entries(engine, account.id)) == 1
    with read_session(engine) as s:
        assert ledger.balance(s, account.id) == 50


def test_retried_sign_up_is_refused_and_grants_nothing(engine):
    account = _sign_up(engine)
    with pytest.raises(AuthError, match="already exists"):
        _sign_up(engine, email="  ANN@Example.com ")
    with read_session(engine) as s:
        assert len(s.exec(select(Account)).all()) == 1
        assert ledger.balance(s, account.id) == 50
    assert len(_entries(engine, account.id)) == 1


def test_email_is_normalised(engine):
    account = _sign_up(engine, email="  Bob@Example.COM ")
    assert account.email == "bob@example.com"
    with write_session(engine) as s:
        assert accounts.authenticate(s, "BOB@example.com", "correct horse").id == account.id


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "Enter your email"),
        ("not-an-email", "valid email"),
        ("a@b", "valid email"),
        ("two@@example.com", "valid email"),
        ("sp ace@example.com", "valid email"),
        ("x" * 250 + "@example.com", "valid email"),
        (None, "Enter your email"),
        (12, "Enter your email"),
    ],
)
def test_malformed_email_is_refused(sqlite_engine, email, message):
    with pytest.raises(AuthError, match=message):
        _sign_up(sqlite_engine, email=email)
    with read_session(sqlite_engine) as s:
        assert s.exec(select(Account)).all() == []
        assert s.exec(select(LedgerEntry)).all() == []


@pytest.mark.parametrize(
    "password, message",
    [
        ("", "Enter a password"),
        ("short", "at least 8"),
        ("x" * 300, "at most"),
        (None, "Enter a password"),
    ],
)
def test_weak_password_is_refused(sqlite_engine, password, message):
    with pytest.raises(AuthError, match=message):
        _sign_up(sqlite_engine, password=password)
    with read_session(sqlite_engine) as s:
        assert s.exec(select(Account)).all() == []


def test_password_is_stored_as_argon2_hash(sqlite_engine):
    account = _sign_up(sqlite_engine)
    assert account.password_hash.startswith("$argon2id$")
    assert "correct horse" not in account.password_hash
    other = _sign_up(sqlite_engine, email="other@example.com")
    assert other.password_hash != account.password_hash  # salted


def test_authenticate(engine):
    account = _sign_up(engine)
    with write_session(engine) as s:
        assert accounts.authenticate(s, "ann@example.com", "correct horse").id == account.id


def test_wrong_password_and_unknown_email_get_the_same_message(engine):
    _sign_up(engine)
    with write_session(engine) as s:
        with pytest.raises(AuthError) as wrong:
            accounts.authenticate(s, "ann@example.com", "wrong horse")
        with pytest.raises(AuthError) as unknown:
            accounts.authenticate(s, "nobody@example.com", "correct horse")
    assert str(wrong.value) == str(unknown.value) == "Wrong email or password."


def test_login_with_blank_fields_says_what_is_missing(sqlite_engine):
    with write_session(sqlite_engine) as s:
        with pytest.raises(AuthError, match="Enter your email"):
            accounts.authenticate(s, "", "x")
        with pytest.raises(AuthError, match="Enter your password"):
            accounts.authenticate(s, "ann@example.com", "")


def test_session_token_is_stored_hashed_and_looks_up_the_account(engine):
    account = _sign_up(engine)
    with write_session(engine) as s:
        token = accounts.create_login(s, account.id)
    with read_session(engine) as s:
        row = s.exec(select(AuthSession)).one()
        assert row.token_hash != token and len(row.token_hash) == 64
        assert accounts.lookup_session(s, token).id == account.id
        assert accounts.lookup_session(s, token + "x") is None
        assert accounts.lookup_session(s, "") is None
        assert accounts.lookup_session(s, None) is None
        assert accounts.lookup_session(s, {"token": token}) is None


def test_session_expires(engine):
    account = _sign_up(engine)
    with clock.pinned(T0), write_session(engine) as s:
        token = accounts.create_login(s, account.id, days=30)
    with read_session(engine) as s:
        with clock.pinned(T0 + timedelta(days=30) - timedelta(seconds=1)):
            assert accounts.lookup_session(s, token) is not None
        with clock.pinned(T0 + timedelta(days=30)):
            assert accounts.lookup_session(s, token) is None


def test_logout_revokes_the_session(engine):
    account = _sign_up(engine)
    with write_session(engine) as s:
        token = accounts.create_login(s, account.id)
        other = accounts.create_login(s, account.id)
    with write_session(engine) as s:
        assert accounts.revoke_login(s, token) is True
    with write_session(engine) as s:
        assert accounts.revoke_login(s, token) is False  # already ended
        assert accounts.lookup_session(s, token) is None
        assert accounts.lookup_session(s, other).id == account.id  # other devices stay in


def test_staff_role(engine):
    with write_session(engine) as s:
        staff = accounts.sign_up(s, "boss@example.com", "correct horse", role=Role.STAFF)
        user = accounts.sign_up(s, "user@example.com", "correct horse")
        assert accounts.is_staff(staff) and not accounts.is_staff(user)
        with pytest.raises(AuthError):
            accounts.sign_up(s, "root@example.com", "correct horse", role="superuser")
        accounts.set_role(s, user.id, Role.STAFF)
    with read_session(engine) as s:
        assert accounts.is_staff(s.get(Account, user.id))


def test_current_plan_key(engine):
    account = _sign_up(engine)
    now = clock.now()
    with write_session(engine) as s:
        assert accounts.current_plan_key(s, account.id) == "free"
        s.add(
            Subscription(
                account_id=account.id,
                plan_key="starter",
                status=SubscriptionStatus.ENDED,
                anchor_day=1,
                current_period_start=now,
                current_period_end=now,
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        assert accounts.current_plan_key(s, account.id) == "free"
        s.add(
            Subscription(
                account_id=account.id,
                plan_key="pro",
                status=SubscriptionStatus.ACTIVE,
                anchor_day=1,
                current_period_start=now,
                current_period_end=now + timedelta(days=30),
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        assert accounts.current_plan_key(s, account.id) == "pro"
