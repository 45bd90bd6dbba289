"""Subscription (/subscription): the current plan, renewal, the card on file
(replace it) and Payment History with a PDF of every invoice."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.alert_settings import alerts_card, auto_top_up_card
from workroom_app.components.backend_url import backend_url
from workroom_app.components.layout import NavItem, app_page
from workroom_app.components.plan_card_form import card_form
from workroom_app.components.plan_cards import confirm_dialog
from workroom_app.routes import PLANS_ROUTE, SUBSCRIPTION_ROUTE
from workroom_app.state.alert_settings import AlertSettingsState
from workroom_app.state.plans import PlansState
from workroom_app.state.subscription import PaymentRow, SubscriptionState


def _item(label: str, value, testid: str) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.text(label, size="2", color_scheme="gray"),
        rx.text(value, size="4", weight="bold", data_testid=testid),
        spacing="1",
    )


def auto_renewal_button() -> rx.Component:
    """Cancel or resume auto-renewal, as on the Plans card: the click sends the
    current plan's key to PlansState.open_action, which works out the action
    with the same checks, shows the same confirmation (confirm_dialog) and
    applies it through the same billing functions."""
    return rx.cond(
        SubscriptionState.plan_status != "free",
        rx.button(
            rx.cond(
                SubscriptionState.auto_renew,
                rx.fragment(rx.icon("circle-stop", size=16), "Cancel auto-renewal"),
                rx.fragment(rx.icon("refresh-cw", size=16), "Resume auto-renewal"),
            ),
            on_click=PlansState.open_action(SubscriptionState.current_plan_key),
            loading=PlansState.opening == SubscriptionState.current_plan_key,
            variant="soft",
            color_scheme=rx.cond(SubscriptionState.auto_renew, "red", "green"),
            data_testid="sub-auto-renew-action",
        ),
    )


def overview() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.grid(
                _item("Current plan", SubscriptionState.current_plan, "sub-plan"),
                _item("Next renewal", SubscriptionState.renewal_text, "sub-renewal-date"),
                _item("Renewal amount", SubscriptionState.renewal_amount, "sub-renewal-amount"),
                rx.vstack(
                    rx.text("Auto-renewal", size="2", color_scheme="gray"),
                    rx.cond(
                        SubscriptionState.plan_status == "free",
                        rx.badge(
                            "Not subscribed",
                            color_scheme="gray",
                            size="2",
                            data_testid="sub-auto-renew",
                        ),
                        rx.cond(
                            SubscriptionState.plan_status == "past_due",
                            rx.badge(
                                "Past due",
                                color_scheme="red",
                                size="2",
                                data_testid="sub-auto-renew",
                            ),
                            rx.cond(
                                SubscriptionState.auto_renew,
                                rx.badge(
                                    "On",
                                    color_scheme="green",
                                    size="2",
                                    data_testid="sub-auto-renew",
                                ),
                                rx.badge(
                                    "Off · ends " + SubscriptionState.period_end,
                                    color_scheme="amber",
                                    size="2",
                                    data_testid="sub-auto-renew",
                                ),
                            ),
                        ),
                    ),
                    spacing="1",
                ),
                columns=rx.breakpoints(initial="2", md="4"),
                spacing="4",
                width="100%",
            ),
            rx.cond(
                SubscriptionState.retry_note != "",
                rx.callout(
                    SubscriptionState.retry_note,
                    icon="triangle-alert",
                    color_scheme="amber",
                    width="100%",
                    data_testid="sub-retry-note",
                ),
            ),
            rx.cond(
                (SubscriptionState.plan_status == "past_due")
                & SubscriptionState.has_card
                & SubscriptionState.cards_managed_here,
                rx.button(
                    rx.icon("credit-card", size=16),
                    "Pay now with ",
                    SubscriptionState.card_label,
                    on_click=SubscriptionState.pay_now,
                    loading=SubscriptionState.pay_busy,
                    color_scheme="red",
                    data_testid="sub-pay-now",
                ),
            ),
            rx.cond(
                (SubscriptionState.plan_status == "past_due")
                & ~SubscriptionState.cards_managed_here,
                rx.button(
                    rx.icon("credit-card", size=16),
                    "Pay now with your card on file at Stripe",
                    on_click=SubscriptionState.pay_now,
                    loading=SubscriptionState.pay_busy,
                    color_scheme="red",
                    data_testid="sub-pay-now-stripe",
                ),
            ),
            rx.flex(
                rx.link(
                    rx.button(
                        rx.icon("gem", size=16),
                        "Change plan",
                        variant="soft",
                        data_testid="sub-change-plan",
                    ),
                    href=PLANS_ROUTE,
                ),
                auto_renewal_button(),
                gap="3",
                wrap="wrap",
            ),
            spacing="4",
            width="100%",
        ),
        size="3",
        width="100%",
    )


def card_on_file() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.hstack(
                    rx.icon("credit-card", size=20),
                    rx.text(
                        rx.cond(
                            SubscriptionState.has_card,
                            SubscriptionState.card_label,
                            "No card on file",
                        ),
                        size="3",
                        data_testid="sub-card",
                    ),
                    align="center",
                    spacing="2",
                ),
                rx.cond(
                    SubscriptionState.cards_managed_here,
                    rx.button(
                        rx.cond(
                            SubscriptionState.card_form_open,
                            "Close",
                            rx.cond(SubscriptionState.has_card, "Replace card", "Add a card"),
                        ),
                        on_click=SubscriptionState.toggle_card_form,
                        variant="soft",
                        data_testid="sub-replace-card",
                        aria_expanded=rx.cond(SubscriptionState.card_form_open, "true", "false"),
                    ),
                    rx.text("Managed by Stripe", size="2", color_scheme="gray"),
                ),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
                spacing="3",
            ),
            rx.text(
                rx.cond(
                    SubscriptionState.has_card,
                    "This card pays renewals, upgrades and downgrades.",
                    "A card on file pays renewals, upgrades and downgrades.",
                ),
                size="2",
                color_scheme="gray",
            ),
            rx.cond(
                SubscriptionState.card_form_open,
                rx.box(
                    card_form(
                        on_submit=SubscriptionState.submit_card,
                        busy=SubscriptionState.card_busy,
                        submit_label="Save card",
                        number_error=SubscriptionState.number_error,
                        expiry_error=SubscriptionState.expiry_error,
                        cvc_error=SubscriptionState.cvc_error,
                        name_error=SubscriptionState.name_error,
                        form_error=SubscriptionState.card_form_error,
                        testid="replace-card-form",
                    ),
                    max_width="28rem",
                    width="100%",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
        id="card",
    )


def status_badge(row: PaymentRow) -> rx.Component:
    return rx.badge(
        row.status_label,
        color_scheme=rx.match(row.status, ("paid", "green"), ("failed", "red"), "gray"),
        high_contrast=True,  # the soft green on white is below 4.5:1
        size="2",
        data_testid="payment-status",
    )


def pdf_link(row: PaymentRow) -> rx.Component:
    return rx.el.a(
        rx.icon("download", size=14),
        "Download PDF",
        href=backend_url(row.pdf),
        download=row.number + ".pdf",
        # rx.el.a renders React Router's Link, which would route the click
        # inside the app; a download must be a real request to the backend.
        custom_attrs={"reloadDocument": True},
        data_testid="payment-pdf",
        aria_label="Download PDF of invoice " + row.number,
        style={
            "display": "inline-flex",
            "alignItems": "center",
            "gap": "0.35rem",
            "fontSize": "14px",
            "color": "var(--accent-11)",
            "whiteSpace": "nowrap",
        },
    )


def _number_button(row: PaymentRow) -> rx.Component:
    """The invoice number opens its details; a failed attempt has no number
    (it is not an invoice), so its button says "Details"."""
    return rx.cond(
        row.number != "",
        rx.button(
            row.number,
            on_click=SubscriptionState.open_invoice(row.id),
            variant="ghost",
            size="1",
            data_testid="payment-number",
            aria_label="Invoice details " + row.number,
            style={"paddingLeft": 0, "marginLeft": 0},
        ),
        rx.button(
            "Details",
            on_click=SubscriptionState.open_invoice(row.id),
            variant="ghost",
            size="1",
            data_testid="payment-details",
            aria_label="Details of the failed payment of " + row.date,
            style={"paddingLeft": 0, "marginLeft": 0},
        ),
    )


def _pdf_or_none(row: PaymentRow) -> rx.Component:
    """Only a paid (numbered) invoice has a PDF."""
    return rx.cond(
        row.pdf != "",
        pdf_link(row),
        rx.text("No invoice", size="2", color_scheme="gray", data_testid="payment-no-pdf"),
    )


def payment_table_row(row: PaymentRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.date, white_space="nowrap", data_testid="payment-date"),
        rx.table.cell(
            rx.vstack(
                rx.text(row.description, size="2", data_testid="payment-description"),
                _number_button(row),
                rx.cond(
                    row.reason != "",
                    rx.text(row.reason, size="1", color_scheme="red", data_testid="payment-reason"),
                ),
                spacing="1",
            ),
        ),
        rx.table.cell(row.amount, white_space="nowrap", data_testid="payment-amount"),
        rx.table.cell(row.card, white_space="nowrap", data_testid="payment-card"),
        rx.table.cell(status_badge(row)),
        rx.table.cell(_pdf_or_none(row)),
        data_testid="payment-row",
        custom_attrs={"data-invoice-number": row.number},
    )


def payment_card(row: PaymentRow) -> rx.Component:
    """The same payment as a card, for phones (a six-column table does not fit)."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(row.amount, size="4", weight="bold", data_testid="payment-amount"),
                status_badge(row),
                justify="between",
                width="100%",
            ),
            rx.text(row.description, size="2", data_testid="payment-description"),
            rx.hstack(
                rx.text(row.date, size="2", color_scheme="gray"),
                rx.text("·", color_scheme="gray"),
                rx.text(row.card, size="2", color_scheme="gray"),
                wrap="wrap",
                spacing="2",
            ),
            rx.cond(
                row.reason != "",
                rx.text(row.reason, size="2", color_scheme="red", data_testid="payment-reason"),
            ),
            rx.hstack(_number_button(row), _pdf_or_none(row), justify="between", width="100%"),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="payment-card-mobile",
    )


def payment_history() -> rx.Component:
    return rx.vstack(
        rx.heading("Payment History", size="5", as_="h2"),
        rx.cond(
            SubscriptionState.payments.length() == 0,
            rx.cond(
                SubscriptionState.loading,
                rx.center(rx.spinner(size="3"), width="100%", padding="2rem"),
                rx.card(
                    rx.vstack(
                        rx.icon("receipt", size=28, color=rx.color("gray", 9)),
                        rx.text("No payments yet", weight="medium"),
                        rx.text(
                            "Your invoices appear here after your first payment.",
                            size="2",
                            color_scheme="gray",
                        ),
                        rx.link("See plans", href=PLANS_ROUTE, size="2"),
                        align="center",
                        spacing="2",
                        padding="1.5rem",
                    ),
                    width="100%",
                    data_testid="payments-empty",
                ),
            ),
            rx.vstack(
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Date"),
                                rx.table.column_header_cell("Description"),
                                rx.table.column_header_cell("Amount"),
                                rx.table.column_header_cell("Card"),
                                rx.table.column_header_cell("Status"),
                                rx.table.column_header_cell("Invoice"),
                            ),
                        ),
                        rx.table.body(rx.foreach(SubscriptionState.payments, payment_table_row)),
                        variant="surface",
                        width="100%",
                        data_testid="payments-table",
                    ),
                    display=["none", "none", "block"],
                    width="100%",
                ),
                rx.vstack(
                    rx.foreach(SubscriptionState.payments, payment_card),
                    display=["flex", "flex", "none"],
                    width="100%",
                    spacing="3",
                ),
                rx.cond(
                    SubscriptionState.has_more,
                    rx.button(
                        "Show older payments",
                        on_click=SubscriptionState.more_payments,
                        variant="soft",
                        data_testid="payments-more",
                    ),
                ),
                width="100%",
                spacing="3",
            ),
        ),
        spacing="3",
        width="100%",
    )


def invoice_dialog() -> rx.Component:
    inv = SubscriptionState.invoice
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(inv.number != "", "Invoice " + inv.number, "Failed payment")),
            rx.dialog.description(inv.date, " · ", inv.status_label, size="2", color_scheme="gray"),
            rx.vstack(
                rx.foreach(
                    SubscriptionState.invoice_lines,
                    lambda line: rx.hstack(
                        rx.text(line.description, size="2"),
                        rx.text(line.amount, size="2", weight="bold", white_space="nowrap"),
                        justify="between",
                        width="100%",
                    ),
                ),
                rx.separator(size="4"),
                rx.hstack(
                    rx.text("Total", weight="bold"),
                    rx.text(inv.amount, weight="bold"),
                    justify="between",
                    width="100%",
                ),
                rx.cond(
                    SubscriptionState.invoice_period != "",
                    rx.text(
                        "Period: ", SubscriptionState.invoice_period, size="2", color_scheme="gray"
                    ),
                ),
                rx.text("Card: ", inv.card, size="2", color_scheme="gray"),
                rx.cond(inv.reason != "", rx.text(inv.reason, size="2", color_scheme="red")),
                spacing="2",
                width="100%",
                margin_y="1rem",
            ),
            rx.flex(
                _pdf_or_none(inv),
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                justify="between",
                align="center",
                width="100%",
            ),
            max_width="28rem",
            data_testid="invoice-dialog",
        ),
        open=SubscriptionState.invoice_open,
        on_open_change=SubscriptionState.set_invoice_open,
    )


@app_page(
    SUBSCRIPTION_ROUTE,
    "Subscription",
    nav=NavItem("Subscription", "credit-card", order=40),
    on_load=[SubscriptionState.load, AlertSettingsState.load],
)
def subscription_page() -> rx.Component:
    return rx.vstack(
        overview(),
        card_on_file(),
        alerts_card(),
        auto_top_up_card(),
        payment_history(),
        invoice_dialog(),
        confirm_dialog(),
        spacing="5",
        width="100%",
    )
