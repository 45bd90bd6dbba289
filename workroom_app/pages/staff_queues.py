"""Staff queues (/staff/queues): webhook deliveries, emails, generation jobs."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from workroom_app.components.layout import NavItem, app_page
from workroom_app.routes import STAFF_QUEUES_ROUTE
from workroom_app.state.staff_queues import EMAIL_FILTERS, JOB_STATUSES, WEBHOOK_OUTCOMES
from workroom_app.state.staff_queues import StaffQueuesState as Q


def _filter(name: str, options: tuple[str, ...], default: str, label: str) -> rx.Component:
    return rx.el.select(
        *[rx.el.option(o or "all", value=o) for o in options],
        name=name,
        default_value=default,
        aria_label=label,
        style={"padding": "0.3rem", "borderRadius": "6px"},
    )


def _table(
    headers: list[str], rows: rx.Var, cell: Callable[[rx.Var], rx.Component]
) -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
        rx.table.body(rx.foreach(rows, cell)),
        variant="surface",
        width="100%",
    )


def webhooks_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Stripe webhook deliveries", size="4", as_="h3"),
            rx.form(
                rx.hstack(
                    _filter("outcome", WEBHOOK_OUTCOMES, "failed", "Outcome"),
                    rx.button("Filter", type="submit", variant="soft"),
                ),
                on_submit=Q.filter_webhooks,
                reset_on_submit=False,
            ),
            _table(
                ["Received", "Type", "Outcome", "Error", ""],
                Q.webhooks,
                lambda w: rx.table.row(
                    rx.table.cell(w["received"], white_space="nowrap"),
                    rx.table.cell(
                        rx.vstack(
                            rx.text(w["type"], size="2"),
                            rx.text(w["id"], size="1", color_scheme="gray"),
                            spacing="0",
                        )
                    ),
                    rx.table.cell(
                        rx.badge(
                            w["outcome"],
                            color_scheme=rx.match(
                                w["outcome"], ("failed", "red"), ("processed", "grass"), "gray"
                            ),
                        )
                    ),
                    rx.table.cell(rx.text(w["error"], size="1")),
                    rx.table.cell(
                        rx.cond(
                            Q.can_replay
                            & (w["outcome"] != "processed")
                            & (w["outcome"] != "ignored"),
                            rx.button(
                                "Process again",
                                size="1",
                                on_click=Q.replay(w["id"]),
                                data_testid="queue-replay",
                            ),
                        )
                    ),
                    data_testid="queue-webhook",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def emails_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Email outbox", size="4", as_="h3"),
            rx.form(
                rx.hstack(
                    _filter("which", EMAIL_FILTERS, "", "Emails"),
                    rx.button("Filter", type="submit", variant="soft"),
                ),
                on_submit=Q.filter_emails,
                reset_on_submit=False,
            ),
            _table(
                ["Queued", "To", "Subject", "Status", "Last error", ""],
                Q.emails,
                lambda e: rx.table.row(
                    rx.table.cell(e["created"], white_space="nowrap"),
                    rx.table.cell(e["to"]),
                    rx.table.cell(e["subject"]),
                    rx.table.cell(rx.badge(e["status"], " · ", e["attempts"])),
                    rx.table.cell(rx.text(e["error"], size="1", color_scheme="red")),
                    rx.table.cell(
                        rx.cond(
                            Q.can_resend,
                            rx.button(
                                "Send again",
                                size="1",
                                variant="soft",
                                on_click=Q.resend(e["id"]),
                                data_testid="queue-resend",
                            ),
                        )
                    ),
                    data_testid="queue-email",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def jobs_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Generation jobs", size="4", as_="h3"),
            rx.form(
                rx.hstack(
                    _filter("status", JOB_STATUSES, "stuck", "Status"),
                    rx.input(
                        name="feature",
                        placeholder="feature",
                        max_length=32,
                        width="8rem",
                        aria_label="Feature",
                    ),
                    rx.input(
                        name="provider",
                        placeholder="provider",
                        max_length=16,
                        width="8rem",
                        aria_label="Provider",
                    ),
                    rx.input(
                        name="account",
                        placeholder="account id",
                        max_length=19,
                        width="8rem",
                        aria_label="Account id",
                    ),
                    rx.button("Filter", type="submit", variant="soft"),
                    wrap="wrap",
                ),
                on_submit=Q.filter_jobs,
                reset_on_submit=False,
            ),
            _table(
                ["Job", "Account", "Feature / model", "Provider", "Status", "Credits", "Created"],
                Q.jobs,
                lambda j: rx.table.row(
                    rx.table.cell(rx.link(j["id"], on_click=Q.show_job(j["id"]), cursor="pointer")),
                    rx.table.cell(j["account"]),
                    rx.table.cell(j["feature"], " / ", j["model"]),
                    rx.table.cell(j["provider"]),
                    rx.table.cell(
                        rx.hstack(
                            rx.badge(j["status"]),
                            rx.cond(j["stuck"] == "yes", rx.badge("stuck", color_scheme="red")),
                        )
                    ),
                    rx.table.cell(j["cost"]),
                    rx.table.cell(j["created"], white_space="nowrap"),
                    data_testid="queue-job",
                ),
            ),
            rx.cond(
                Q.job_id != "",
                rx.vstack(
                    rx.text("Timeline of job ", Q.job_id, weight="medium"),
                    rx.foreach(
                        Q.job_timeline,
                        lambda s: rx.hstack(
                            rx.text(s["when"], size="2", color_scheme="gray", min_width="11rem"),
                            rx.text(s["what"], size="2"),
                        ),
                    ),
                    rx.cond(
                        Q.can_fail_job & Q.job_stuck,
                        rx.form(
                            rx.hstack(
                                rx.input(
                                    name="reason",
                                    placeholder="Reason (required)",
                                    max_length=500,
                                    flex="1",
                                    aria_label="Reason",
                                ),
                                rx.button(
                                    "Fail and refund",
                                    type="submit",
                                    color_scheme="red",
                                    data_testid="queue-fail-job",
                                ),
                            ),
                            on_submit=Q.fail_job,
                            reset_on_submit=True,
                            width="100%",
                        ),
                    ),
                    width="100%",
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


@app_page(
    STAFF_QUEUES_ROUTE,
    "Staff: queues",
    nav=NavItem("Queues", "inbox", order=92, staff_only=True),
    on_load=Q.load,
)
def staff_queues_page() -> rx.Component:
    return rx.cond(
        Q.allowed,
        rx.vstack(
            rx.heading("Queues", size="6", as_="h2", data_testid="queues-heading"),
            rx.cond(
                Q.error != "",
                rx.callout(Q.error, icon="circle-alert", color_scheme="red", size="1"),
            ),
            rx.cond(
                Q.last_result != "",
                rx.callout(Q.last_result, icon="info", size="1", data_testid="queue-last-result"),
            ),
            webhooks_card(),
            emails_card(),
            jobs_card(),
            spacing="4",
            width="100%",
        ),
        rx.center(rx.spinner(size="3"), padding="3rem"),
    )
