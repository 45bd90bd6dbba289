"""billing/staff.py on both engines: search, overview, ledger pages and the
staff adjustment (reason required, never below zero, idempotent, staff only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from workroom_app.billing import accounts, clock, ledger, staff
from workroom_app.billing.ledger_check import check_ledger
from workroom_app.billing.staff import StaffError, StaffOnly
from workroom_app.db import read_session, write_session
from workroom_app.models import (
    ActionType,
    GenerationJob,
    Invoice,
    LedgerEntry,
    Role,
    Subscription,
    SubscriptionStatus,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
REQ = "request-0001"


@pytest.fixture(autouse=True)
def _fast_and_pinned(monkeypatch):
    # Nobody logs in here: skip argon2's deliberate slowness.
    monkeypatch.setattr(accounts, "hash_password", lambda password: "argon2-not-needed")
    with clock.pinned(NOW):
        yield


def make(engine, email: str, role: str = Role.USER) -> int:
    with write_session(engine) as s:
        return accounts.sign_up(
            s, email, "correct horse battery", email.split("@")[0], role=role
        ).id


def _people(engine) -> dict[str, int]:
    return {
        "staff": make(engine, "boss@example.com", Role.STAFF),
        "staff2": make(engine, "deputy@example.com", Role.STAFF),
        "user": make(engine, "ann@example.com"),
    }


@pytest.fixture
def people(engine):
    """A staff member, a second staff member and a user with the 50 trial credits."""
    return _people(engine)


@pytest.fixture
def lone(sqlite_engine):
    """The same people on SQLite only, for checks of input that never reach the
    database engine (validation is the same code on both)."""
    return sqlite_engine, _people(sqlite_engine)


def balance(engine, account_id: int) -> int:
    with read_session(engine) as s:
        return ledger.balance(s, account_id)


def ledger_rows(engine, account_id: int) -> list[LedgerEntry]:
    with read_session(engine) as s:
        return list(
            s.exec(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.id)
            )
        )


def adjust(
    engine, actor: int, account: int, amount, reason="Goodwill for a failed render", request_id=REQ
) -> staff.AdjustmentResult:
    with write_session(engine) as s:
        return staff.adjust(s, actor, account, amount, reason=reason, request_id=request_id)


def assert_consistent(engine) -> None:
    with read_session(engine) as s:
        assert check_ledger(s) == []


# ------------------------------------------------------------------ staff only


def test_every_function_refuses_a_non_staff_actor(engine, people):
    user = people["user"]
    before = ledger_rows(engine, user)
    with read_session(engine) as s:
        for call in (
            lambda: staff.search_accounts(s, user, ""),
            lambda: staff.account_overview(s, user, user),
            lambda: staff.recent_ledger(s, user, user),
            lambda: staff.preview_adjustment(s, user, people["staff"], 10, "Because I can"),
        ):
            with pytest.raises(StaffOnly, match="Only staff members"):
                call()
    with pytest.raises(StaffOnly):
        adjust(engine, user, user, 1000)
    # Forged or missing actors are refused the same way.
    for actor in (None, 0, -1, True, "1", 10**30, 999_999):
        with pytest.raises(StaffOnly):
            adjust(engine, actor, user, 10)
    assert isinstance(StaffOnly(), PermissionError)
    assert ledger_rows(engine, user) == before
    assert balance(engine, user) == 50


def test_a_demoted_staff_member_is_refused_at_once(engine, people):
    with write_session(engine) as s:
        accounts.set_role(s, people["staff"], Role.USER)
    with pytest.raises(StaffOnly):
        adjust(engine, people["staff"], people["user"], 10)
    assert balance(engine, people["user"]) == 50


# ---------------------------------------------------------------------- search


def test_search_matches_an_email_fragment_case_insensitively(engine, people):
    with read_session(engine) as s:
        found = staff.search_accounts(s, people["staff"], "  ANN@  ")
        assert [r.email for r in found.rows] == ["ann@example.com"]
        assert found.rows[0].balance == 50 and found.rows[0].role == "user"
        assert found.next_after_id is None
        everyone = staff.search_accounts(s, people["staff"], "")
        assert [r.id for r in everyone.rows] == sorted(people.values())
        assert staff.search_accounts(s, people["staff"], "nobody").rows == []


def test_search_treats_like_wildcards_as_text(engine, people):
    make(engine, "under_score@example.com")
    with read_session(engine) as s:
        assert [r.email for r in staff.search_accounts(s, people["staff"], "_").rows] == [
            "under_score@example.com"
        ]
        assert staff.search_accounts(s, people["staff"], "%").rows == []


def test_search_pages_by_id(engine, people):
    ids = [make(engine, f"user{i}@shop.example") for i in range(5)]
    seen = []
    after = None
    with read_session(engine) as s:
        while True:
            page = staff.search_accounts(s, people["staff"], "shop", after_id=after, limit=2)
            seen += [r.id for r in page.rows]
            assert len(page.rows) <= 2
            if page.next_after_id is None:
                break
            after = page.next_after_id
    assert seen == ids


def test_search_refuses_a_malformed_query_or_page(lone):
    engine, people = lone
    with read_session(engine) as s:
        for query in (5, ["ann"], {"q": "ann"}, "x" * 255):
            with pytest.raises(StaffError):
                staff.search_accounts(s, people["staff"], query)
        for kwargs in (
            {"limit": 0},
            {"limit": 101},
            {"limit": "5"},
            {"after_id": "x"},
            {"after_id": -3},
        ):
            with pytest.raises(StaffError):
                staff.search_accounts(s, people["staff"], "", **kwargs)


# -------------------------------------------------------------------- overview


def test_overview_of_a_free_account(engine, people):
    with read_session(engine) as s:
        o = staff.account_overview(s, people["staff"], people["user"])
    assert (o.email, o.role, o.balance, o.plan_key) == ("ann@example.com", "user", 50, "free")
    assert o.created_at == NOW
    assert o.subscription is None and o.jobs_total == 0 and o.job_counts == {} and o.invoices == []


def test_overview_shows_subscription_jobs_and_latest_invoices(engine, people):
    user = people["user"]
    with write_session(engine) as s:
        s.add(
            Subscription(
                account_id=user,
                plan_key="starter",
                status=SubscriptionStatus.ENDED,
                anchor_day=1,
                current_period_start=NOW - timedelta(days=60),
                current_period_end=NOW - timedelta(days=30),
                created_at=NOW,
                updated_at=NOW,
            )
        )
        s.add(
            Subscription(
                account_id=user,
                plan_key="pro",
                status=SubscriptionStatus.ACTIVE,
                anchor_day=24,
                current_period_start=NOW,
                current_period_end=NOW + timedelta(days=30),
                cancel_at_period_end=True,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        for i, status in enumerate(["succeeded", "succeeded", "failed"]):
            s.add(
                GenerationJob(
                    account_id=user,
                    client_request_id=f"job-{i}",
                    feature="image",
                    model="flux_schnell",
                    params_json="{}",
                    cost=1,
                    status=status,
                    created_at=NOW,
                    deadline_at=NOW,
                    updated_at=NOW,
                )
            )
        for seq in range(1, 8):
            s.add(
                Invoice(
                    account_id=user,
                    seq=seq,
                    number=f"WR-{user}-{seq}",
                    kind="renewal",
                    status="paid",
                    amount_cents=1900,
                    idempotency_key=f"inv-{user}-{seq}",
                    created_at=NOW,
                )
            )
    with read_session(engine) as s:
        o = staff.account_overview(s, people["staff"], user)
    assert o.plan_key == "pro"
    assert o.subscription.plan_key == "pro" and o.subscription.status == "active"
    assert o.subscription.cancel_at_period_end is True
    assert o.subscription.current_period_end == NOW + timedelta(days=30)
    assert o.job_counts == {"failed": 1, "succeeded": 2} and o.jobs_total == 3
    assert [i.number for i in o.invoices] == [f"WR-{user}-{n}" for n in (7, 6, 5, 4, 3)]


def test_overview_of_a_bad_or_unknown_id_says_not_found(engine, people):
    with read_session(engine) as s:
        for account_id in (0, -1, True, "abc", "1e3", None, 3.0, 10**30, 424242):
            with pytest.raises(StaffError, match="not found"):
                staff.account_overview(s, people["staff"], account_id)


# ---------------------------------------------------------------------- ledger


def test_recent_ledger_pages_newest_first_and_names_the_staff_member(engine, people):
    user = people["user"]
    for i in range(4):
        adjust(
            engine,
            people["staff"],
            user,
            i + 1,
            reason=f"Correction number {i}",
            request_id=f"req-{i:06d}",
        )
    ids = [e.id for e in ledger_rows(engine, user)]  # trial + 4 adjustments
    seen, before = [], None
    with read_session(engine) as s:
        while True:
            page = staff.recent_ledger(s, people["staff"], user, before_id=before, limit=2)
            seen += page.rows
            if page.next_before_id is None:
                break
            before = page.next_before_id
    assert [r.id for r in seen] == ids[::-1]
    newest = seen[0]
    assert newest.action_label == "Staff adjustment" and newest.amount == 4
    assert newest.reason == "Correction number 3" and newest.actor_email == "boss@example.com"
    assert seen[-1].action_type == ActionType.TRIAL_GRANT and seen[-1].actor_email is None


# ------------------------------------------------------------------ adjustment


def test_a_positive_adjustment_adds_credits_with_the_reason_and_the_staff_member(engine, people):
    user = people["user"]
    result = adjust(engine, people["staff"], user, 25, reason="  Refund for   ticket #42 ")
    assert result.created and result.amount == 25 and result.balance_after == 75
    assert balance(engine, user) == 75
    row = ledger_rows(engine, user)[-1]
    assert row.action_type == ActionType.STAFF_ADJUSTMENT
    assert (row.amount, row.balance_after, row.actor_id) == (25, 75, people["staff"])
    assert row.reason == "Refund for ticket #42"
    assert_consistent(engine)


def test_a_negative_adjustment_removes_credits(engine, people):
    user = people["user"]
    result = adjust(engine, people["staff"], user, "-20", reason="Duplicate grant removed")
    assert result.amount == -20 and result.balance_after == 30
    assert balance(engine, user) == 30
    assert_consistent(engine)


def test_an_adjustment_never_takes_the_balance_below_zero(engine, people):
    user = people["user"]
    before = ledger_rows(engine, user)
    with read_session(engine) as s, pytest.raises(StaffError, match="never goes below zero"):
        staff.preview_adjustment(s, people["staff"], user, -51, "Too much removed")
    with pytest.raises(StaffError, match="Cannot remove 51 credits: the balance is only 50"):
        adjust(engine, people["staff"], user, -51)
    assert ledger_rows(engine, user) == before and balance(engine, user) == 50
    # Exactly to zero is allowed.
    assert adjust(engine, people["staff"], user, -50).balance_after == 0
    assert_consistent(engine)


def test_an_adjustment_needs_a_written_reason(engine, people):
    for reason, message in [
        ("", "Write the reason"),
        ("   ", "Write the reason"),
        (None, "Write the reason"),
        ("oops", "at least 5"),
        ("x" * 501, "at most 500"),
        (123, "Write the reason"),
        (["a reason"], "Write the reason"),
    ]:
        with pytest.raises(StaffError, match=message):
            adjust(engine, people["staff"], people["user"], 10, reason=reason)
    assert balance(engine, people["user"]) == 50
    assert len(ledger_rows(engine, people["user"])) == 1


def test_a_reason_of_exactly_the_limits_is_accepted(engine, people):
    adjust(engine, people["staff"], people["user"], 1, reason="fixed", request_id="req-min-0001")
    adjust(engine, people["staff"], people["user"], 1, reason="r" * 500, request_id="req-max-0001")
    assert balance(engine, people["user"]) == 52


@pytest.mark.parametrize(
    "amount",
    [
        0,
        "0",
        "",
        "  ",
        True,
        False,
        2.5,
        "2.5",
        "abc",
        "1e3",
        "0x10",
        "1_000",
        1_000_001,
        -1_000_001,
        "1000001",
        10**40,
        None,
        [5],
        {"n": 5},
        "\u0663",
        "1,00",
        "--5",
    ],
)
def test_a_malformed_or_out_of_range_amount_is_refused(lone, amount):
    engine, people = lone
    with pytest.raises(StaffError):
        adjust(engine, people["staff"], people["user"], amount)
    assert balance(engine, people["user"]) == 50


def test_amounts_as_typed():
    assert staff.parse_amount("+25") == 25
    assert staff.parse_amount("1,000") == 1000
    assert staff.parse_amount("\u22125") == -5
    assert staff.parse_amount(" -10 ") == -10
    assert staff.parse_amount(1_000_000) == 1_000_000
    assert staff.parse_amount(-1_000_000) == -1_000_000


def test_the_same_request_twice_applies_once(engine, people):
    user = people["user"]
    first = adjust(engine, people["staff"], user, 100)
    again = adjust(engine, people["staff"], user, 100)
    assert first.created and not again.created
    assert again.entry_id == first.entry_id and again.balance_after == 150
    assert balance(engine, user) == 150
    assert len(ledger_rows(engine, user)) == 2
    # The same request id cannot be reused for a different change.
    with pytest.raises(StaffError, match="already used"):
        adjust(engine, people["staff"], user, 5)
    # Another staff member's request with the same id is a different request.
    assert adjust(engine, people["staff2"], user, 100).created
    assert balance(engine, user) == 250
    assert_consistent(engine)


def test_a_repeated_removal_applies_once_even_when_a_second_would_overdraw(engine, people):
    user = people["user"]
    adjust(engine, people["staff"], user, -40)
    repeat = adjust(engine, people["staff"], user, -40)
    assert not repeat.created and balance(engine, user) == 10


def test_a_missing_or_malformed_request_id_is_refused(lone):
    engine, people = lone
    for request_id in (None, "", "short", "x" * 65, "has space here", 12345678, "\u00e4" * 10):
        with pytest.raises(StaffError, match="expired"):
            adjust(engine, people["staff"], people["user"], 10, request_id=request_id)
    assert balance(engine, people["user"]) == 50


def test_staff_cannot_adjust_their_own_balance(engine, people):
    with pytest.raises(StaffError, match="your own balance"):
        adjust(engine, people["staff"], people["staff"], 1000)
    assert balance(engine, people["staff"]) == 50
    # A colleague can.
    assert adjust(engine, people["staff2"], people["staff"], 10).balance_after == 60


def test_an_unknown_account_is_refused(engine, people):
    with pytest.raises(StaffError, match="not found"):
        adjust(engine, people["staff"], 987_654, 10)


def test_the_preview_restates_the_effect(engine, people):
    with read_session(engine) as s:
        add = staff.preview_adjustment(
            s, people["staff"], people["user"], "100", "Goodwill gesture"
        )
        remove = staff.preview_adjustment(
            s, people["staff"], people["user"], -1, "Goodwill gesture"
        )
    assert add.summary == "Add 100 credits to ann@example.com: balance 50 \u2192 150"
    assert remove.summary == "Remove 1 credit from ann@example.com: balance 50 \u2192 49"
    assert (
        staff.describe_adjustment("a@b.c", 1000, 50, 1050)
        == "Add 1,000 credits to a@b.c: balance 50 \u2192 1,050"
    )
    # A preview writes nothing.
    assert balance(engine, people["user"]) == 50
