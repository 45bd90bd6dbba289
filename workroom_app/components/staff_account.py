"""The account side of the staff accounts page (/staff/accounts): the search,
the selected account's standing, its ledger and its activity (jobs, emails,
sessions, disputes). State: state/staff_accounts.py (and staff_sessions.py)."""

from __future__ import annotations

import reflex as rx

from workroom_app.billing.staff import MAX_REASON_LENGTH
from workroom_app.state.staff import StaffState


def _fact(label: str, value: rx.Var | str, testid: str) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray", min_width="8rem"),
        rx.text(value, size="2", weight="medium", data_testid=testid),
        align="baseline",
        width="100%",
    )


# ------------------------------------------------------------------ search


def search_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                name="query",
                placeholder="Email contains…",
                max_length=254,
                aria_label="Search accounts by email",
                data_testid="staff-search-input",
                flex="1",
            ),
            rx.button(
                rx.icon("search", size=16), "Search", type="submit", data_testid="staff-search"
            ),
            width="100%",
        ),
        on_submit=StaffState.search,
        reset_on_submit=False,
        width="100%",
    )


def _result(row: rx.Var) -> rx.Component:
    active = StaffState.acc_id == row["id"]
    return rx.box(
        rx.hstack(
            rx.vstack(
                rx.text(row["email"], size="2", weight="medium", data_testid="staff-result-email"),
                rx.text(row["name"], size="1", color_scheme="gray"),
                spacing="0",
                min_width="0",
                flex="1",
            ),
            rx.cond(
                row["role"] != "user",
                rx.badge(row["role"], color_scheme="amber", size="1", high_contrast=True),
            ),
            rx.text(row["balance"], size="2", color_scheme="gray", white_space="nowrap"),
            align="center",
            width="100%",
        ),
        on_click=StaffState.select_account(row["id"]),
        cursor="pointer",
        padding_x="0.75rem",
        padding_y="0.5rem",
        border_radius="var(--radius-2)",
        background=rx.cond(active, rx.color("accent", 4), "transparent"),
        _hover={"background": rx.color("accent", 3)},
        width="100%",
        role="button",
        data_testid="staff-result",
        data_account_id=row["id"],
    )


def search_panel() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Accounts", weight="medium"),
            search_form(),
            rx.cond(
                StaffState.search_error != "",
                rx.callout(
                    StaffState.search_error,
                    icon="circle-alert",
                    color_scheme="red",
                    size="1",
                    role="alert",
                    data_testid="staff-search-error",
                ),
            ),
            rx.cond(
                StaffState.results.length() > 0,
                rx.vstack(rx.foreach(StaffState.results, _result), spacing="1", width="100%"),
                rx.text(
                    "No accounts match.",
                    size="2",
                    color_scheme="gray",
                    data_testid="staff-no-results",
                ),
            ),
            rx.cond(
                StaffState.has_more_results,
                rx.button(
                    "More",
                    variant="soft",
                    width="100%",
                    on_click=StaffState.more_results,
                    data_testid="staff-more-results",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


# ---------------------------------------------------------------- overview


def overview_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.vstack(
                    rx.heading(
                        StaffState.acc_email, as_="h3", size="5", data_testid="staff-account-email"
                    ),
                    rx.text(StaffState.acc_name, size="2", color_scheme="gray"),
                    spacing="1",
                ),
                rx.spacer(),
                rx.vstack(
                    rx.text("Balance", size="2", color_scheme="gray"),
                    rx.text(
                        StaffState.acc_balance,
                        size="7",
                        weight="bold",
                        data_testid="staff-account-balance",
                    ),
                    spacing="0",
                    align="end",
                ),
                width="100%",
                align="start",
            ),
            rx.separator(size="4"),
            _fact("Account id", StaffState.acc_id, "staff-account-id"),
            _fact("Role", StaffState.acc_role, "staff-account-role"),
            _fact("Created", StaffState.acc_created, "staff-account-created"),
            _fact("Plan", StaffState.acc_plan, "staff-account-plan"),
            _fact("Subscription", StaffState.acc_subscription, "staff-account-subscription"),
            _fact("Period ends", StaffState.acc_period_end, "staff-account-period-end"),
            rx.hstack(
                rx.text("Generations", size="2", color_scheme="gray", min_width="8rem"),
                rx.text(
                    StaffState.acc_jobs_total,
                    size="2",
                    weight="medium",
                    data_testid="staff-jobs-total",
                ),
                rx.foreach(
                    StaffState.acc_jobs,
                    lambda j: rx.badge(
                        j["status"], ": ", j["count"], variant="soft", color_scheme="gray"
                    ),
                ),
                wrap="wrap",
                align="center",
                width="100%",
            ),
            rx.cond(
                StaffState.acc_invoices.length() > 0,
                rx.vstack(
                    rx.text("Last invoices", size="2", color_scheme="gray"),
                    rx.foreach(
                        StaffState.acc_invoices,
                        lambda inv: rx.hstack(
                            rx.text(inv["number"], size="2", weight="medium"),
                            rx.text(inv["date"], size="2", color_scheme="gray"),
                            rx.text(inv["kind"], size="2"),
                            rx.badge(
                                inv["status_label"],
                                size="1",
                                data_testid="staff-invoice-status",
                                color_scheme=rx.match(
                                    inv["status"], ("paid", "grass"), ("failed", "red"), "gray"
                                ),
                            ),
                            rx.spacer(),
                            rx.text(inv["amount"], size="2"),
                            rx.cond(
                                StaffState.can_refund & (inv["refundable"] == "yes"),
                                rx.button(
                                    "Refund",
                                    size="1",
                                    variant="soft",
                                    color_scheme="red",
                                    on_click=StaffState.open_refund(inv["id"]),
                                    data_testid="staff-invoice-refund",
                                ),
                            ),
                            width="100%",
                            data_testid="staff-invoice",
                        ),
                    ),
                    spacing="1",
                    width="100%",
                ),
                _fact("Invoices", "None", "staff-no-invoices"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="staff-overview",
    )


# ------------------------------------------------------------------ ledger


def ledger_table() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Ledger, newest first", weight="medium"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Date (UTC)"),
                        rx.table.column_header_cell("Action type"),
                        rx.table.column_header_cell("Amount", text_align="right"),
                        rx.table.column_header_cell("Balance after", text_align="right"),
                        rx.table.column_header_cell("Reason"),
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        StaffState.ledger_rows,
                        lambda row: rx.table.row(
                            rx.table.cell(row["date"], white_space="nowrap"),
                            rx.table.cell(row["action"], data_testid="staff-ledger-action"),
                            rx.table.cell(
                                rx.text(
                                    row["amount"],
                                    weight="medium",
                                    color=rx.cond(
                                        row["tone"] == "positive",
                                        rx.color("grass", 11),
                                        rx.color("red", 11),
                                    ),
                                ),
                                text_align="right",
                                data_testid="staff-ledger-amount",
                            ),
                            rx.table.cell(row["balance"], text_align="right"),
                            rx.table.cell(rx.text(row["note"], size="1", color_scheme="gray")),
                            data_testid="staff-ledger-row",
                            data_entry_id=row["id"],
                        ),
                    )
                ),
                variant="surface",
                width="100%",
            ),
            rx.cond(
                StaffState.ledger_rows.length() == 0,
                rx.text("No ledger rows yet.", size="2", color_scheme="gray"),
            ),
            rx.cond(
                StaffState.has_older_rows,
                rx.button(
                    "Older",
                    variant="soft",
                    on_click=StaffState.older_rows,
                    data_testid="staff-ledger-older",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


# ------------------------------------------------------ account activity


def _mini(title: str, rows: rx.Var, cells: list[str], testid: str) -> rx.Component:
    return rx.vstack(
        rx.text(title, size="2", weight="medium"),
        rx.cond(
            rows.length() > 0,
            rx.vstack(
                rx.foreach(
                    rows,
                    lambda r: rx.hstack(
                        *[rx.text(r[c], size="1") for c in cells],
                        spacing="3",
                        wrap="wrap",
                        data_testid=testid,
                    ),
                ),
                spacing="1",
            ),
            rx.text("None.", size="1", color_scheme="gray"),
        ),
        spacing="1",
        width="100%",
    )


def account_activity() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.cond(
                StaffState.acc_disputes.length() > 0,
                rx.callout(
                    rx.vstack(
                        rx.text("Card disputes (chargebacks) from Stripe", weight="medium"),
                        rx.foreach(
                            StaffState.acc_disputes,
                            lambda d: rx.text(
                                d["date"],
                                " · ",
                                d["amount"],
                                " · ",
                                d["reason"],
                                " · ",
                                d["status"],
                                size="2",
                                data_testid="staff-account-dispute",
                            ),
                        ),
                        spacing="1",
                    ),
                    icon="triangle-alert",
                    color_scheme="orange",
                    width="100%",
                ),
            ),
            _mini(
                "Recent generations (stuck ones: Queues page)",
                StaffState.acc_recent_jobs,
                ["date", "what", "status", "cost", "stuck"],
                "staff-account-job",
            ),
            _mini(
                "Emails",
                StaffState.acc_emails,
                ["date", "subject", "status", "error"],
                "staff-account-email-row",
            ),
            _mini(
                "Sessions",
                StaffState.acc_sessions,
                ["created", "expires", "state"],
                "staff-account-session",
            ),
            rx.cond(
                StaffState.can_revoke,
                rx.form(
                    rx.hstack(
                        rx.input(
                            name="reason",
                            placeholder="Reason (required)",
                            max_length=MAX_REASON_LENGTH,
                            flex="1",
                            aria_label="Reason to sign out everywhere",
                        ),
                        rx.button(
                            "Sign out everywhere",
                            type="submit",
                            variant="outline",
                            color_scheme="red",
                            data_testid="staff-sign-out-everywhere",
                        ),
                        width="100%",
                    ),
                    on_submit=StaffState.sign_out_everywhere,
                    reset_on_submit=True,
                    width="100%",
                ),
            ),
            rx.cond(
                StaffState.sessions_error != "",
                rx.callout(
                    StaffState.sessions_error, icon="circle-alert", color_scheme="red", size="1"
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )
