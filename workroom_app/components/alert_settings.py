"""The Alerts and Auto top-up cards of the Subscription page (plain forms:
the server checks every value on Save)."""

from __future__ import annotations

import reflex as rx

from workroom_app.state.alert_settings import AlertSettingsState, PackOption


def _checkbox(name: str, label: str, checked) -> rx.Component:  # noqa: ANN001
    return rx.el.label(
        rx.el.input(
            type="checkbox", name=name, default_checked=checked, data_testid=f"setting-{name}"
        ),
        rx.text(label, as_="span", size="2"),
        style={"display": "flex", "gap": "0.5rem", "alignItems": "center"},
    )


def _number(name: str, label: str, value, placeholder, hint: str = "") -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.el.label(rx.text(label, as_="span", size="2", weight="medium"), html_for=name),
        rx.input(
            id=name,
            name=name,
            default_value=value,
            placeholder=placeholder,
            input_mode="numeric",
            max_length=12,
            width="10rem",
            data_testid=f"setting-{name}",
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        spacing="1",
    )


def _error(message) -> rx.Component:  # noqa: ANN001
    return rx.cond(
        message != "",
        rx.callout(
            message,
            icon="circle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            data_testid="settings-error",
        ),
    )


def alerts_card() -> rx.Component:
    s = AlertSettingsState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Alerts", size="4", as_="h3"),
                rx.text(
                    "Alerts appear by your balance and as emails. Turning an email off stops that email; "
                    "the alert still shows in the app.",
                    size="2",
                    color_scheme="gray",
                ),
                _number(
                    "low_balance_threshold",
                    "Low balance: alert me below (credits)",
                    s.threshold_text,
                    "Default: " + s.default_threshold_text,
                    "Empty: 10% of your plan's monthly credits. We alert you once each time your "
                    "balance falls below it.",
                ),
                _checkbox(
                    "email_low_balance", "Email me when my balance is low", s.email_low_balance
                ),
                _checkbox(
                    "email_credits_expiring",
                    "Email me 7 days and 1 day before credits expire",
                    s.email_credits_expiring,
                ),
                _checkbox(
                    "email_payment_failed", "Email me when a payment fails", s.email_payment_failed
                ),
                _checkbox("email_plan_ended", "Email me when my plan ends", s.email_plan_ended),
                _error(s.alerts_error),
                rx.button(
                    "Save alert settings", type="submit", loading=s.busy, data_testid="save-alerts"
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=AlertSettingsState.save_alerts,
            reset_on_submit=False,
            key=s.version,
        ),
        size="3",
        width="100%",
        id="alerts",
        data_testid="alerts-settings",
    )


def _pack_option(option: PackOption) -> rx.Component:
    return rx.el.option(option.label, value=option.key)


def auto_top_up_card() -> rx.Component:
    s = AlertSettingsState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.heading("Auto top-up", size="4", as_="h3"),
                    rx.badge(
                        rx.cond(s.auto_on, "On", "Off"),
                        color_scheme=rx.cond(s.auto_on, "green", "gray"),
                        data_testid="auto-top-up-status",
                    ),
                    spacing="2",
                    align="center",
                ),
                rx.text(
                    "When your balance falls below your threshold, we buy the pack you chose with your card "
                    "on file, at most the number of times you allow per calendar month. A declined card turns "
                    "auto top-up off and we email you the reason. Every top-up has an invoice and a receipt.",
                    size="2",
                    color_scheme="gray",
                ),
                _checkbox("auto_top_up", "Turn on auto top-up", s.auto_on),
                rx.hstack(
                    _number(
                        "top_up_threshold",
                        "When my balance falls below (credits)",
                        s.top_up_threshold_text,
                        "e.g. 100",
                    ),
                    rx.vstack(
                        rx.el.label(
                            rx.text("Buy", as_="span", size="2", weight="medium"),
                            html_for="top_up_pack",
                        ),
                        rx.el.select(
                            rx.foreach(s.pack_options, _pack_option),
                            id="top_up_pack",
                            name="top_up_pack",
                            default_value=s.top_up_pack,
                            data_testid="setting-top_up_pack",
                        ),
                        spacing="1",
                    ),
                    _number(
                        "top_up_monthly_cap", "At most (times a month)", s.top_up_cap_text, "2"
                    ),
                    spacing="4",
                    wrap="wrap",
                ),
                rx.text(
                    "Top-ups this month: ", s.top_ups_this_month, size="1", color_scheme="gray"
                ),
                _error(s.top_up_error),
                rx.button(
                    "Save auto top-up", type="submit", loading=s.busy, data_testid="save-top-up"
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=AlertSettingsState.save_top_up,
            reset_on_submit=False,
            key=s.version,
        ),
        size="3",
        width="100%",
        id="auto-top-up",
        data_testid="auto-top-up-settings",
    )
