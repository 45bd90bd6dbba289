"""The balance's popover in the header (every page): the unread-alerts badge
on the balance, and, when opened, the balance by source, what expires next
("N credits expire on DATE") and the latest alerts."""

from __future__ import annotations

import reflex as rx

from workroom_app.routes import (
    CREDITS_ROUTE,
    SUBSCRIPTION_ALERTS_ANCHOR,
    SUBSCRIPTION_CARD_ANCHOR,
    USAGE_ROUTE,
)
from workroom_app.state.alerts import AlertItem, AlertsState, SourceRow
from workroom_app.state.session import SessionState


def unread_badge() -> rx.Component:
    return rx.cond(
        AlertsState.unread > 0,
        rx.badge(
            AlertsState.unread,
            color_scheme="red",
            variant="solid",
            radius="full",
            size="1",
            data_testid="alerts-badge",
            aria_label=AlertsState.unread.to_string() + " unread alerts",
        ),
    )


def refresh_on_balance_change() -> rx.Component:
    """An invisible element keyed on the balance: React mounts it again on every
    balance change, and its on_mount re-reads the alerts (and toasts new ones)."""
    return rx.el.span(
        key=SessionState.balance_text,
        on_mount=AlertsState.refresh,
        style={"display": "none"},
        aria_hidden="true",
    )


def _source_row(row: SourceRow) -> rx.Component:
    return rx.hstack(
        rx.text(row.label, size="2", color_scheme="gray"),
        rx.text(row.credits_text, size="2", weight="medium", data_testid=row.testid),
        justify="between",
        width="100%",
    )


def _alert_row(alert: AlertItem) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.cond(
                alert.unread,
                rx.box(
                    width="0.5rem",
                    height="0.5rem",
                    border_radius="9999px",
                    background=rx.color("red", 9),
                    flex_shrink="0",
                    margin_top="0.4rem",
                ),
            ),
            rx.vstack(
                rx.text(alert.title, size="2", weight="medium"),
                rx.text(alert.body, size="1", color_scheme="gray"),
                rx.cond(alert.link != "", rx.link("Open", href=alert.link, size="1")),
                spacing="1",
            ),
            spacing="2",
            align="start",
        ),
        padding_y="0.4rem",
        border_top=f"1px solid {rx.color('gray', 4)}",
        width="100%",
        data_testid="alert-item",
    )


def popover_content() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("Balance", size="2", color_scheme="gray"),
            rx.text(SessionState.balance_text, " credits", size="3", weight="bold"),
            justify="between",
            width="100%",
        ),
        rx.foreach(AlertsState.sources, _source_row),
        rx.cond(
            AlertsState.expiring_text != "",
            rx.callout(
                AlertsState.expiring_text,
                icon="clock",
                size="1",
                color_scheme="amber",
                width="100%",
                data_testid="header-expiry",
            ),
            rx.text(
                "Nothing expires soon.",
                size="1",
                color_scheme="gray",
                data_testid="header-expiry-none",
            ),
        ),
        rx.hstack(
            rx.link("Buy credits", href=CREDITS_ROUTE, size="2"),
            rx.link("Usage", href=USAGE_ROUTE, size="2"),
            rx.link("Alert settings", href=SUBSCRIPTION_ALERTS_ANCHOR, size="2"),
            spacing="3",
            wrap="wrap",
        ),
        rx.separator(size="4"),
        rx.hstack(
            rx.text("Alerts", size="2", weight="medium"),
            rx.cond(
                AlertsState.unread > 0,
                rx.button(
                    "Mark all read",
                    on_click=AlertsState.mark_all_read,
                    size="1",
                    variant="ghost",
                    data_testid="alerts-mark-read",
                ),
            ),
            justify="between",
            width="100%",
        ),
        rx.cond(
            AlertsState.alerts.length() > 0,
            rx.box(
                rx.foreach(AlertsState.alerts, _alert_row),
                max_height="16rem",
                overflow_y="auto",
                width="100%",
            ),
            rx.text("No alerts yet.", size="1", color_scheme="gray"),
        ),
        spacing="2",
        width="20rem",
        max_width="90vw",
        data_testid="balance-popover",
    )


def balance_with_popover(badge: rx.Component) -> rx.Component:
    """`badge` (the header's balance) as the trigger of the popover."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.box(
                rx.hstack(
                    badge,
                    unread_badge(),
                    refresh_on_balance_change(),
                    # Read after the balance, so the accessible name starts with what is seen.
                    rx.text(": details and alerts", as_="span", class_name="visually-hidden"),
                    align="center",
                    spacing="1",
                ),
                cursor="pointer",
                role="button",
                tab_index=0,
                aria_haspopup="dialog",
                data_testid="balance-trigger",
            ),
        ),
        rx.popover.content(popover_content(), align="end"),
        on_open_change=AlertsState.refresh_on_open,
    )


def past_due_banner() -> rx.Component:
    """On every page while a renewal payment is failing: what failed, when we
    retry, how to fix it."""
    return rx.cond(
        AlertsState.past_due_text != "",
        rx.callout(
            rx.hstack(
                rx.text(AlertsState.past_due_text, size="2"),
                rx.cond(
                    AlertsState.past_due_confirm_url != "",
                    # A full page load: the confirmation step is served outside the app's pages.
                    rx.link(
                        rx.button(
                            "Confirm this payment", size="1", color_scheme="red", variant="solid"
                        ),
                        href=AlertsState.past_due_confirm_url,
                        reload_document=True,
                        data_testid="past-due-confirm",
                    ),
                    rx.link(
                        rx.button("Fix payment", size="1", color_scheme="red", variant="solid"),
                        href=SUBSCRIPTION_CARD_ANCHOR,
                    ),
                ),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
                spacing="3",
            ),
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            data_testid="past-due-banner",
        ),
    )


def confirm_payment_banner() -> rx.Component:
    """On every page while a payment waits for its card holder (3-D Secure): what it
    is, until when, and the way to the confirmation step."""
    return rx.foreach(
        AlertsState.confirmations,
        lambda item: rx.callout(
            rx.hstack(
                rx.text(item.message, size="2"),
                rx.link(
                    rx.button("Confirm this payment", size="1", variant="solid"),
                    href=item.url,
                    reload_document=True,  # the confirmation step is outside the app's pages
                    data_testid="confirm-payment-link",
                ),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
                spacing="3",
            ),
            icon="shield-check",
            color_scheme="amber",
            role="status",
            width="100%",
            data_testid="confirm-payment-banner",
        ),
    )
