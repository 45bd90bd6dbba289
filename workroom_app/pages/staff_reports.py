"""Staff reports (/staff/reports): broken-result reports that wait for staff
(beyond the month's free allowance), and the ones already accepted or
declined. State: state/staff_reports.py; rules: generation/reports.py."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.generation.reports import MAX_NOTE
from workroom_app.routes import STAFF_REPORTS_ROUTE
from workroom_app.state.staff_reports import FILTER_LABELS
from workroom_app.state.staff_reports import StaffReportsState as R


def filter_tabs() -> rx.Component:
    return rx.hstack(
        *[
            rx.button(
                label,
                size="2",
                variant=rx.cond(R.which == key, "solid", "soft"),
                on_click=R.show(key),
                aria_pressed=rx.cond(R.which == key, "true", "false"),
                data_testid=f"reports-filter-{key}",
            )
            for key, label in FILTER_LABELS.items()
        ],
        spacing="2",
        wrap="wrap",
    )


def _actions(row: rx.Var) -> rx.Component:
    return rx.cond(
        R.can_decide & (R.which == "waiting"),
        rx.hstack(
            rx.button(
                "Accept (refund)",
                size="1",
                color_scheme="grass",
                on_click=R.accept(row["id"]),
                disabled=R.busy,
                data_testid="report-accept",
            ),
            rx.button(
                "Decline",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=R.open_decline(row["id"]),
                disabled=R.busy,
                data_testid="report-decline",
            ),
            spacing="2",
            wrap="wrap",
        ),
    )


def report_card(row: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text("Report #", row["id"], weight="medium"),
                rx.text(row["reported"], size="2", color_scheme="gray"),
                rx.spacer(),
                rx.text(row["cost"], size="2"),
                width="100%",
                align="baseline",
                wrap="wrap",
            ),
            rx.hstack(
                rx.text("Job ", row["job"], size="2"),
                rx.link(
                    "Open the result",
                    href=row["result_href"],
                    is_external=True,
                    size="2",
                    data_testid="report-result-link",
                ),
                spacing="3",
                wrap="wrap",
            ),
            rx.hstack(
                rx.text("User", size="2", color_scheme="gray"),
                rx.link(row["email"], href=row["account_href"], size="2"),
                spacing="2",
            ),
            rx.text("\u201c", row["reason"], "\u201d", size="2", data_testid="report-reason"),
            rx.cond(
                row["decided"] != "",
                rx.text(
                    "Decided ",
                    row["decided"],
                    " by ",
                    row["decided_by"],
                    rx.cond(row["returned"] != "", rx.text.span(" · ", row["returned"])),
                    size="2",
                    color_scheme="gray",
                    data_testid="report-decided",
                ),
            ),
            rx.cond(
                row["note"] != "",
                rx.text("Note to the user: ", row["note"], size="2", data_testid="report-note"),
            ),
            _actions(row),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="report-row",
        data_report_id=row["id"],
    )


def decline_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Decline report"),
            rx.dialog.description(R.decline_label, size="2"),
            rx.form(
                rx.vstack(
                    rx.text_area(
                        name="note",
                        placeholder="Note the user reads on the result (required)",
                        max_length=MAX_NOTE,
                        rows="4",
                        aria_label="Note to the user",
                        data_testid="report-decline-note",
                        width="100%",
                    ),
                    rx.cond(
                        R.error != "",
                        rx.callout(
                            R.error,
                            icon="circle-alert",
                            color_scheme="red",
                            size="1",
                            role="alert",
                            data_testid="report-decline-error",
                        ),
                    ),
                    rx.hstack(
                        rx.button(
                            "Cancel",
                            type="button",
                            variant="soft",
                            color_scheme="gray",
                            on_click=R.close_decline,
                        ),
                        rx.button(
                            "Decline",
                            type="submit",
                            color_scheme="red",
                            loading=R.busy,
                            data_testid="report-decline-confirm",
                        ),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    margin_top="1rem",
                ),
                on_submit=R.decline,
                reset_on_submit=False,
            ),
            max_width="32rem",
        ),
        open=R.decline_open,
        on_open_change=lambda _open: R.close_decline(),
    )


@app_page(
    STAFF_REPORTS_ROUTE,
    "Staff: reports",
    nav=NavItem("Reports", "flag", order=93, staff_only=True),
    on_load=R.load,
)
def staff_reports_page() -> rx.Component:
    return rx.cond(
        R.allowed,
        rx.vstack(
            rx.heading("Broken-result reports", size="6", as_="h2"),
            rx.text(
                "Reports beyond a user's free monthly allowance wait here. Accept returns the "
                "result's credits (once); Decline needs a note, which the user reads on the "
                "result's card.",
                size="2",
                color_scheme="gray",
            ),
            rx.cond(
                ~R.can_decide,
                rx.text(
                    "Your role can read reports; support and admin staff decide them.",
                    size="2",
                    color_scheme="gray",
                    data_testid="reports-read-only",
                ),
            ),
            filter_tabs(),
            rx.cond(
                R.rows.length() > 0,
                rx.vstack(rx.foreach(R.rows, report_card), spacing="3", width="100%"),
                rx.text(
                    "No reports here.", size="2", color_scheme="gray", data_testid="reports-empty"
                ),
            ),
            decline_dialog(),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
