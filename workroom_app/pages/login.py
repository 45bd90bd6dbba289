import reflex as rx

from workroom_app.components.layout import app_page, auth_layout
from workroom_app.state.auth import AuthState
from workroom_app.state.session import LOGIN_ROUTE, SIGNUP_ROUTE


def error_callout() -> rx.Component:
    return rx.cond(
        AuthState.error != "",
        rx.callout(AuthState.error, icon="triangle-alert", color_scheme="red", role="alert",
                   width="100%", data_testid="auth-error"),
    )


def field(label: str, name: str, type_: str, autocomplete: str, **props) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(id=name, name=name, type=type_, auto_complete=autocomplete, size="3",
                 width="100%", **props),
        spacing="1",
        width="100%",
    )


@app_page(LOGIN_ROUTE, "Log in", public=True)
def login_page() -> rx.Component:
    return auth_layout(
        rx.heading("Log in", size="6"),
        rx.text("Welcome back. Enter your email and password.", color_scheme="gray", size="2"),
        error_callout(),
        rx.form(
            rx.vstack(
                field("Email", "email", "email", "username", required=True, auto_focus=True,
                      placeholder="you@example.com"),
                field("Password", "password", "password", "current-password", required=True),
                rx.button(
                    rx.cond(AuthState.submitting, rx.spinner(size="2"), rx.icon("log-in", size=16)),
                    "Log in",
                    type="submit",
                    size="3",
                    width="100%",
                    disabled=AuthState.submitting,
                    data_testid="login-submit",
                ),
                spacing="4",
                width="100%",
            ),
            on_submit=AuthState.log_in,
            reset_on_submit=False,
            width="100%",
        ),
        rx.text(
            "New to Workroom? ",
            rx.link("Create an account", href=SIGNUP_ROUTE, data_testid="to-signup"),
            size="2",
        ),
    )
