"""The rows behind an overview figure (/staff/rows?list=...): every money
figure on /staff links here. Not in the sidebar: it is reached from a figure.
State: state/staff_figure_rows.py; rows: billing/staff_figure_rows.py."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import app_page
from workroom_app.routes import STAFF_OVERVIEW_ROUTE, STAFF_ROWS_ROUTE
from workroom_app.state.staff_figure_rows import StaffFigureRowsState as S

HEADERS = ["When", "Account", "What", "Status", "Amount", "Detail"]


def _row(r: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["when"], white_space="nowrap"),
        rx.table.cell(
            rx.cond(r["account_href"] != "", rx.link(r["email"], href=r["account_href"]), "—")
        ),
        rx.table.cell(r["label"]),
        rx.table.cell(r["status"]),
        rx.table.cell(r["amount"], text_align="right", data_testid="rows-amount"),
        rx.table.cell(rx.text(r["detail"], size="1", color_scheme="gray")),
        data_testid="rows-row",
    )


@app_page(STAFF_ROWS_ROUTE, "Staff: rows behind a figure", on_load=S.load)
def staff_figure_rows_page() -> rx.Component:
    return rx.cond(
        S.allowed,
        rx.vstack(
            rx.link("\u2190 Back to the overview", href=STAFF_OVERVIEW_ROUTE, size="2"),
            rx.heading(S.title, size="5", as_="h2", data_testid="rows-title"),
            rx.cond(
                S.error != "",
                rx.callout(
                    S.error,
                    icon="circle-alert",
                    color_scheme="red",
                    size="1",
                    role="alert",
                    data_testid="rows-error",
                ),
                rx.hstack(
                    rx.text("Rows: ", rx.text.strong(S.count_text, data_testid="rows-count")),
                    rx.text("Total: ", rx.text.strong(S.total_text, data_testid="rows-total")),
                    rx.text(S.truncated_text, size="2", color_scheme="gray"),
                    spacing="4",
                    wrap="wrap",
                ),
            ),
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(*[rx.table.column_header_cell(h) for h in HEADERS])
                    ),
                    rx.table.body(rx.foreach(S.rows, _row)),
                    variant="surface",
                    width="100%",
                ),
                width="100%",
                overflow_x="auto",
            ),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
