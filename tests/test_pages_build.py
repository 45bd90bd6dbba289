"""Every page's component tree builds (Reflex checks children and props when a
component is created), so a broken page fails here in seconds rather than only
when the served app compiles in the browser tests."""

from __future__ import annotations

import pytest

import workroom_app.workroom_app  # noqa: F401  (registers every page, like the server)
from workroom_app.components.layout import PAGES


@pytest.mark.parametrize("spec", PAGES, ids=lambda spec: spec.route)
def test_the_page_builds(spec):
    component = spec.render()
    assert component is not None
    assert component.render()  # the tree serializes, as the compiler does


def test_every_staff_page_is_registered():
    routes = {spec.route for spec in PAGES}
    assert {"/staff", "/staff/accounts", "/staff/queues", "/staff/reports"} <= routes
