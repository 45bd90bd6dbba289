"""The app shell and the page registry.

A page is one function decorated with `app_page(...)`; the decorator records it
in PAGES (with its sidebar entry, if any) and workroom_app.py registers every
recorded page with the login guard first in its on_load. The sidebar is built
from PAGES, so a new page with `nav=` appears in it without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from workroom_app.components.balance_popover import (
    balance_with_popover,
    confirm_payment_banner,
    past_due_banner,
)
from workroom_app.routes import CREDITS_ROUTE, LANDING_ROUTE, PLANS_ROUTE
from workroom_app.state.alerts import AlertsState
from workroom_app.state.session import SessionState
from workroom_app.state.timezone import TimeZoneState

SIDEBAR_WIDTH = "15rem"


@dataclass(frozen=True)
class NavItem:
    label: str
    icon: str  # a lucide icon name, e.g. "sparkles"
    order: int = 100  # sidebar position, smallest first
    staff_only: bool = False


@dataclass
class PageSpec:
    route: str
    title: str
    body: Callable[[], rx.Component]
    nav: NavItem | None = None
    on_load: list[Any] = field(default_factory=list)
    # Public pages (log-in, sign-up) have no shell and accept signed-out visitors.
    public: bool = False

    def render(self) -> rx.Component:
        if self.public:
            return self.body()
        return layout(self.body(), self.title, route=self.route)


PAGES: list[PageSpec] = []


def app_page(
    route: str,
    title: str,
    *,
    nav: NavItem | None = None,
    on_load: Any = None,
    public: bool = False,
) -> Callable[[Callable[[], rx.Component]], Callable[[], rx.Component]]:
    """Register a page. `on_load` handlers run after the login guard."""
    if not route.startswith("/"):
        raise ValueError(f"page route must start with '/': {route!r}")
    if on_load is None:
        handlers: list[Any] = []
    elif isinstance(on_load, (list, tuple)):
        handlers = list(on_load)
    else:
        handlers = [on_load]

    def register(body: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
        if any(spec.route == route for spec in PAGES):
            raise ValueError(f"two pages registered for {route}")
        PAGES.append(
            PageSpec(route=route, title=title, body=body, nav=nav, on_load=handlers, public=public)
        )
        return body

    return register


def nav_pages() -> list[PageSpec]:
    return sorted((p for p in PAGES if p.nav is not None), key=lambda p: (p.nav.order, p.route))


# ------------------------------------------------------------------- pieces


def _nav_link(spec: PageSpec, current_route: str, *, compact: bool = False) -> rx.Component:
    active = spec.route == current_route
    link = rx.link(
        rx.hstack(
            rx.icon(spec.nav.icon, size=18),
            rx.text(spec.nav.label, size="3", weight="medium"),
            align="center",
            spacing="3",
            padding_x="0.75rem",
            padding_y="0.5rem",
            border_radius="var(--radius-3)",
            width="100%",
            background=rx.color("accent", 4) if active else "transparent",
            color=rx.color("accent", 11) if active else rx.color("gray", 12),
            _hover={"background": rx.color("accent", 3)},
        ),
        href=spec.route,
        underline="none",
        width="100%",
        data_testid=f"nav-{spec.route.strip('/').replace('/', '-') or 'home'}",
        aria_current="page" if active else None,
    )
    if spec.nav.staff_only:
        return rx.cond(SessionState.is_staff, link)
    return link


def brand() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.icon("layers", size=22, color=rx.color("accent", 10)),
            rx.text("Workroom", size="5", weight="bold"),
            align="center",
            spacing="2",
        ),
        href=LANDING_ROUTE,
        underline="none",
        color=rx.color("gray", 12),
    )


def sidebar(current_route: str) -> rx.Component:
    return rx.vstack(
        brand(),
        rx.vstack(
            *[_nav_link(spec, current_route) for spec in nav_pages()],
            spacing="1",
            width="100%",
            margin_top="1.5rem",
        ),
        rx.spacer(),
        rx.hstack(
            rx.text("Plan", size="2", color_scheme="gray"),
            rx.badge(SessionState.plan_name, size="2", data_testid="plan-name"),
            align="center",
            justify="between",
            width="100%",
        ),
        display=["none", "none", "flex"],
        width=SIDEBAR_WIDTH,
        min_width=SIDEBAR_WIDTH,
        height="100vh",
        position="sticky",
        top="0",
        padding="1.25rem",
        border_right=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2),
    )


def mobile_nav(current_route: str) -> rx.Component:
    """Below the desktop breakpoint the sidebar folds into this menu."""
    return rx.box(
        rx.menu.root(
            rx.menu.trigger(
                rx.icon_button(
                    rx.icon("menu"),
                    variant="ghost",
                    size="2",
                    aria_label="Menu",
                    data_testid="mobile-menu",
                ),
            ),
            rx.menu.content(
                *[
                    (rx.cond(SessionState.is_staff, item) if spec.nav.staff_only else item)
                    for spec in nav_pages()
                    for item in [
                        rx.menu.item(
                            rx.hstack(rx.icon(spec.nav.icon, size=16), rx.text(spec.nav.label)),
                            on_click=rx.redirect(spec.route),
                        )
                    ]
                ],
            ),
        ),
        display=["block", "block", "none"],
    )


def balance_badge() -> rx.Component:
    return rx.hstack(
        rx.icon("coins", size=16, color=rx.color("amber", 10)),
        rx.text(
            SessionState.balance_text,
            " credits",
            size="2",
            weight="medium",
            white_space="nowrap",
            data_testid="balance",
        ),
        align="center",
        spacing="2",
        padding_x="0.75rem",
        padding_y="0.35rem",
        border_radius="9999px",
        border=f"1px solid {rx.color('gray', 6)}",
        background=rx.color("gray", 2),
        title="Your credit balance",
    )


def user_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.icon("circle-user", size=18),
                # Hidden on phones (no room) but still the button's name.
                rx.text(SessionState.display_name, class_name="visually-hidden-mobile"),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                size="2",
                data_testid="user-menu",
            ),
        ),
        rx.menu.content(
            rx.menu.item(rx.text(SessionState.email, size="2", color_scheme="gray"), disabled=True),
            rx.menu.item(rx.text("Plan: ", SessionState.plan_name, size="2"), disabled=True),
            rx.menu.separator(),
            rx.menu.item(
                rx.hstack(rx.icon("log-out", size=16), rx.text("Log out")),
                on_click=SessionState.logout,
                color="red",
                data_testid="logout",
            ),
            # Security: ends this account's sessions on every browser and device.
            rx.menu.item(
                rx.hstack(rx.icon("monitor-x", size=16), rx.text("Log out everywhere")),
                on_click=SessionState.logout_everywhere,
                color="red",
                data_testid="logout-everywhere",
            ),
            align="end",
        ),
    )


def header(title: str, current_route: str) -> rx.Component:
    return rx.hstack(
        rx.hstack(
            mobile_nav(current_route),
            # The page's one h1; on phones it is read out but not drawn (no room).
            rx.heading(
                title,
                as_="h1",
                size="5",
                weight="medium",
                data_testid="page-title",
                class_name="visually-hidden-mobile",
            ),
            align="center",
            spacing="2",
        ),
        rx.hstack(
            balance_with_popover(balance_badge()),
            rx.button(
                rx.icon("sparkles", size=16),
                "Upgrade",
                on_click=rx.redirect(PLANS_ROUTE),
                size="2",
                data_testid="upgrade-button",
            ),
            rx.button(
                rx.icon("coins", size=16),
                "Buy credits",
                on_click=rx.redirect(CREDITS_ROUTE),
                size="2",
                variant="soft",
                # On a phone the header has no room: the balance's popover links to Buy credits.
                display=["none", "flex"],
                data_testid="buy-credits-button",
            ),
            user_menu(),
            align="center",
            spacing=rx.breakpoints(initial="2", sm="3"),
        ),
        justify="between",
        align="center",
        width="100%",
        padding_x=["1rem", "1rem", "1.5rem"],
        padding_y="0.75rem",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        position="sticky",
        top="0",
        z_index="10",
        data_testid="app-header",
    )


MAIN_CONTENT_ID = "main-content"


def skip_link() -> rx.Component:
    """The first stop of Tab: jump over the sidebar and header to the page's
    content (on Generate: straight to the form and its Generate button)."""
    return rx.el.a(
        "Skip to main content",
        href=f"#{MAIN_CONTENT_ID}",
        class_name="skip-link",
        data_testid="skip-link",
        # Move focus, not just the scroll position, so the next Tab is inside.
        on_click=rx.call_script(f"document.getElementById('{MAIN_CONTENT_ID}').focus()"),
    )


def time_zone_probe() -> rx.Component:
    """Tell the server the browser's time zone (state/timezone.py)."""
    return rx.box(
        display="none",
        on_mount=rx.call_script(
            "Intl.DateTimeFormat().resolvedOptions().timeZone",
            callback=TimeZoneState.remember_time_zone,
        ),
    )


def confirm_email_banner() -> rx.Component:
    """Until the address is confirmed: the trial waits for it, so say where the link
    went and offer a new one, rather than a bare 0 balance."""
    return rx.callout(
        rx.hstack(
            rx.text(
                "Confirm your email address to receive your ",
                SessionState.trial_credits,
                " free trial credits: we sent a link to ",
                rx.el.strong(SessionState.email),
                ".",
                size="2",
            ),
            rx.button(
                "Send a new link",
                size="1",
                variant="soft",
                on_click=SessionState.resend_confirmation,
                data_testid="confirm-email-resend",
            ),
            justify="between",
            align="center",
            width="100%",
            wrap="wrap",
            spacing="3",
        ),
        icon="mail",
        color_scheme="blue",
        role="status",
        width="100%",
        data_testid="confirm-email-banner",
    )


def layout(content: rx.Component, title: str, *, route: str = "") -> rx.Component:
    """The shell around a signed-in page: sidebar, header with balance, content.

    Until the guard has resolved the login nothing private is rendered.
    """
    return rx.cond(
        SessionState.signed_in,
        rx.hstack(
            skip_link(),
            time_zone_probe(),
            rx.script(src="/a11y.js"),  # keyboard access to scrolling tables
            sidebar(route),
            rx.box(
                header(title, route),
                rx.box(
                    past_due_banner(),
                    padding_x=["1rem", "1rem", "1.5rem"],
                    padding_top="0.75rem",
                    display=rx.cond(AlertsState.past_due_text != "", "block", "none"),
                ),
                rx.box(
                    confirm_payment_banner(),
                    padding_x=["1rem", "1rem", "1.5rem"],
                    padding_top="0.75rem",
                    display=rx.cond(AlertsState.confirmations.length() > 0, "block", "none"),
                ),
                rx.cond(
                    ~SessionState.email_confirmed,
                    rx.box(
                        confirm_email_banner(),
                        padding_x=["1rem", "1rem", "1.5rem"],
                        padding_top="0.75rem",
                    ),
                ),
                rx.el.main(
                    content,
                    id=MAIN_CONTENT_ID,
                    tab_index=-1,
                    padding=["1rem", "1rem", "1.5rem"],
                    max_width="72rem",
                    width="100%",
                ),
                flex="1",
                min_width="0",
            ),
            spacing="0",
            align="start",
            width="100%",
            min_height="100vh",
        ),
        rx.center(rx.spinner(size="3"), height="100vh"),
    )


def auth_layout(*children: rx.Component) -> rx.Component:
    """A centred card for the log-in and sign-up pages (no shell)."""
    return rx.center(
        rx.vstack(
            rx.center(brand(), width="100%"),
            rx.card(rx.vstack(*children, spacing="4", width="100%"), size="3", width="100%"),
            spacing="5",
            width="100%",
            max_width="26rem",
        ),
        min_height="100vh",
        padding="1rem",
        background=rx.color("gray", 2),
    )
