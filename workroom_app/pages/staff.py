"""Staff accounts (/staff/accounts; the overview is /staff): find any account, see its standing, correct its balance.

Shown to staff only: the sidebar entry is staff_only, StaffState.load sends
anybody else to the landing page (/generate), and nothing here renders until the server has checked
the role (StaffState.allowed).
"""

from __future__ import annotations

import reflex as rx

from workroom_app.billing.staff import MAX_ADJUSTMENT, MAX_REASON_LENGTH
from workroom_app.components.layout import NavItem, app_page
from workroom_app.routes import STAFF_ACCOUNTS_ROUTE
from workroom_app.state.staff import StaffState


def _fact(label: str, value, testid: str) -> rx.Component:  # noqa: ANN001
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


def _result(row) -> rx.Component:  # noqa: ANN001
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


# -------------------------------------------------------------- adjustment


def adjustment_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.text("Adjust balance", weight="medium"),
                rx.text(
                    f"A positive amount adds credits that never expire; a negative one removes "
                    f"credits (never below zero). At most {MAX_ADJUSTMENT:,} either way.",
                    size="2",
                    color_scheme="gray",
                ),
                rx.input(
                    name="amount",
                    placeholder="Credits, e.g. 25 or -10",
                    input_mode="numeric",
                    max_length=12,
                    aria_label="Credits to add or remove",
                    data_testid="staff-adjust-amount",
                    width="12rem",
                ),
                rx.text_area(
                    name="reason",
                    placeholder="Reason (required, shown in the ledger)",
                    max_length=MAX_REASON_LENGTH,
                    rows="3",
                    aria_label="Reason",
                    data_testid="staff-adjust-reason",
                    width="100%",
                ),
                rx.cond(
                    StaffState.adjust_error != "",
                    rx.callout(
                        StaffState.adjust_error,
                        icon="circle-alert",
                        color_scheme="red",
                        size="1",
                        role="alert",
                        data_testid="staff-adjust-error",
                    ),
                ),
                rx.hstack(
                    rx.button(
                        "Cancel",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        on_click=StaffState.close_adjustment,
                        data_testid="staff-adjust-cancel",
                    ),
                    rx.button("Review", type="submit", data_testid="staff-adjust-review"),
                    justify="end",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=StaffState.review_adjustment,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
        data_testid="staff-adjust-form",
    )


def confirm_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Confirm adjustment"),
            rx.dialog.description(
                StaffState.confirm_text, size="3", weight="medium", data_testid="staff-confirm-text"
            ),
            rx.box(
                rx.text("Reason: ", StaffState.confirm_reason, size="2", color_scheme="gray"),
                margin_y="1rem",
            ),
            rx.flex(
                rx.dialog.close(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        disabled=StaffState.busy,
                        data_testid="staff-confirm-cancel",
                    ),
                ),
                rx.button(
                    "Apply adjustment",
                    on_click=StaffState.confirm_adjustment,
                    loading=StaffState.busy,
                    data_testid="staff-confirm-apply",
                ),
                spacing="3",
                justify="end",
            ),
            max_width="30rem",
            data_testid="staff-confirm-dialog",
        ),
        open=StaffState.confirm_open,
        on_open_change=StaffState.set_confirm_open,
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


def details_panel() -> rx.Component:
    return rx.cond(
        StaffState.selected,
        rx.vstack(
            overview_card(),
            rx.cond(StaffState.refund_open, refund_form()),
            rx.cond(
                StaffState.adjust_open,
                adjustment_form(),
                rx.cond(
                    StaffState.can_adjust,
                    rx.button(
                        rx.icon("scale", size=16),
                        "Adjust balance",
                        variant="outline",
                        on_click=StaffState.open_adjustment,
                        data_testid="staff-adjust-open",
                    ),
                ),
            ),
            rx.cond(StaffState.can_manage_roles, role_form()),
            ledger_table(),
            account_activity(),
            audit_table(
                StaffState.acc_audit, "Staff actions on this account", "staff-account-audit"
            ),
            spacing="4",
            width="100%",
        ),
        rx.card(
            rx.vstack(
                rx.cond(
                    StaffState.detail_error != "",
                    rx.callout(
                        StaffState.detail_error,
                        icon="circle-alert",
                        color_scheme="red",
                        size="1",
                        role="alert",
                    ),
                ),
                rx.text(
                    "Choose an account to see its balance, plan, invoices and ledger.",
                    size="2",
                    color_scheme="gray",
                ),
                spacing="2",
            ),
            width="100%",
        ),
    )


# ----------------------------------------------------------------- refunds


def refund_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.text("Refund invoice", weight="medium"),
                rx.text(
                    StaffState.refund_invoice_label, size="2", data_testid="staff-refund-invoice"
                ),
                rx.text(
                    "The money goes back to the card. The unspent credits this invoice granted are "
                    "removed in proportion to the refund (all of them for a full refund).",
                    size="2",
                    color_scheme="gray",
                ),
                rx.input(
                    name="amount",
                    placeholder="Amount in dollars, e.g. 12.50",
                    input_mode="decimal",
                    max_length=16,
                    aria_label="Amount to refund",
                    data_testid="staff-refund-amount",
                    width="12rem",
                ),
                rx.text_area(
                    name="reason",
                    placeholder="Reason (required, shown in the audit trail)",
                    max_length=MAX_REASON_LENGTH,
                    rows="3",
                    aria_label="Refund reason",
                    data_testid="staff-refund-reason",
                    width="100%",
                ),
                rx.cond(
                    StaffState.refund_error != "",
                    rx.callout(
                        StaffState.refund_error,
                        icon="circle-alert",
                        color_scheme="red",
                        size="1",
                        role="alert",
                        data_testid="staff-refund-error",
                    ),
                ),
                rx.hstack(
                    rx.button(
                        "Cancel",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        on_click=StaffState.close_refund,
                    ),
                    rx.button("Review refund", type="submit", data_testid="staff-refund-review"),
                    justify="end",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=StaffState.review_refund,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
        data_testid="staff-refund-form",
    )


def refund_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Confirm refund"),
            rx.dialog.description(
                StaffState.refund_confirm_text,
                size="3",
                weight="medium",
                data_testid="staff-refund-confirm-text",
            ),
            rx.flex(
                rx.dialog.close(
                    rx.button(
                        "Cancel", variant="soft", color_scheme="gray", disabled=StaffState.busy
                    ),
                ),
                rx.button(
                    "Refund",
                    color_scheme="red",
                    on_click=StaffState.confirm_refund,
                    loading=StaffState.busy,
                    data_testid="staff-refund-confirm",
                ),
                spacing="3",
                justify="end",
                margin_top="1rem",
            ),
            max_width="30rem",
        ),
        open=StaffState.refund_confirm_open,
        on_open_change=StaffState.set_refund_confirm_open,
    )


# ------------------------------------------------------ account activity


def _mini(title: str, rows, cells: list[str], testid: str) -> rx.Component:  # noqa: ANN001
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


# ---------------------------------------------------------- reconciliation


def reconciliation_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Reconciliation", weight="medium"),
            rx.text(
                "Every successful payment against its invoice, its credits and its charge; "
                "failed or unprocessed Stripe events. Same as `workroom reconcile`.",
                size="2",
                color_scheme="gray",
            ),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="since",
                        placeholder="Since YYYY-MM-DD (optional)",
                        max_length=10,
                        aria_label="Reconcile payments since",
                        data_testid="staff-recon-since",
                    ),
                    rx.button("Run reconciliation", type="submit", data_testid="staff-recon-run"),
                ),
                on_submit=StaffState.run_reconciliation,
                reset_on_submit=False,
            ),
            rx.cond(
                StaffState.recon_summary != "",
                rx.text(
                    StaffState.recon_summary,
                    size="2",
                    weight="medium",
                    data_testid="staff-recon-summary",
                ),
            ),
            rx.foreach(
                StaffState.recon_counts,
                lambda c: rx.badge(
                    c["label"], ": ", c["count"], color_scheme="red", variant="soft"
                ),
            ),
            rx.foreach(
                StaffState.recon_problems,
                lambda p: rx.hstack(
                    rx.text(p["label"], size="2", weight="medium"),
                    rx.text(p["detail"], size="2", color_scheme="gray"),
                    rx.cond(p["account"] != "", rx.text("account ", p["account"], size="1")),
                    wrap="wrap",
                    data_testid="staff-recon-problem",
                ),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


# ------------------------------------------------------------ roles and audit


def role_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.hstack(
                rx.text("Role", weight="medium", min_width="4rem"),
                # The name goes on the trigger: that is the button a screen reader lands on.
                rx.select.root(
                    rx.select.trigger(aria_label="New role", data_testid="staff-role-select"),
                    rx.select.content(
                        *[
                            rx.select.item(role, value=role)
                            for role in ("user", "support", "finance", "admin")
                        ]
                    ),
                    name="role",
                    default_value="user",
                ),
                rx.input(
                    name="reason",
                    placeholder="Reason",
                    max_length=MAX_REASON_LENGTH,
                    flex="1",
                    aria_label="Reason for the role change",
                    data_testid="staff-role-reason",
                ),
                rx.button(
                    "Set role", type="submit", variant="outline", data_testid="staff-role-set"
                ),
                width="100%",
                align="center",
                wrap="wrap",
            ),
            rx.cond(
                StaffState.role_error != "",
                rx.callout(
                    StaffState.role_error,
                    icon="circle-alert",
                    color_scheme="red",
                    size="1",
                    role="alert",
                    margin_top="0.5rem",
                ),
            ),
            on_submit=StaffState.change_role,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
    )


def audit_table(rows, title: str, testid: str) -> rx.Component:  # noqa: ANN001
    return rx.card(
        rx.vstack(
            rx.text(title, weight="medium"),
            rx.cond(
                rows.length() > 0,
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            rx.table.column_header_cell("When (UTC)"),
                            rx.table.column_header_cell("Who"),
                            rx.table.column_header_cell("What"),
                            rx.table.column_header_cell("Account"),
                            rx.table.column_header_cell("Reason"),
                            rx.table.column_header_cell("Result"),
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            rows,
                            lambda r: rx.table.row(
                                rx.table.cell(r["date"], white_space="nowrap"),
                                rx.table.cell(r["who"]),
                                rx.table.cell(
                                    rx.vstack(
                                        rx.text(r["action"], size="2"),
                                        rx.text(r["detail"], size="1", color_scheme="gray"),
                                        spacing="0",
                                    )
                                ),
                                rx.table.cell(r["account"]),
                                rx.table.cell(r["reason"]),
                                rx.table.cell(
                                    rx.badge(
                                        r["result"],
                                        color_scheme=rx.match(
                                            r["result"],
                                            ("done", "grass"),
                                            ("refused", "red"),
                                            ("failed", "red"),
                                            "gray",
                                        ),
                                    )
                                ),
                                data_testid=f"{testid}-row",
                            ),
                        )
                    ),
                    variant="surface",
                    width="100%",
                ),
                rx.text("No staff actions yet.", size="2", color_scheme="gray"),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        data_testid=testid,
    )


@app_page(
    STAFF_ACCOUNTS_ROUTE,
    "Staff: accounts",
    nav=NavItem("Accounts", "users", order=91, staff_only=True),
    on_load=StaffState.load,
)
def staff_page() -> rx.Component:
    return rx.cond(
        StaffState.allowed,
        rx.vstack(
            rx.hstack(
                rx.heading("Staff dashboard", as_="h2", size="6"),
                rx.badge(
                    StaffState.my_role,
                    color_scheme="amber",
                    high_contrast=True,
                    data_testid="staff-my-role",
                ),
                align="center",
            ),
            rx.grid(
                search_panel(),
                details_panel(),
                columns=rx.breakpoints(initial="1", md="20rem minmax(0, 1fr)"),
                spacing="4",
                width="100%",
                align_items="start",
            ),
            confirm_dialog(),
            refund_dialog(),
            rx.cond(StaffState.can_reconcile, reconciliation_card()),
            audit_table(StaffState.audit_rows, "Audit trail: latest staff actions", "staff-audit"),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
