"""Staff overview (/staff): money, credits and generations for a date range
(default the last 30 days). Figures: billing/staff_metrics/; state:
state/staff_overview.py. Accounts, refunds and the audit trail are on
/staff/accounts."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.routes import STAFF_ACCOUNTS_ROUTE, STAFF_OVERVIEW_ROUTE
from workroom_app.state.staff_overview import StaffOverviewState as S


def _linked(text: rx.Var, href: rx.Var, **props: object) -> rx.Component:
    """A figure as a link to the rows behind it (billing/staff_figure_rows.py), when it has any."""
    return rx.cond(href != "", rx.link(text, href=href, **props), rx.text(text, **props))


def _card(item: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(item["label"], size="2", color_scheme="gray"),
            rx.heading(
                _linked(item["value"], item["href"], data_testid=item["testid"]),
                size="5",
                as_="h3",
            ),
            spacing="1",
        ),
        min_width="11rem",
    )


def _small_link(item: rx.Var) -> rx.Component:
    """A small figure that links to its rows (MRR movement, credits by category)."""
    return rx.vstack(
        rx.text(item["label"], size="1", color_scheme="gray"),
        rx.link(
            item["value"], href=item["href"], size="3", weight="medium", data_testid="ov-small-link"
        ),
        spacing="0",
        min_width="8rem",
    )


def _revenue_days() -> rx.Component:
    return rx.el.details(
        rx.el.summary("Revenue and refunds by day (links to the invoices and refunds)"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Day (UTC)"),
                    rx.table.column_header_cell("Revenue"),
                    rx.table.column_header_cell("Refunds"),
                )
            ),
            rx.table.body(
                rx.foreach(
                    S.revenue_days,
                    lambda d: rx.table.row(
                        rx.table.cell(d["day"], white_space="nowrap"),
                        rx.table.cell(
                            rx.link(
                                d["revenue"], href=d["revenue_href"], data_testid="ov-day-revenue"
                            )
                        ),
                        rx.table.cell(
                            rx.link(
                                d["refunds"], href=d["refunds_href"], data_testid="ov-day-refunds"
                            )
                        ),
                    ),
                )
            ),
            variant="surface",
            size="1",
            width="100%",
        ),
        width="100%",
    )


def range_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                name="start",
                type="date",
                default_value=S.range_start,
                key=S.range_start,
                aria_label="From",
                data_testid="ov-start",
            ),
            rx.input(
                name="end",
                type="date",
                default_value=S.range_end,
                key=S.range_end,
                aria_label="To",
                data_testid="ov-end",
            ),
            rx.button("Show", type="submit", data_testid="ov-apply"),
            rx.text(S.range_text, size="2", color_scheme="gray"),
            align="center",
            wrap="wrap",
        ),
        on_submit=S.apply_range,
        reset_on_submit=False,
    )


def _table(
    headers: list[str],
    rows: rx.Var,
    cells: list[str],
    link: str = "",
    links: dict[str, str] | None = None,
) -> rx.Component:
    """A table of `rows`; the cell named `link` links to the row's "href" (its rows),
    and each cell named in `links` to the row's value under the key it maps to."""
    targets = dict(links or {})
    if link:
        targets[link] = "href"
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
        rx.table.body(
            rx.foreach(
                rows,
                lambda r: rx.table.row(
                    *[
                        rx.table.cell(rx.link(r[c], href=r[targets[c]]) if c in targets else r[c])
                        for c in cells
                    ]
                ),
            )
        ),
        variant="surface",
        width="100%",
    )


CREDIT_SERIES = [
    ("granted", "grass", "Granted"),
    ("spent", "blue", "Spent"),
    ("refunded", "amber", "Refunded"),
    ("expired", "gray", "Expired"),
    ("burned", "orange", "Burned"),
    ("removed", "red", "Removed by staff/refunds"),
]


def _credit_days() -> rx.Component:
    """The credits chart as text: each day's series, a link to its ledger rows."""
    return rx.el.details(
        rx.el.summary("Credits by day (links to the ledger rows)"),
        rx.box(
            _table(
                ["Day (UTC)", *[label for _k, _c, label in CREDIT_SERIES]],
                S.credit_days,
                ["day", *[key for key, _c, _l in CREDIT_SERIES]],
                links={key: f"{key}_href" for key, _c, _l in CREDIT_SERIES},
            ),
            width="100%",
            overflow_x="auto",
        ),
        width="100%",
    )


def money_panel() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Money", size="4", as_="h2"),
            rx.text("Revenue and refunds per day (USD)", size="2", color_scheme="gray"),
            rx.recharts.bar_chart(
                rx.recharts.bar(data_key="revenue", fill=rx.color("grass", 9), name="Revenue"),
                rx.recharts.bar(data_key="refunds", fill=rx.color("red", 9), name="Refunds"),
                rx.recharts.x_axis(data_key="day"),
                rx.recharts.y_axis(),
                rx.recharts.graphing_tooltip(),
                rx.recharts.legend(),
                data=S.revenue_chart,
                width="100%",
                height=260,
            ),
            rx.hstack(
                rx.vstack(
                    rx.text("Revenue by kind", size="2", color_scheme="gray"),
                    rx.recharts.pie_chart(
                        rx.recharts.pie(
                            data=S.revenue_kinds,
                            data_key="value",
                            name_key="name",
                            fill=rx.color("accent", 9),
                            stroke=rx.color("gray", 1),
                            label=True,
                        ),
                        rx.recharts.graphing_tooltip(),
                        width=260,
                        height=220,
                    ),
                    rx.foreach(
                        S.revenue_kinds,
                        lambda k: rx.text(
                            k["name"],
                            ": ",
                            # Underlined: a link inside a line of text is not told apart by colour alone.
                            rx.link(
                                k["text"],
                                href=k["href"],
                                underline="always",
                                data_testid="ov-kind-link",
                            ),
                            size="2",
                            data_testid="ov-kind",
                        ),
                    ),
                ),
                rx.vstack(
                    rx.text("MRR movement in the range", size="2", color_scheme="gray"),
                    rx.hstack(rx.foreach(S.mrr_cards, _small_link), wrap="wrap"),
                    rx.text(
                        "Active subscriptions by plan",
                        size="2",
                        color_scheme="gray",
                        margin_top="1rem",
                    ),
                    _table(["Plan", "Active"], S.plans, ["plan", "count"], link="count"),
                    flex="1",
                ),
                width="100%",
                align="start",
                wrap="wrap",
            ),
            _revenue_days(),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def credits_panel() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Credits", size="4", as_="h2"),
            rx.recharts.line_chart(
                *[
                    rx.recharts.line(data_key=key, stroke=rx.color(color, 9), name=label, dot=False)
                    for key, color, label in CREDIT_SERIES
                ],
                rx.recharts.x_axis(data_key="day"),
                rx.recharts.y_axis(),
                rx.recharts.graphing_tooltip(),
                rx.recharts.legend(),
                data=S.credits_chart,
                width="100%",
                height=260,
            ),
            _credit_days(),
            rx.hstack(rx.foreach(S.credit_totals, _small_link), wrap="wrap"),
            rx.text(
                "Outstanding credits by expiry month (what is still owed)",
                size="2",
                color_scheme="gray",
            ),
            rx.recharts.bar_chart(
                rx.recharts.bar(data_key="credits", fill=rx.color("accent", 9), name="Credits"),
                rx.recharts.x_axis(data_key="month"),
                rx.recharts.y_axis(),
                rx.recharts.graphing_tooltip(),
                data=S.outstanding_chart,
                width="100%",
                height=200,
            ),
            rx.hstack(rx.foreach(S.outstanding_months, _small_link), wrap="wrap"),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def generations_panel() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Generations", size="4", as_="h2"),
            _table(
                [
                    "Feature",
                    "Model",
                    "Provider",
                    "Jobs",
                    "Credits",
                    "Failed",
                    "Refunded",
                    "p50",
                    "p95",
                ],
                S.generation_rows,
                [
                    "feature",
                    "model",
                    "provider",
                    "count",
                    "credits",
                    "failure",
                    "refund",
                    "p50",
                    "p95",
                ],
                links={
                    "feature": "queue_href",
                    "count": "href",
                    "credits": "href",
                    "failure": "failure_href",
                    "refund": "refund_href",
                },
            ),
            rx.text(
                "Unlimited generations (fair use), by plan, at list price",
                size="2",
                color_scheme="gray",
            ),
            _table(
                ["Plan", "Generations", "List price (credits)"],
                S.unlimited_rows,
                ["plan", "count", "list"],
                links={"count": "href", "list": "href"},
            ),
            rx.text("Accounts using the most unlimited generations", size="2", color_scheme="gray"),
            _table(
                ["Account", "Plan", "Generations", "List price (credits)"],
                S.top_users,
                ["email", "plan", "count", "list"],
                link="email",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


@app_page(
    STAFF_OVERVIEW_ROUTE,
    "Staff overview",
    nav=NavItem("Staff", "shield", order=90, staff_only=True),
    on_load=S.load,
)
def staff_overview_page() -> rx.Component:
    return rx.cond(
        S.allowed,
        rx.vstack(
            rx.hstack(
                rx.heading("Business overview", size="6", as_="h2"),
                rx.spacer(),
                rx.link(
                    "Accounts, refunds and audit trail \u2192",
                    href=STAFF_ACCOUNTS_ROUTE,
                    data_testid="ov-accounts-link",
                ),
                width="100%",
                align="center",
            ),
            range_form(),
            rx.cond(
                S.error != "",
                rx.callout(
                    S.error,
                    icon="circle-alert",
                    color_scheme="red",
                    size="1",
                    role="alert",
                    data_testid="ov-error",
                ),
            ),
            rx.hstack(rx.foreach(S.cards, _card), wrap="wrap", spacing="3"),
            money_panel(),
            credits_panel(),
            generations_panel(),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
