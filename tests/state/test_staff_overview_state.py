"""The staff overview state through the real event path: staff only, and a
forged or malformed date range is refused with a message."""

from __future__ import annotations

import pytest

from tests.support.pages import NOW, StaffTab, make_user, runner
from workroom_app.models import Role
from workroom_app.state.staff_overview import StaffOverviewState

pytestmark = pytest.mark.usefixtures("fast_hashing")
run = runner(StaffTab, now=NOW)


async def _open(tab):
    tab.path = "/staff"
    return await tab.send(StaffOverviewState, "load")


def test_a_user_is_bounced_and_sees_no_figures(app_db):
    _, token = make_user(app_db, "ann@example.com")

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        sent = await _open(tab)
        assert "staff members only" in sent and "redirect" in sent
        st = await tab.state(StaffOverviewState)
        assert not st.allowed and st.cards == []
        await tab.send(
            StaffOverviewState,
            "apply_range",
            form_data={"start": "2026-01-01", "end": "2026-02-01"},
        )
        st = await tab.state(StaffOverviewState)
        assert st.cards == []

    run(scenario)


def test_staff_see_the_default_range_and_bad_ranges_are_refused(app_db):
    _, token = make_user(app_db, "help@staff.test", Role.SUPPORT)

    async def scenario(new_tab):
        tab = new_tab()
        await tab.sign_in(token)
        await _open(tab)
        st = await tab.state(StaffOverviewState)
        assert st.allowed and st.range_text.endswith("(UTC)")
        assert {c["testid"] for c in st.cards} >= {"ov-revenue", "ov-mrr", "ov-outstanding"}
        for form in (
            {"start": "2026-05-01", "end": "2026-04-01"},
            {"start": "x", "end": "y"},
            {"start": 5, "end": None},
            "not a form",
            {"start": "2020-01-01", "end": "2026-01-01"},
        ):
            await tab.send(StaffOverviewState, "apply_range", form_data=form)
            st = await tab.state(StaffOverviewState)
            assert st.error, form
        await tab.send(
            StaffOverviewState,
            "apply_range",
            form_data={"start": "2026-11-01", "end": "2026-11-10"},
        )
        st = await tab.state(StaffOverviewState)
        assert st.error == "" and st.range_text == "Nov 1, 2026 to Nov 10, 2026 (UTC)"

    run(scenario)
