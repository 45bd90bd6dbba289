import reflex as rx

from workroom_app.billing.accounts import MIN_PASSWORD_LENGTH
from workroom_app.components.layout import app_page, auth_layout
from workroom_app.pages.login import auth_form, error_callout, field
from workroom_app.routes import LOGIN_ROUTE, SIGNUP_ROUTE
from workroom_app.state.auth import AuthState


@app_page(SIGNUP_ROUTE, "Sign up", public=True, on_load=AuthState.reset_form)
def signup_page() -> rx.Component:
    return auth_layout(
        rx.heading("Create your account", size="6"),
        rx.text(
            "You start with free trial credits. No card needed.", color_scheme="gray", size="2"
        ),
        error_callout(),
        auth_form(
            field("Name", "display_name", "text", "name", placeholder="Optional", auto_focus=True),
            field(
                "Email", "email", "email", "username", required=True, placeholder="you@example.com"
            ),
            field(
                "Password",
                "password",
                "password",
                "new-password",
                required=True,
                min_length=MIN_PASSWORD_LENGTH,
                placeholder=f"At least {MIN_PASSWORD_LENGTH} characters",
            ),
            field(
                "Confirm password", "confirm_password", "password", "new-password", required=True
            ),
            submit=("Create account", "user-plus", "signup-submit"),
            on_submit=AuthState.sign_up,
        ),
        rx.text(
            "Already have an account? ",
            rx.link("Log in", href=LOGIN_ROUTE, underline="always"),
            size="2",
        ),
    )
