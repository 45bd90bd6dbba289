"""The user's generations on the Generate page: running ones with progress, fresh results with a
preview and a download link, and the history (keyset pages, newest first).

Every value shown comes from GenerateState (kept current by the live push in state/live.py); the
media links point at the owner-only route in http/media_routes.py.
"""

from __future__ import annotations

import reflex as rx

from workroom_app.components.report_dialog import report_control, report_dialog
from workroom_app.routes import USAGE_ROUTE
from workroom_app.state.generate import GenerateState, JobView
from workroom_app.state.reports import ReportState

STATUS_COLORS = {
    "queued": "gray",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "rejected": "red",
    "timed_out": "orange",
    "cancelled": "gray",
}


def status_badge(job: JobView) -> rx.Component:
    return rx.badge(
        job.status_label,
        color_scheme=rx.match(
            job.status,
            *[(k, v) for k, v in STATUS_COLORS.items()],
            "gray",
        ),
        data_testid="job-status",
    )


def cancel_button(job: JobView) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(
            rx.button(
                "Cancel", variant="soft", color_scheme="red", size="1", data_testid="job-cancel"
            ),
        ),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Cancel this generation?"),
            rx.alert_dialog.description(
                "It has not started yet. Cancelling returns its ",
                job.cost_text,
                " to your balance.",
            ),
            rx.flex(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(
                    rx.button(
                        "Cancel generation",
                        color_scheme="red",
                        on_click=GenerateState.cancel(job.id),
                        data_testid="job-cancel-confirm",
                    )
                ),
                gap="3",
                justify="end",
                margin_top="1rem",
            ),
            max_width="26rem",
        ),
    )


def active_job_row(job: JobView) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.vstack(
                rx.text(job.title, weight="medium", size="2"),
                rx.cond(
                    job.summary != "",
                    rx.text(job.summary, size="1", color_scheme="gray", trim="both"),
                ),
                spacing="0",
                min_width="0",
                flex="1",
            ),
            status_badge(job),
            rx.text(job.cost_text, size="1", color_scheme="gray", white_space="nowrap"),
            rx.cond(job.can_cancel, cancel_button(job)),
            align="center",
            spacing="3",
            width="100%",
        ),
        rx.hstack(
            rx.progress(value=job.progress, max=100, width="100%", data_testid="job-progress"),
            rx.text(
                job.progress,
                "%",
                size="1",
                color_scheme="gray",
                min_width="2.5rem",
                text_align="right",
            ),
            align="center",
            width="100%",
        ),
        spacing="2",
        width="100%",
        padding_y="0.5rem",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
        data_testid="active-job",
        data_job_id=job.id,
    )


def preview(job: JobView) -> rx.Component:
    return rx.match(
        job.output_kind,
        (
            "image",
            rx.image(
                src=job.output_url,
                alt=job.title,
                width="100%",
                max_height="22rem",
                object_fit="contain",
                border_radius="var(--radius-2)",
                data_testid="result-image",
            ),
        ),
        (
            "video",
            rx.el.video(
                src=job.output_url,
                controls=True,
                loop=True,
                muted=True,
                auto_play=True,
                plays_inline=True,
                width="100%",
                max_height="22rem",
                data_testid="result-video",
            ),
        ),
        (
            "audio",
            rx.el.audio(
                src=job.output_url, controls=True, width="100%", data_testid="result-audio"
            ),
        ),
        rx.fragment(),
    )


def _numbered_file(job: JobView, url: rx.Var[str], index: rx.Var[int]) -> rx.Component:
    """One of several images of a job: its own preview and its own download."""
    number = (index + 1).to_string()
    return rx.vstack(
        rx.link(
            rx.image(
                src=url,
                alt=job.title + " · image " + number,
                width="100%",
                max_height="14rem",
                object_fit="contain",
                border_radius="var(--radius-2)",
                data_testid="result-image",
            ),
            href=url,
            is_external=True,
        ),
        rx.link(
            rx.button(rx.icon("download", size=14), "Image ", number, size="1", variant="soft"),
            href=url + "?download=1",
            data_testid="result-download",
        ),
        spacing="1",
        align="center",
        data_testid="result-file",
    )


def result_card(job: JobView) -> rx.Component:
    several = job.output_urls.length() > 1
    return rx.card(
        rx.vstack(
            rx.cond(
                several,
                rx.grid(
                    rx.foreach(job.output_urls, lambda url, i: _numbered_file(job, url, i)),
                    columns="2",
                    spacing="2",
                    width="100%",
                ),
                preview(job),
            ),
            rx.hstack(
                rx.vstack(
                    rx.text(job.title, weight="medium", size="2"),
                    rx.text(job.created_text, " · ", job.cost_text, size="1", color_scheme="gray"),
                    report_control(job),
                    spacing="0",
                    min_width="0",
                ),
                rx.spacer(),
                rx.cond(
                    several,
                    rx.fragment(),
                    rx.link(
                        rx.button(
                            rx.icon("download", size=14), "Download", size="1", variant="soft"
                        ),
                        href=job.download_url,
                        is_external=False,
                        data_testid="result-download",
                    ),
                ),
                align="center",
                width="100%",
            ),
            spacing="2",
        ),
        width="100%",
        data_testid="result",
    )


def history_row(job: JobView) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(job.created_text, size="1", white_space="nowrap")),
        rx.table.cell(
            rx.vstack(
                rx.text(job.title, size="2"),
                rx.cond(job.summary != "", rx.text(job.summary, size="1", color_scheme="gray")),
                rx.cond(
                    job.failed & (job.error != ""), rx.text(job.error, size="1", color_scheme="red")
                ),
                rx.cond(
                    job.refund_entry_id > 0,
                    rx.link(
                        job.refund_text,
                        " on ",
                        job.refund_time_text,
                        " · see the Refund row",
                        href=f"{USAGE_ROUTE}?entry=" + job.refund_entry_id.to_string(),
                        size="1",
                        data_testid="history-refund-link",
                    ),
                ),
                spacing="0",
            )
        ),
        rx.table.cell(status_badge(job)),
        rx.table.cell(
            rx.text(job.cost_text, size="2", white_space="nowrap"), data_testid="history-cost"
        ),
        rx.table.cell(
            rx.text(job.refund_text, size="2", color_scheme="green"), data_testid="history-refund"
        ),
        rx.table.cell(
            rx.cond(
                job.output_urls.length() > 1,
                # N images: each its own preview (thumbnail, opens full size) and download.
                rx.flex(
                    rx.foreach(
                        job.output_urls,
                        lambda url, i: rx.hstack(
                            rx.link(
                                rx.image(
                                    src=url,
                                    alt=job.title + " · image " + (i + 1).to_string(),
                                    width="2.5rem",
                                    height="2.5rem",
                                    object_fit="cover",
                                    border_radius="var(--radius-1)",
                                ),
                                href=url,
                                is_external=True,
                            ),
                            rx.link(
                                "Download ",
                                (i + 1).to_string(),
                                href=url + "?download=1",
                                size="2",
                                data_testid="history-download",
                            ),
                            spacing="1",
                            align="center",
                        ),
                    ),
                    gap="0.5rem",
                    wrap="wrap",
                ),
                rx.cond(
                    job.output_url != "",
                    rx.hstack(
                        rx.link("Open", href=job.output_url, is_external=True, size="2"),
                        rx.link(
                            "Download",
                            href=job.download_url,
                            size="2",
                            data_testid="history-download",
                        ),
                        spacing="2",
                    ),
                    rx.text("—", color_scheme="gray"),
                ),
            ),
            report_control(job),
        ),
        data_testid="history-row",
    )


def active_jobs_panel() -> rx.Component:
    return rx.cond(
        GenerateState.active_jobs.length() > 0,
        rx.card(
            rx.heading("In progress", as_="h2", size="3", margin_bottom="0.5rem"),
            rx.foreach(GenerateState.active_jobs, active_job_row),
            width="100%",
            data_testid="active-jobs",
        ),
    )


def results_panel() -> rx.Component:
    return rx.cond(
        GenerateState.results.length() > 0,
        rx.vstack(
            rx.heading("Latest results", as_="h2", size="3"),
            rx.grid(
                rx.foreach(GenerateState.results, result_card),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="3",
                width="100%",
            ),
            width="100%",
        ),
    )


def history_panel() -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.heading("History", as_="h2", size="3"),
            rx.spacer(),
            rx.button(
                rx.icon("chevron-left", size=14),
                "Newer",
                size="1",
                variant="soft",
                disabled=~GenerateState.history_has_newer,
                on_click=GenerateState.history_newer,
                data_testid="history-newer",
            ),
            rx.button(
                "Older",
                rx.icon("chevron-right", size=14),
                size="1",
                variant="soft",
                disabled=~GenerateState.history_has_older,
                on_click=GenerateState.history_older,
                data_testid="history-older",
            ),
            align="center",
            width="100%",
            margin_bottom="0.5rem",
        ),
        rx.cond(
            GenerateState.history.length() > 0,
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in (
                                    "Date",
                                    "Generation",
                                    "Status",
                                    "Cost",
                                    "Refund",
                                    "Output",
                                )
                            ]
                        )
                    ),
                    rx.table.body(rx.foreach(GenerateState.history, history_row)),
                    size="1",
                    width="100%",
                ),
                overflow_x="auto",
                width="100%",
            ),
            rx.text(
                "Nothing generated yet. Your generations will be listed here.",
                color_scheme="gray",
                size="2",
                data_testid="history-empty",
            ),
        ),
        # "Report a broken result": one dialog for every card and row, and their report statuses.
        report_dialog(),
        rx.box(on_mount=ReportState.load),
        width="100%",
        data_testid="history",
    )
