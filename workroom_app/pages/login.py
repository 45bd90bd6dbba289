import reflex as rx

from workroom_app.components.layout import app_page, auth_layout
from workroom_app.routes import LOGIN_ROUTE, SIGNUP_ROUTE
from workroom_app.state.auth import AuthState


def error_callout() -> rx.Component:
    return rx.cond(
        AuthState.error != "",
        rx.callout(
            AuthState.error,
            icon="triangle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            data_testid="auth-error",
        ),
    )


def field(label: str, name: str, type_: str, autocomplete: str, **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, as_="span", size="2", weight="medium"), html_for=name),
        rx.input(
            id=name,
            name=name,
            type=type_,
            auto_complete=autocomplete,
            size="3",
            width="100%",
            **props,
        ),
        spacing="1",
        width="100%",
    )


def auth_form(*fields: rx.Component, submit: tuple[str, str, str], on_submit) -> rx.Component:  # noqa: ANN001
    """The log-in / sign-up form: the fields, then a full-width submit button
    (`submit` = label, icon, test id) that spins and locks while AuthState works."""
    label, icon, testid = submit
    return rx.form(
        rx.vstack(
            *fields,
            rx.button(
                rx.cond(AuthState.submitting, rx.spinner(size="2"), rx.icon(icon, size=16)),
                label,
                type="submit",
                size="3",
                width="100%",
                disabled=AuthState.submitting,
                # A click comes before the browser's own checks (length, format):
                # drop the last message so it never outlives the form it was about.
                on_click=AuthState.clear_error,
                data_testid=testid,
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
        width="100%",
    )


@app_page(LOGIN_ROUTE, "Log in", public=True, on_load=AuthState.reset_form)
def login_page() -> rx.Component:
    return auth_layout(
        rx.heading("Log in", size="6"),
        rx.text("Welcome back. Enter your email and password.", color_scheme="gray", size="2"),
        error_callout(),
        auth_form(
            field(
                "Email",
                "email",
                "email",
                "username",
                required=True,
                auto_focus=True,
                placeholder="you@example.com",
            ),
            field("Password", "password", "password", "current-password", required=True),
            submit=("Log in", "log-in", "login-submit"),
            on_submit=AuthState.log_in,
        ),
        rx.text(
            "New to Workroom? ",
            rx.link(
                "Create an account", href=SIGNUP_ROUTE, underline="always", data_testid="to-signup"
            ),
            size="2",
        ),
    )
