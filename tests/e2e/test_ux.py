"""Every page in Chromium, signed out, as a user and as staff: nothing scrolls
sideways on a 390 px phone, axe-core finds no serious or critical violation,
and the shell's accessibility pieces (skip link, one h1, labelled fields, the
cost announced) and the 404 page work."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import confirmation_link, log_in
from tests.support.served_app import REPO
from workroom_app.billing import accounts, formatting, usage
from workroom_app.db import read_session

pytestmark = pytest.mark.browser

AXE_JS = REPO / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
DEMO = ("demo@workroom.test", "workroom-demo")
FREE = ("free@workroom.test", "workroom-demo")
STAFF = ("staff@workroom.test", "workroom-staff")

# (path, a test id that shows once the page has its content)
SIGNED_OUT_PAGES = [("/login", "login-submit"), ("/signup", "signup-submit")]
USER_PAGES = [
    ("/home", "home-balance"),
    ("/generate", "generate-button"),
    ("/usage", "usage-chart"),
    ("/plans", "plan-grid"),
    ("/subscription", "sub-plan"),
    ("/credits", "pack-rules"),
    ("/no-such-page", "not-found"),
]
FREE_PAGES = [("/checkout?plan=starter", "checkout-plan")]
STAFF_PAGES = [
    ("/staff", "ov-apply"),
    ("/staff/accounts", "staff-search-input"),
    ("/staff/queues", "queues-heading"),
    ("/staff/reports", "reports-filter-waiting"),
    ("/staff/rows?list=revenue", "rows-title"),
]


def _context(browser, base_url, viewport, **extra):
    context = browser.new_context(base_url=base_url, viewport=viewport, **extra)
    context.set_default_timeout(20_000)
    return context


def _settle(page, testid: str) -> None:
    """The page has drawn its content and its spinners are gone."""
    page.get_by_test_id(testid).first.wait_for(state="attached")
    page.wait_for_function("!document.querySelector('.rt-Spinner')", timeout=15_000)
    page.wait_for_timeout(300)


def _visit_all(page, pages):
    for path, testid in pages:
        page.goto(path)
        _settle(page, testid)
        yield path


def _sideways_overflow(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def _axe_problems(page) -> list[str]:
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing ({AXE_JS}): run `make test-setup`")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(
            n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
            for n in v["nodes"][:3]
        )
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _check_every_page(browser, base_url, viewport, check) -> dict[str, object]:  # noqa: ANN001
    """Run `check(page)` on every page, signed out and signed in as each role;
    returns {label: problem} for the pages where it found one."""
    problems: dict[str, object] = {}
    for who, pages in [
        (None, SIGNED_OUT_PAGES),
        (DEMO, USER_PAGES),
        (FREE, FREE_PAGES),
        (STAFF, STAFF_PAGES),
    ]:
        context = _context(browser, base_url, viewport)
        try:
            page = context.new_page()
            if who is not None:
                log_in(page, *who)
            for path in _visit_all(page, pages):
                found = check(page)
                if found:
                    problems[f"{who[0] if who else 'signed out'} {path}"] = found
        finally:
            context.close()
    return problems


def _report(problems: dict[str, object]) -> str:
    return "\n".join(f"{where}: {what}" for where, what in problems.items())


def test_nothing_scrolls_sideways_on_a_phone_on_any_page(browser, base_url):
    def overflow(page):
        width, inner = _sideways_overflow(page)
        return f"scrollWidth {width} > innerWidth {inner}" if width > inner else None

    problems = _check_every_page(browser, base_url, PHONE, overflow)
    assert not problems, _report(problems)


def test_axe_finds_no_serious_or_critical_violation_on_any_page(browser, base_url):
    problems = _check_every_page(browser, base_url, DESKTOP, _axe_problems)
    assert not problems, _report(problems)


def test_axe_on_a_phone_too(browser, base_url):
    """The phone layout (cards, folded menu, hidden title) is checked as well."""
    problems = _check_every_page(browser, base_url, PHONE, _axe_problems)
    assert not problems, _report(problems)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_staff_account_view_fits_a_phone_and_passes_axe(browser, base_url, viewport):
    """The staff page after opening an account (its ledger and invoices)."""
    context = _context(browser, base_url, viewport)
    try:
        page = context.new_page()
        log_in(page, *STAFF)
        page.goto("/staff/accounts")
        page.get_by_test_id("staff-search-input").fill("demo@")
        page.get_by_test_id("staff-search").click()
        page.get_by_test_id("staff-result").first.click()
        expect(page.get_by_test_id("staff-account-email")).to_have_text("demo@workroom.test")
        page.wait_for_timeout(500)
        width, inner = _sideways_overflow(page)
        assert width <= inner, f"scrollWidth {width} > innerWidth {inner}"
        problems = _axe_problems(page)
        assert not problems, "\n".join(problems)
    finally:
        context.close()


# Formats the app used before it had one: ISO dates, "24 Nov 2026", "November 24, 2026".
OTHER_DATE_FORMATS = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2} [A-Z][a-z]{2} \d{4}\b"
    r"|\b(January|February|March|April|June|July|August|September|October|November|December) \d{1,2}, \d{4}"
)
ONE_FORMAT = re.compile(r"\b[A-Z][a-z]{2} \d{1,2}, \d{4}(, \d{2}:\d{2})?")


def test_every_page_uses_the_one_date_format(browser, base_url):
    def check(page):
        text = page.evaluate("document.body.innerText")
        return sorted(set(m.group(0) for m in OTHER_DATE_FORMATS.finditer(text)))

    problems = _check_every_page(browser, base_url, DESKTOP, check)
    assert not problems, _report(problems)
    # ...and the pages with dates do show them in it.
    context = _context(browser, base_url, DESKTOP)
    try:
        page = context.new_page()
        log_in(page, *DEMO)
        for path, testid in [("/usage", "usage-row"), ("/subscription", "payment-row")]:
            page.goto(path)
            _settle(page, testid)
            assert ONE_FORMAT.search(page.evaluate("document.body.innerText")), path
    finally:
        context.close()


def test_usage_on_a_phone_shows_amount_and_balance_after(browser, base_url):
    context = _context(browser, base_url, PHONE)
    try:
        page = context.new_page()
        log_in(page, *DEMO)
        page.goto("/usage")
        cards = page.get_by_test_id("usage-card")
        expect(cards.first).to_be_visible()
        expect(
            page.get_by_test_id("usage-row").first
        ).to_be_hidden()  # the table is for wider screens
        for testid in ("usage-amount", "usage-balance"):
            box = cards.first.get_by_test_id(testid).bounding_box()
            assert (
                box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            ), testid
        # Typing a date does not push the page sideways either.
        page.get_by_test_id("usage-filter-from").fill("2026-01-01")
        page.wait_for_timeout(500)
        width, inner = _sideways_overflow(page)
        assert width <= inner
        page.screenshot(path="/tmp/workroom-usage-phone.png", full_page=True)
    finally:
        context.close()


def test_every_generate_tab_is_on_screen_on_a_phone(browser, base_url):
    context = _context(browser, base_url, PHONE)
    try:
        page = context.new_page()
        log_in(page, *FREE)
        page.goto("/generate")
        for key in ("image", "video", "voiceover", "face_swap", "lip_sync"):
            tab = page.get_by_test_id(f"feature-{key}")
            expect(tab).to_be_visible()
            box = tab.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], key
        page.get_by_test_id("feature-lip_sync").click()
        expect(page.get_by_test_id("form-lip_sync")).to_be_visible()
        page.screenshot(path="/tmp/workroom-generate-phone.png", full_page=True)
    finally:
        context.close()


def test_skip_link_takes_the_keyboard_to_the_form_and_its_generate_button(page):
    log_in(page, *FREE)
    page.goto("/generate")
    _settle(page, "generate-button")
    page.keyboard.press("Tab")
    skip = page.get_by_test_id("skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # shown when focused
    page.keyboard.press("Enter")
    expect(page.locator("#main-content")).to_be_focused()
    # From the main content the Generate button is a handful of Tabs away.
    for presses in range(1, 12):  # noqa: B007  (read after the loop: how many it took)
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement?.dataset?.testid") == "generate-button":
            break
    else:
        pytest.fail("the Generate button was not reached within 11 Tabs of the main content")
    assert presses <= 8
    # The focused control shows a ring.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_one_h1_per_page_and_every_field_has_a_name(browser, base_url):
    def check(page):
        h1 = page.locator("h1").count()
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(el => !el.labels?.length && !el.getAttribute('aria-label')
                               && !el.getAttribute('aria-labelledby'))
                 .map(el => el.name || el.id || el.outerHTML.slice(0, 60))"""
        )
        bad = []
        if h1 != 1:
            bad.append(f"{h1} h1 elements")
        if unnamed:
            bad.append(f"fields without a label: {unnamed}")
        return bad

    problems = _check_every_page(browser, base_url, DESKTOP, check)
    assert not problems, _report(problems)


def test_the_password_field_has_an_accessible_name(page):
    page.goto("/login")
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")
    expect(page.get_by_label("Email")).to_have_attribute("type", "email")


def test_the_cost_on_the_generate_button_is_announced(page):
    log_in(page, *FREE)
    page.goto("/generate")
    label = (
        page.get_by_test_id("form-image").get_by_test_id("generate-button").locator("[aria-live]")
    )
    expect(label).to_have_attribute("aria-live", "polite")
    expect(label).to_contain_text("credit")
    before = label.inner_text()
    page.get_by_test_id("form-image").get_by_test_id("count-select").select_option("3")
    expect(label).not_to_have_text(before)


def test_an_unknown_address_shows_not_found_inside_the_shell_with_a_way_back(page):
    log_in(page, *FREE)
    page.goto("/there-is-nothing-here")
    expect(page.get_by_test_id("not-found")).to_be_visible()
    expect(page.get_by_test_id("page-title")).to_have_text("Page not found")
    expect(page.get_by_test_id("balance")).to_be_visible()  # the shell, with its header
    page.get_by_test_id("not-found-home").click()
    expect(page).to_have_url(re.compile(r"/generate/?$"))


def test_an_unknown_address_sends_a_signed_out_visitor_to_log_in(page):
    page.goto("/there-is-nothing-here")
    expect(page).to_have_url(re.compile(r"/login/?$"))


def test_the_stale_password_message_goes_when_the_browser_blocks_the_form(page):
    page.goto("/signup")
    page.fill("#email", f"stale-{uuid.uuid4().hex[:8]}@example.com")
    page.fill("#password", "a-long-password")
    page.fill("#confirm_password", "another-long-password")
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("auth-error")).to_have_text("The two passwords do not match.")
    # Now too short: the browser's own check blocks the form before it is sent.
    page.fill("#password", "short")
    page.fill("#confirm_password", "short")
    page.get_by_test_id("signup-submit").click()
    assert page.evaluate("!document.querySelector('#password').checkValidity()")
    expect(page.get_by_test_id("auth-error")).to_have_count(0)


def test_times_follow_the_browsers_time_zone_in_one_format(browser, base_url, app_engine):
    """A new account in a Tokyo browser: the zone is stored, the Usage page
    says so and shows its trial row in the one date-time format, in Tokyo time."""
    context = _context(browser, base_url, DESKTOP, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        email = f"tokyo-{uuid.uuid4().hex[:8]}@example.com"
        page.goto("/signup")
        page.fill("#email", email)
        page.fill("#password", "a-long-password")
        page.fill("#confirm_password", "a-long-password")
        page.press("#confirm_password", "Enter")
        expect(page.get_by_test_id("balance")).to_have_text("0 credits")
        # The trial (the Usage row checked below) arrives with the confirmed address.
        page.context.new_page().goto(confirmation_link(app_engine, email))
        expect(page.get_by_test_id("balance")).to_have_text("50 credits")

        def stored_zone() -> str:
            with read_session(app_engine) as s:
                return accounts.find_account(s, email).timezone

        for _ in range(50):
            if stored_zone() == "Asia/Tokyo":
                break
            page.wait_for_timeout(200)
        assert stored_zone() == "Asia/Tokyo"
        page.goto("/usage")
        expect(page.get_by_text("Times are in Asia/Tokyo.")).to_be_visible()
        with read_session(app_engine) as s:
            account = accounts.find_account(s, email)
            [trial] = usage.usage_page(s, account.id).rows
        expected = formatting.format_datetime(trial.created_at, "Asia/Tokyo")
        assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{2}:\d{2}", expected)
        expect(page.get_by_test_id("usage-row").first.get_by_test_id("usage-date")).to_have_text(
            expected
        )
    finally:
        context.close()


def test_cancel_and_resume_auto_renewal_on_the_subscription_page(page, app_engine):
    from workroom_app.billing import subscriptions
    from workroom_app.billing.subscriptions import CardForm
    from workroom_app.db import write_session

    email, password = f"sub-{uuid.uuid4().hex[:10]}@example.com", "a-long-password"
    with write_session(app_engine) as s:  # a declined checkout, then a paid one
        account = accounts.sign_up(s, email, password, "Sub Tester")
        declined = CardForm("4000000000000002", 12, 2030, "123", "Sub Tester")
        assert not subscriptions.subscribe(s, account.id, "starter", card=declined).ok
        assert subscriptions.subscribe(
            s,
            account.id,
            "starter",
            card=CardForm("4242424242424242", 12, 2030, "123", "Sub Tester"),
        ).ok

    def cancel_at_period_end() -> bool:
        with read_session(app_engine) as s:
            return subscriptions.live_subscription(
                s, accounts.find_account(s, email).id
            ).cancel_at_period_end

    log_in(page, email, password)
    page.goto("/subscription")
    expect(page.get_by_test_id("sub-auto-renew")).to_have_text("On")
    # Payment History: the declined attempt with its reason, no number, no PDF.
    rows = page.get_by_test_id("payment-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).get_by_test_id("payment-number")).to_have_text(re.compile(r"WR-\d+-0001"))
    expect(rows.nth(1).get_by_test_id("payment-reason")).to_have_text("Your card was declined.")
    expect(rows.nth(1).get_by_test_id("payment-pdf")).to_have_count(0)
    expect(rows.nth(1).get_by_test_id("payment-no-pdf")).to_have_text("No invoice")

    button = page.get_by_test_id("sub-auto-renew-action")
    expect(button).to_have_text("Cancel auto-renewal")
    button.click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(page.get_by_test_id("confirm-title")).to_have_text("Cancel auto-renewal")
    assert not cancel_at_period_end()  # nothing changes before the confirmation
    page.get_by_test_id("confirm-apply").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("sub-auto-renew")).to_contain_text("Off · ends")
    assert cancel_at_period_end()
    expect(button).to_have_text("Resume auto-renewal")
    button.click()
    page.get_by_test_id("confirm-apply").click()
    expect(page.get_by_test_id("sub-auto-renew")).to_have_text("On")
    assert not cancel_at_period_end()


def test_axe_core_is_pinned_and_installed_by_test_setup():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"axe-core@\d+\.\d+\.\d+", makefile)
    assert Path(AXE_JS).exists()
