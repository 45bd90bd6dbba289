"""Every money figure on the staff overview links to the rows behind it, and
those rows are the ones the figure counts: for each link the overview sends
(cards, revenue by kind and by day, MRR movement, active subscriptions by
plan), the linked list's count and sum equal the figure, and the listed rows
add up to the same. Both pages are driven through the real event path, on
SQLite and PostgreSQL. Forged addresses and non-staff callers get nothing."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from tests.support.pages import NOW, StaffTab, make_user, runner
from tests.support.subscriptions import FAILS_ON_CHARGE, VISA
from workroom_app.billing import clock, formatting, invoice_refunds, subscriptions
from workroom_app.db import read_session, write_session
from workroom_app.models import Invoice, PaymentDispute, Role
from workroom_app.state.staff_figure_rows import BAD_ADDRESS, StaffFigureRowsState
from workroom_app.state.staff_overview import StaffOverviewState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


def _at(when, fn, *args, **kwargs):
    with clock.pinned(when), write_session() as s:
        return fn(s, *args, **kwargs)


def _seed(engine, finance_id: int) -> None:
    """Activations, an upgrade, a downgrade, a failed renewal (past due), a
    cancellation that ended, a partial invoice refund and an open dispute."""
    users = {name: make_user(engine, f"{name}@example.com")[0] for name in "abcde"}
    early, mid = NOW - timedelta(days=33), NOW - timedelta(days=12)
    _at(early, subscriptions.subscribe, users["a"], "pro", card=VISA)  # renews inside the range
    _at(early, subscriptions.subscribe, users["d"], "pro", card=VISA)
    _at(early, subscriptions.save_card, users["d"], FAILS_ON_CHARGE)  # its renewal fails
    _at(mid, subscriptions.subscribe, users["b"], "starter", card=VISA)
    _at(mid, subscriptions.subscribe, users["c"], "studio", card=VISA)
    _at(early, subscriptions.subscribe, users["e"], "starter", card=VISA)
    _at(mid + timedelta(days=1), subscriptions.change_plan, users["b"], "pro")  # upgrade
    _at(mid + timedelta(days=1), subscriptions.change_plan, users["c"], "starter")  # downgrade
    _at(early + timedelta(days=1), subscriptions.cancel, users["e"])  # ends at renewal time
    with clock.pinned(NOW - timedelta(days=2)):
        report = subscriptions.renew_due(engine)
        assert (report.failed, report.renewed, report.ended) == (1, 1, 1), report
    with read_session(engine) as s:
        activation = s.exec(
            select(Invoice).where(Invoice.account_id == users["b"], Invoice.kind == "activation")
        ).one()
    with clock.pinned(NOW - timedelta(days=1)):
        out = invoice_refunds.refund_invoice(
            engine,
            finance_id,
            users["b"],
            activation.id,
            "4.00",
            reason="Goodwill for ticket 7",
            request_id="refund-figure-rows",
        )
        assert out.status == invoice_refunds.SUCCEEDED, out
    with write_session(engine) as s:
        s.add(
            PaymentDispute(
                id="dp_1",
                account_id=users["a"],
                charge_id="ch_1",
                amount_cents=3000,
                reason="fraudulent",
                status="needs_response",
                created_at=NOW - timedelta(days=1),
                updated_at=NOW - timedelta(days=1),
            )
        )


async def _rows(tab, href: str) -> tuple[str, str, list[dict[str, str]], str]:
    tab.path = href
    await tab.send(StaffFigureRowsState, "load")
    st = await tab.state(StaffFigureRowsState)
    assert st.allowed and st.error == "", (href, st.error)
    assert st.truncated_text == ""
    return st.count_text, st.total_text, list(st.rows), st.title


def _sum(rows: list[dict[str, str]]) -> str:
    cents = 0
    for r in rows:
        text = r["amount"].replace("$", "").replace(",", "")
        whole, frac = text.lstrip("-").split(".")
        cents += (-1 if text.startswith("-") else 1) * (int(whole) * 100 + int(frac))
    return formatting.format_money(cents)


@pytest.mark.parametrize("which", ["sqlite", "postgres"])
def test_each_money_figure_links_to_exactly_the_rows_it_counts(request, which):
    engine = request.getfixturevalue("app_db" if which == "sqlite" else "pg_app_db")
    _, token = make_user(engine, "boss@staff.test", Role.ADMIN)
    finance, _ = make_user(engine, "money@staff.test", Role.FINANCE)
    _seed(engine, finance)
    checked: list[str] = []

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        tab.path = "/staff"
        await tab.send(StaffOverviewState, "load")
        ov = await tab.state(StaffOverviewState)
        assert ov.allowed
        cards = {c["testid"]: c for c in ov.cards}
        rows_tab = new_tab()
        await rows_tab.sign_in(token)

        async def same(href: str, total: str, count: str | None = None) -> None:
            got_count, got_total, rows, title = await _rows(rows_tab, href)
            assert got_total == total, (href, title, got_total, total)
            assert _sum(rows) == total, (href, rows)
            assert len(rows) == int(got_count.replace(",", ""))
            if count is not None:
                assert got_count == count, (href, got_count, count)
            checked.append(parse_qs(urlsplit(href).query)["list"][0])

        await same(cards["ov-revenue"]["href"], cards["ov-revenue"]["value"])
        await same(cards["ov-refunds"]["href"], cards["ov-refunds"]["value"])
        await same(cards["ov-mrr"]["href"], cards["ov-mrr"]["value"])
        for testid in ("ov-past-due", "ov-disputes"):
            count, total = cards[testid]["value"].split(" · ")
            await same(cards[testid]["href"], total, count)
        for kind in ov.revenue_kinds:
            await same(kind["href"], kind["text"])
        for day in ov.revenue_days:
            await same(day["revenue_href"], day["revenue"])
            await same(day["refunds_href"], day["refunds"])
        moves = {m["label"]: m for m in ov.mrr_cards}
        for label in ("New", "Expansion"):
            await same(moves[label]["href"], moves[label]["value"])
        await same(moves["Churn"]["href"], moves["Churn"]["value"].lstrip("-"))
        # Credits by category: ledger rows, the total their sum without sign.
        assert len(ov.credit_totals) >= 5
        for total in ov.credit_totals:
            count, credits, rows, title = await _rows(rows_tab, total["href"])
            assert credits == f"{total['value']} credits", (title, credits, total)
            unsigned = sum(int(r["amount"].lstrip("+\u2212").replace(",", "")) for r in rows)
            assert f"{unsigned:,} credits" == credits and f"{len(rows):,}" == count
            checked.append("credits")
        for plan in ov.plans:
            _, _, rows, _ = await _rows(rows_tab, plan["href"])
            assert f"{len(rows):,}" == plan["count"]
            checked.append("plan")
        # Past due shows the failed amount of each subscription.
        _, _, rows, _ = await _rows(rows_tab, cards["ov-past-due"]["href"])
        assert [r["email"] for r in rows] == ["d@example.com"]
        assert rows[0]["detail"].startswith("failed payment $30.00")

    run(scenario)
    # Every kind of link was followed, with something behind it.
    assert {"revenue", "refunds", "subscriptions", "disputes", "churn", "plan", "credits"} <= set(
        checked
    )
    assert len(checked) > 12


def test_forged_addresses_and_non_staff_get_no_rows(request):
    engine = request.getfixturevalue("app_db")
    _, token = make_user(engine, "help@staff.test", Role.SUPPORT)
    _, user_token = make_user(engine, "ann@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        for href in (
            "/staff/rows",
            "/staff/rows?list=ledger",
            "/staff/rows?list=revenue&kind=Robert');DROP",
            "/staff/rows?list=revenue&from=2026-13-01&to=2026-01-01",
            "/staff/rows?list=revenue&from=2020-01-01&to=2026-01-01",
            "/staff/rows?list=subscriptions&status=ended",
            "/staff/rows?list=revenue&sub=yes",
            "/staff/rows?list=credits",
            "/staff/rows?list=credits&category=granted_generation",
            "/staff/rows?list=credits&category=stolen",
        ):
            tab.path = href
            await tab.send(StaffFigureRowsState, "load")
            st = await tab.state(StaffFigureRowsState)
            assert st.error and st.rows == [], href
        st = await tab.state(StaffFigureRowsState)
        assert st.error  # the last one
        tab.path = "/staff/rows?list=ledger"
        await tab.send(StaffFigureRowsState, "load")
        assert (await tab.state(StaffFigureRowsState)).error == BAD_ADDRESS
        intruder = new_tab()
        await intruder.sign_in(user_token)
        intruder.path = "/staff/rows?list=revenue"
        sent = await intruder.send(StaffFigureRowsState, "load")
        st = await intruder.state(StaffFigureRowsState)
        assert "redirect" in sent and not st.allowed and st.rows == []

    run(scenario)
