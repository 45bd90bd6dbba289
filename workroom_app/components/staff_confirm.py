"""The balance adjustment and the invoice refund on the staff accounts page:
the same form (an amount and a written reason, Cancel and Review) and the
same confirmation dialog, drawn by one builder each. State:
state/staff_confirm.py (the shared flow), staff_adjust.py, staff_refunds.py."""

from __future__ import annotations

import reflex as rx

from workroom_app.billing.staff import MAX_ADJUSTMENT, MAX_REASON_LENGTH
from workroom_app.state.staff import StaffState


def amount_reason_form(
    *,
    title: str,
    intro: list[rx.Component],
    amount_placeholder: str,
    amount_mode: str,
    amount_max: int,
    amount_label: str,
    reason_placeholder: str,
    reason_label: str,
    error: rx.Var,
    on_cancel: rx.EventHandler,
    on_submit: rx.EventHandler,
    review: str,
    prefix: str,
) -> rx.Component:
    """A card with an amount, a reason, the error and Cancel/Review. Test ids are
    `{prefix}-amount`, `-reason`, `-error`, `-cancel`, `-review` and `-form`."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.text(title, weight="medium"),
                *intro,
                rx.input(
                    name="amount",
                    placeholder=amount_placeholder,
                    input_mode=amount_mode,
                    max_length=amount_max,
                    aria_label=amount_label,
                    data_testid=f"{prefix}-amount",
                    width="12rem",
                ),
                rx.text_area(
                    name="reason",
                    placeholder=reason_placeholder,
                    max_length=MAX_REASON_LENGTH,
                    rows="3",
                    aria_label=reason_label,
                    data_testid=f"{prefix}-reason",
                    width="100%",
                ),
                rx.cond(
                    error != "",
                    rx.callout(
                        error,
                        icon="circle-alert",
                        color_scheme="red",
                        size="1",
                        role="alert",
                        data_testid=f"{prefix}-error",
                    ),
                ),
                rx.hstack(
                    rx.button(
                        "Cancel",
                        type="button",
                        variant="soft",
                        color_scheme="gray",
                        on_click=on_cancel,
                        data_testid=f"{prefix}-cancel",
                    ),
                    rx.button(review, type="submit", data_testid=f"{prefix}-review"),
                    justify="end",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=on_submit,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
        data_testid=f"{prefix}-form",
    )


def confirm_dialog(
    *,
    title: str,
    text: rx.Var,
    text_testid: str,
    details: list[rx.Component],
    confirm: str,
    confirm_testid: str,
    on_confirm: rx.EventHandler,
    is_open: rx.Var,
    on_open_change: rx.EventHandler,
    cancel_testid: str,
    dialog_testid: str,
    color_scheme: str | None = None,
) -> rx.Component:
    """What the action will do, then Cancel or the action (busy while it runs)."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.dialog.description(text, size="3", weight="medium", data_testid=text_testid),
            *details,
            rx.flex(
                rx.dialog.close(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        disabled=StaffState.busy,
                        data_testid=cancel_testid,
                    ),
                ),
                rx.button(
                    confirm,
                    **({"color_scheme": color_scheme} if color_scheme else {}),
                    on_click=on_confirm,
                    loading=StaffState.busy,
                    data_testid=confirm_testid,
                ),
                spacing="3",
                justify="end",
                margin_top="1rem",
            ),
            max_width="30rem",
            data_testid=dialog_testid,
        ),
        open=is_open,
        on_open_change=on_open_change,
    )


# --------------------------------------------------------------- adjustment


def adjustment_form() -> rx.Component:
    return amount_reason_form(
        title="Adjust balance",
        intro=[
            rx.text(
                f"A positive amount adds credits that never expire; a negative one removes "
                f"credits (never below zero). At most {MAX_ADJUSTMENT:,} either way.",
                size="2",
                color_scheme="gray",
            )
        ],
        amount_placeholder="Credits, e.g. 25 or -10",
        amount_mode="numeric",
        amount_max=12,
        amount_label="Credits to add or remove",
        reason_placeholder="Reason (required, shown in the ledger)",
        reason_label="Reason",
        error=StaffState.adjust_error,
        on_cancel=StaffState.close_adjustment,
        on_submit=StaffState.review_adjustment,
        review="Review",
        prefix="staff-adjust",
    )


def adjustment_dialog() -> rx.Component:
    return confirm_dialog(
        title="Confirm adjustment",
        text=StaffState.confirm_text,
        text_testid="staff-confirm-text",
        details=[
            rx.box(
                rx.text("Reason: ", StaffState.confirm_reason, size="2", color_scheme="gray"),
                margin_top="1rem",
            )
        ],
        confirm="Apply adjustment",
        confirm_testid="staff-confirm-apply",
        on_confirm=StaffState.confirm_adjustment,
        is_open=StaffState.confirm_open,
        on_open_change=StaffState.set_confirm_open,
        cancel_testid="staff-confirm-cancel",
        dialog_testid="staff-confirm-dialog",
    )


# ----------------------------------------------------------------- refunds


def refund_form() -> rx.Component:
    return amount_reason_form(
        title="Refund invoice",
        intro=[
            rx.text(StaffState.refund_invoice_label, size="2", data_testid="staff-refund-invoice"),
            rx.text(
                "The money goes back to the card. The unspent credits this invoice granted are "
                "removed in proportion to the refund (all of them for a full refund).",
                size="2",
                color_scheme="gray",
            ),
        ],
        amount_placeholder="Amount in dollars, e.g. 12.50",
        amount_mode="decimal",
        amount_max=16,
        amount_label="Amount to refund",
        reason_placeholder="Reason (required, shown in the audit trail)",
        reason_label="Refund reason",
        error=StaffState.refund_error,
        on_cancel=StaffState.close_refund,
        on_submit=StaffState.review_refund,
        review="Review refund",
        prefix="staff-refund",
    )


def refund_dialog() -> rx.Component:
    return confirm_dialog(
        title="Confirm refund",
        text=StaffState.refund_confirm_text,
        text_testid="staff-refund-confirm-text",
        details=[],
        confirm="Refund",
        confirm_testid="staff-refund-confirm",
        on_confirm=StaffState.confirm_refund,
        is_open=StaffState.refund_confirm_open,
        on_open_change=StaffState.set_refund_confirm_open,
        cancel_testid="staff-refund-cancel",
        dialog_testid="staff-refund-dialog",
        color_scheme="red",
    )
