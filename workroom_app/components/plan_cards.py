"""Plan cards and the confirmation dialog of the Plans page."""

from __future__ import annotations

import reflex as rx

from workroom_app.components.plan_text import Fact, PlanCard
from workroom_app.state.plans import PlansState


def _action_button(card: PlanCard) -> rx.Component:
    return rx.cond(
        card.action != "",
        rx.button(
            card.action_label,
            on_click=PlansState.open_action(card.key),
            loading=PlansState.opening == card.key,
            disabled=PlansState.busy | (PlansState.opening != ""),
            size="3",
            width="100%",
            white_space="nowrap",
            font_size=rx.cond(card.action == "cancel", "var(--font-size-2)", "var(--font-size-3)"),
            variant=rx.match(
                card.action,
                ("cancel", "soft"),
                ("downgrade", "outline"),
                "solid",
            ),
            color_scheme=rx.match(card.action, ("cancel", "gray"), "violet"),
            data_testid="plan-action-" + card.key,
            aria_label=card.action_label + " · " + card.name,
        ),
        rx.cond(
            card.is_current,
            rx.button(
                "Current plan",
                disabled=True,
                size="3",
                width="100%",
                variant="surface",
                color_scheme="gray",
                data_testid="plan-action-" + card.key,
            ),
        ),
    )


def plan_card(card: PlanCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(card.name, size="5", weight="bold", as_="h2"),
                rx.cond(
                    card.badge != "",
                    rx.badge(
                        card.badge, size="2", variant="solid", data_testid="plan-current-badge"
                    ),
                ),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
            ),
            rx.hstack(
                rx.text(
                    card.price,
                    size="7",
                    weight="bold",
                    data_testid="plan-price",
                    white_space="nowrap",
                ),
                rx.text(card.period, size="2", color_scheme="gray", white_space="nowrap"),
                align="baseline",
                spacing="1",
            ),
            rx.text(card.credits, size="3", weight="medium", data_testid="plan-credits"),
            rx.separator(size="4"),
            rx.vstack(
                rx.foreach(
                    card.features,
                    lambda item: rx.hstack(
                        rx.icon("check", size=16, color=rx.color("green", 10), flex_shrink="0"),
                        rx.text(item, size="2"),
                        align="start",
                        spacing="2",
                    ),
                ),
                spacing="2",
                flex="1",
                width="100%",
            ),
            rx.cond(
                card.note != "",
                rx.text(card.note, size="1", color_scheme="gray", data_testid="plan-note"),
            ),
            _action_button(card),
            spacing="3",
            height="100%",
            width="100%",
        ),
        size="3",
        width="100%",
        style=rx.cond(
            card.is_current,
            {"outline": "2px solid var(--accent-9)", "outlineOffset": "-1px"},
            {},
        ),
        data_testid="plan-card-" + card.key,
        aria_current=rx.cond(card.is_current, "true", "false"),
    )


def plan_grid() -> rx.Component:
    return rx.grid(
        rx.foreach(PlansState.cards, plan_card),
        columns=rx.breakpoints(initial="1", sm="2", lg="4"),
        spacing="4",
        width="100%",
        data_testid="plan-grid",
    )


def _fact_row(fact: Fact) -> rx.Component:
    return rx.hstack(
        rx.text(fact.label, size="2", color_scheme="gray"),
        rx.text(
            fact.value,
            size="3",
            weight="bold",
            color=rx.match(
                fact.tone,
                ("positive", rx.color("green", 11)),
                ("negative", rx.color("red", 11)),
                rx.color("gray", 12),
            ),
            data_testid=fact.testid,
            text_align="right",
        ),
        justify="between",
        align="center",
        width="100%",
        padding_y="0.5rem",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
    )


def confirm_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(PlansState.dialog_title, data_testid="confirm-title"),
            rx.dialog.description(PlansState.dialog_intro, size="2", color_scheme="gray"),
            rx.vstack(
                rx.foreach(PlansState.dialog_facts, _fact_row),
                spacing="0",
                width="100%",
                margin_y="1rem",
                data_testid="confirm-facts",
            ),
            rx.cond(
                PlansState.dialog_error != "",
                rx.callout(
                    PlansState.dialog_error,
                    icon="circle-alert",
                    color_scheme="red",
                    margin_bottom="1rem",
                    data_testid="confirm-error",
                    role="alert",
                ),
            ),
            rx.flex(
                rx.dialog.close(
                    rx.button(
                        "Not now",
                        variant="soft",
                        color_scheme="gray",
                        size="3",
                        disabled=PlansState.busy,
                        data_testid="confirm-cancel",
                    ),
                ),
                rx.button(
                    PlansState.confirm_label,
                    on_click=PlansState.confirm,
                    loading=PlansState.busy,
                    size="3",
                    color_scheme=rx.cond(PlansState.dialog_kind == "cancel", "red", "violet"),
                    data_testid="confirm-apply",
                ),
                spacing="3",
                justify="end",
                direction=rx.breakpoints(initial="column-reverse", sm="row"),
            ),
            max_width="30rem",
            data_testid="confirm-dialog",
        ),
        open=PlansState.dialog_open,
        on_open_change=PlansState.set_dialog_open,
    )
