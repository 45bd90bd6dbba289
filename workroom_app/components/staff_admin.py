"""Roles, the reconciliation and the audit trail on the staff accounts page
(/staff/accounts). State: state/staff_role_change.py, staff_reconcile.py,
staff_audit.py."""

from __future__ import annotations

import reflex as rx

from workroom_app.billing.staff import MAX_REASON_LENGTH
from workroom_app.state.staff import StaffState

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


def audit_table(rows: rx.Var, title: str, testid: str) -> rx.Component:
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
