"""Usage page in Chromium: the demo user sees the ledger as the database has
it, filters it, and the CSV download holds exactly the rows shown."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import log_in
from workroom_app.billing import accounts, usage
from workroom_app.db import read_session

pytestmark = pytest.mark.browser

DEMO = ("demo@workroom.test", "workroom-demo")
SCREENSHOT = "/tmp/workroom-usage.png"


def _db_rows(engine, email: str, filters: usage.UsageFilter | None = None):
    with read_session(engine) as s:
        account = accounts.find_account(s, email)
        tz = usage.account_timezone(s, account.id)
        page = usage.usage_page(s, account.id, filters=filters)
        expiring = usage.expiry_line(usage.next_expiry(s, account.id), tz)
        spend = usage.spend_by_day(s, account.id, 30, tz)
    return page, tz, expiring, spend


def _shown(page) -> list[dict[str, str]]:
    rows = page.get_by_test_id("usage-row")
    out = []
    for i in range(rows.count()):
        row = rows.nth(i)
        out.append(
            {
                "id": row.get_attribute("data-entry-id"),
                "feature": row.get_by_test_id("usage-feature").inner_text().strip(),
                "date": row.get_by_test_id("usage-date").inner_text().strip(),
                "action": row.get_by_test_id("usage-action").inner_text().strip(),
                "amount": row.get_by_test_id("usage-amount").inner_text().strip(),
                "balance": row.get_by_test_id("usage-balance").inner_text().strip(),
            }
        )
    return out


def _expected(db_page, tz) -> list[dict[str, str]]:
    return [
        {
            "id": str(r.id),
            "feature": usage.feature_label(r.feature) or "—",
            "date": usage.format_timestamp(r.created_at, tz),
            "action": usage.action_label(r.action_type),
            "amount": usage.format_amount(r.amount),
            "balance": usage.format_credits(r.balance_after),
        }
        for r in db_page.rows
    ]


def test_demo_user_sees_the_ledger_filters_it_and_downloads_the_same_rows(page, app_engine):
    log_in(page, *DEMO)
    page.get_by_test_id("nav-usage").click()
    db_page, tz, expiring, spend = _db_rows(app_engine, DEMO[0])
    assert db_page.rows, "the demo seed gives the demo user a history"
    rows = page.get_by_test_id("usage-row")
    expect(rows).to_have_count(len(db_page.rows))
    assert _shown(page) == _expected(db_page, tz)
    page.screenshot(path=SCREENSHOT, full_page=True)

    # Signed amounts are coloured: credits in green, spending in red.
    first_debit = next(i for i, r in enumerate(db_page.rows) if r.amount < 0)
    colour = (
        rows.nth(first_debit)
        .get_by_test_id("usage-amount")
        .locator("span, p")
        .first.evaluate("el => getComputedStyle(el).color")
    )
    assert colour != "rgb(0, 0, 0)"
    # The expiry notice lives in the balance's popover on every page now (tests/e2e/test_alerts.py).
    expect(page.get_by_test_id("usage-expiry")).to_have_count(0)
    if any(v for day in spend for k, v in day.items() if k not in ("date", "label")):
        expect(
            page.get_by_test_id("usage-chart").locator(".recharts-bar-rectangle").first
        ).to_be_visible()

    # Filter to generations: the rows follow the database's answer.
    page.get_by_test_id("usage-filter-action").click()
    page.get_by_role("option", name="Generation", exact=True).click()
    db_gen, tz, _, _ = _db_rows(
        app_engine, DEMO[0], usage.UsageFilter(action_types=("generation",))
    )
    assert db_gen.rows
    expect(rows).to_have_count(len(db_gen.rows))
    expect(rows.first.get_by_test_id("usage-action")).to_have_text("Generation")
    shown = _shown(page)
    assert shown == _expected(db_gen, tz)

    # The CSV holds exactly the filtered rows shown (all of them fit one page here).
    with page.expect_download() as info:
        page.get_by_test_id("usage-export-csv").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    assert tuple(lines[0]) == usage.csv_header(tz)
    body = lines[1:]
    assert not db_gen.has_more, "the demo history fits one page of generations"
    assert [line[0] for line in body] == [r["id"] for r in shown]
    for line, row in zip(body, shown, strict=True):
        assert line[1] == row["date"] and line[3] == row["action"]
        assert (line[4] or "—") == row["feature"]
        assert usage.format_amount(int(line[5])) == row["amount"]
        assert usage.format_credits(int(line[6])) == row["balance"]


def test_a_bad_date_range_shows_a_message(page):
    log_in(page, *DEMO)
    page.goto("/usage")
    expect(page.get_by_test_id("usage-row").first).to_be_visible()
    page.get_by_test_id("usage-filter-to").fill("2026-01-01")
    page.get_by_test_id("usage-filter-from").fill("2026-02-01")
    expect(page.get_by_test_id("usage-error")).to_have_text(
        "The start date must be on or before the end date."
    )
