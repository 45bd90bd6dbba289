"""Reflex configuration. Workroom keeps its own database settings
(WORKROOM_DATABASE_URL, see workroom_app/settings.py); Reflex's db_url is unused."""

import reflex as rx

config = rx.Config(
    app_name="workroom_app",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(
                appearance="light", accent_color="violet", gray_color="slate", radius="medium"
            )
        ),
    ],
    # Every page but /login and /signup is private: no sitemap to publish.
    disable_plugins=[rx.plugins.SitemapPlugin],
)
