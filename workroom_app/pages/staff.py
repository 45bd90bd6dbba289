"""Staff accounts (/staff/accounts; the overview is /staff): find any account, see its standing,
correct its balance, refund an invoice, change a role, run the reconciliation, read the audit trail.

Shown to staff only: the sidebar entry is staff_only, StaffState.load sends
anybody else to the landing page (/generate), and nothing here renders until the server has checked
the role (StaffState.allowed). The pieces: components/staff_account.py (search, account, ledger,
activity), components/staff_confirm.py (adjustment and refund forms and dialogs),
components/staff_admin.py (roles, reconciliation, audit trail).
"""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.components.staff_account import (
    account_activity,
    ledger_table,
    overview_card,
    search_panel,
)
from workroom_app.components.staff_admin import audit_table, reconciliation_card, role_form
from workroom_app.components.staff_confirm import (
    adjustment_dialog,
    adjustment_form,
    refund_dialog,
    refund_form,
)
from workroom_app.routes import STAFF_ACCOUNTS_ROUTE
from workroom_app.state.staff import StaffState


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
            adjustment_dialog(),
            refund_dialog(),
            rx.cond(StaffState.can_reconcile, reconciliation_card()),
            audit_table(StaffState.audit_rows, "Audit trail: latest staff actions", "staff-audit"),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
