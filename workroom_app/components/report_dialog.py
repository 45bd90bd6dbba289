""" "Report a problem" on a finished result, and the dialog that sends it."""

from __future__ import annotations

import reflex as rx

from workroom_app.state.reports import ReportState


def report_control(job) -> rx.Component:  # noqa: ANN001  (a JobView var)
    """On a succeeded job: its report's status, or the button that opens the dialog."""
    key = job.id.to_string()
    return rx.cond(
        job.status == "succeeded",
        rx.cond(
            ReportState.report_status.contains(key),
            rx.text(
                ReportState.report_status[key],
                size="1",
                color_scheme="gray",
                data_testid="report-status",
            ),
            rx.button(
                rx.icon("flag", size=12),
                "Report a problem",
                size="1",
                variant="ghost",
                color_scheme="gray",
                on_click=ReportState.open_for(job.id, job.title),
                data_testid="report-open",
            ),
        ),
    )


def report_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Report a broken result"),
            rx.dialog.description(ReportState.job_title, size="2", color_scheme="gray"),
            rx.text(
                "You can report a result within 24 hours of it finishing. Your first 3 reports each calendar "
                "month are refunded at once; after that, staff review your report and accept it (your credits "
                "come back) or decline it with a note you can read here.",
                size="2",
                margin_y="0.75rem",
            ),
            rx.form(
                rx.vstack(
                    rx.text_area(
                        name="reason",
                        placeholder="What is wrong with it?",
                        max_length=500,
                        width="100%",
                        aria_label="What is wrong with the result",
                        data_testid="report-reason",
                    ),
                    rx.cond(
                        ReportState.error != "",
                        rx.callout(
                            ReportState.error,
                            icon="circle-alert",
                            color_scheme="red",
                            role="alert",
                            width="100%",
                            data_testid="report-error",
                        ),
                    ),
                    rx.hstack(
                        rx.dialog.close(
                            rx.button("Cancel", variant="soft", color_scheme="gray", type="button")
                        ),
                        rx.button(
                            "Send report",
                            type="submit",
                            loading=ReportState.busy,
                            data_testid="report-send",
                        ),
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                ),
                on_submit=ReportState.submit,
                reset_on_submit=True,
            ),
        ),
        open=ReportState.dialog_open,
        on_open_change=ReportState.set_dialog_open,
    )
