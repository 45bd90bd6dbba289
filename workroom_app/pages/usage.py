"""Usage (/usage): every change to the balance, newest first, with filters,
paging, a CSV export, spend per day and the credits about to expire."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.backend_url import backend_url
from workroom_app.components.layout import NavItem, app_page
from workroom_app.http.usage_csv import CSV_ROUTE
from workroom_app.routes import GENERATE_ROUTE, USAGE_ROUTE
from workroom_app.state.usage import ACTION_OPTIONS, CHART_FEATURES, FEATURE_OPTIONS, UsageState

# One colour per feature, the same in every chart.
FEATURE_COLOURS = {
    "image": "var(--violet-9)",
    "video": "var(--blue-9)",
    "voiceover": "var(--amber-9)",
    "face_swap": "var(--pink-9)",
    "lip_sync": "var(--teal-9)",
}

_CSV_BASE = backend_url(CSV_ROUTE)


def _select(
    options: list[tuple[str, str]],
    value: rx.Var,
    on_change: rx.EventHandler,
    testid: str,
    label: str,
) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(
            aria_label=label, data_testid=testid, min_width="11rem", max_width="100%"
        ),
        rx.select.content(*[rx.select.item(text, value=key) for key, text in options]),
        value=value,
        on_change=on_change,
    )


def filters_bar() -> rx.Component:
    return rx.flex(
        _select(
            ACTION_OPTIONS,
            UsageState.action_filter,
            UsageState.set_action_filter,
            "usage-filter-action",
            "Action type",
        ),
        _select(
            FEATURE_OPTIONS,
            UsageState.feature_filter,
            UsageState.set_feature_filter,
            "usage-filter-feature",
            "Feature",
        ),
        # Wraps, and the date fields may shrink: a phone is narrower than the
        # two date inputs side by side.
        rx.flex(
            rx.text("From", size="2", color_scheme="gray"),
            rx.input(
                type="date",
                value=UsageState.date_from,
                on_change=UsageState.set_date_from,
                data_testid="usage-filter-from",
                aria_label="From date",
                min_width="0",
                flex="1 1 9rem",
            ),
            rx.text("to", size="2", color_scheme="gray"),
            rx.input(
                type="date",
                value=UsageState.date_to,
                on_change=UsageState.set_date_to,
                data_testid="usage-filter-to",
                aria_label="To date",
                min_width="0",
                flex="1 1 9rem",
            ),
            align="center",
            gap="2",
            wrap="wrap",
            min_width="0",
            max_width="100%",
        ),
        rx.button(
            "Clear",
            variant="soft",
            color_scheme="gray",
            on_click=UsageState.clear_filters,
            data_testid="usage-clear-filters",
        ),
        rx.spacer(),
        # An <a download> to the CSV route, which also answers with
        # Content-Disposition: attachment (the backend may be on another port).
        rx.button(
            rx.el.a(
                rx.icon("download", size=16),
                "Export CSV",
                href=_CSV_BASE + "?" + UsageState.csv_query,
                download="workroom-usage.csv",
                # rx.el.a is React Router's Link: hand the click to the browser.
                reload_document=True,
                data_testid="usage-export-csv",
            ),
            as_child=True,
            variant="outline",
        ),
        wrap="wrap",
        gap="3",
        align="center",
        width="100%",
    )


def _amount_cell(row) -> rx.Component:  # noqa: ANN001
    return rx.table.cell(
        rx.text(
            row["amount"],
            weight="medium",
            color=rx.match(
                row["tone"],
                ("positive", rx.color("grass", 11)),
                ("negative", rx.color("red", 11)),
                rx.color("gray", 11),
            ),
        ),
        text_align="right",
        data_testid="usage-amount",
    )


def usage_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                rx.table.column_header_cell("Feature"),
                rx.table.column_header_cell("Date and time"),
                rx.table.column_header_cell("Action type"),
                rx.table.column_header_cell("Amount", text_align="right"),
                rx.table.column_header_cell("Balance after", text_align="right"),
            )
        ),
        rx.table.body(
            rx.foreach(
                UsageState.rows,
                lambda row: rx.table.row(
                    rx.table.cell(row["feature"], data_testid="usage-feature"),
                    rx.table.cell(row["date"], white_space="nowrap", data_testid="usage-date"),
                    rx.table.cell(row["action"], data_testid="usage-action"),
                    _amount_cell(row),
                    rx.table.cell(row["balance"], text_align="right", data_testid="usage-balance"),
                    data_testid="usage-row",
                    data_entry_id=row["id"],
                ),
            )
        ),
        variant="surface",
        width="100%",
    )


def _tone_colour(row):  # noqa: ANN001, ANN202
    return rx.match(
        row["tone"],
        ("positive", rx.color("grass", 11)),
        ("negative", rx.color("red", 11)),
        rx.color("gray", 11),
    )


def usage_card(row) -> rx.Component:  # noqa: ANN001
    """One row as a card, for phones: the amount and the balance after first."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(
                    row["amount"],
                    size="4",
                    weight="bold",
                    color=_tone_colour(row),
                    data_testid="usage-amount",
                ),
                rx.text(
                    "Balance after ",
                    rx.text.strong(row["balance"], data_testid="usage-balance"),
                    size="2",
                    color_scheme="gray",
                ),
                justify="between",
                align="baseline",
                width="100%",
                wrap="wrap",
            ),
            rx.text(
                row["action"],
                rx.cond(row["feature"] != "—", " · " + row["feature"], ""),
                size="2",
                data_testid="usage-action-feature",
            ),
            rx.text(row["date"], size="1", color_scheme="gray", data_testid="usage-date"),
            spacing="1",
            width="100%",
        ),
        width="100%",
        data_testid="usage-card",
        data_entry_id=row["id"],
    )


def usage_rows() -> rx.Component:
    """A table from the tablet breakpoint up, cards below it (the five columns
    do not fit a phone, and amount and balance after matter most)."""
    return rx.box(
        rx.box(usage_table(), display=["none", "none", "block"], width="100%"),
        rx.vstack(
            rx.foreach(UsageState.rows, usage_card),
            display=["flex", "flex", "none"],
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=16),
            "Newer",
            variant="soft",
            disabled=~UsageState.has_newer,
            on_click=UsageState.newer_page,
            data_testid="usage-newer",
        ),
        rx.button(
            "Older",
            rx.icon("chevron-right", size=16),
            variant="soft",
            disabled=~UsageState.has_older,
            on_click=UsageState.older_page,
            data_testid="usage-older",
        ),
        justify="end",
        width="100%",
    )


def spend_chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Credits spent per day, last 30 days", weight="medium"),
            rx.cond(
                UsageState.chart_has_spend,
                rx.recharts.bar_chart(
                    rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
                    rx.recharts.x_axis(
                        data_key="label", tick_line=False, interval="preserveStartEnd"
                    ),
                    rx.recharts.y_axis(allow_decimals=False, width=48),
                    rx.recharts.graphing_tooltip(),
                    rx.recharts.legend(),
                    *[
                        rx.recharts.bar(
                            data_key=key,
                            name=label,
                            stack_id="spend",
                            fill=FEATURE_COLOURS.get(key, "var(--gray-9)"),
                        )
                        for key, label in CHART_FEATURES
                    ],
                    data=UsageState.chart,
                    height=240,
                    width="100%",
                ),
                rx.text("Nothing spent in the last 30 days.", size="2", color_scheme="gray"),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        data_testid="usage-chart",
    )


def empty_state() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon("history", size=32, color=rx.color("gray", 9)),
            rx.heading("No credit activity yet", as_="h2", size="4"),
            rx.text(
                "Every change to your balance will be listed here: your trial credits, "
                "each generation, refunds and monthly top-ups.",
                color_scheme="gray",
                size="2",
                text_align="center",
            ),
            rx.link(rx.button("Start generating"), href=GENERATE_ROUTE),
            align="center",
            spacing="3",
            padding="2rem",
        ),
        width="100%",
        data_testid="usage-empty",
    )


def ledger_section() -> rx.Component:
    return rx.cond(
        UsageState.loading & (UsageState.rows.length() == 0),
        rx.center(rx.spinner(size="3"), padding="3rem", width="100%", data_testid="usage-loading"),
        rx.cond(
            UsageState.account_has_rows,
            rx.vstack(
                filters_bar(),
                rx.cond(
                    UsageState.error != "",
                    rx.callout(
                        UsageState.error,
                        icon="triangle-alert",
                        color_scheme="red",
                        size="1",
                        width="100%",
                        data_testid="usage-error",
                    ),
                ),
                rx.box(
                    rx.cond(
                        UsageState.rows.length() > 0,
                        usage_rows(),
                        rx.text(
                            "No entries match these filters.",
                            color_scheme="gray",
                            data_testid="usage-no-match",
                        ),
                    ),
                    opacity=rx.cond(UsageState.loading, "0.6", "1"),
                    width="100%",
                ),
                pager(),
                spacing="3",
                width="100%",
            ),
            empty_state(),
        ),
    )


@app_page(USAGE_ROUTE, "Usage", nav=NavItem("Usage", "history", order=20), on_load=UsageState.load)
def usage_page() -> rx.Component:
    return rx.vstack(
        rx.text(
            "Every change to your balance, newest first. Times are in ",
            UsageState.tz_name,
            ".",
            color_scheme="gray",
            size="2",
        ),
        # "N credits expire on DATE" moved to the balance's popover in the header (every page).
        spend_chart(),
        ledger_section(),
        spacing="4",
        width="100%",
    )
