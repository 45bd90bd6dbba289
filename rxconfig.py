"""Reflex configuration. Workroom keeps its own database settings
(WORKROOM_DATABASE_URL, see workroom_app/settings.py); Reflex's db_url is unused."""

import os

import reflex as rx

# One web process (no Redis) keeps each tab's state in memory. A tab that reconnects (after a
# restart too) is hydrated in full and its page load re-reads everything from the database (the
# login from its cookie, then the page's data), so nothing a restart would lose matters; Reflex's
# default disk manager instead re-scans one file per open tab and state every 2 s, which at 500
# idle tabs cost more CPU than all the rest of the idle app and stalled every tab's events while
# it ran. With Redis (several workers) Reflex's Redis manager is used, as before.
_ONE_PROCESS = not (os.environ.get("REFLEX_REDIS_URL") or os.environ.get("REDIS_URL"))

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
    **({"state_manager_mode": rx.constants.StateManagerMode.MEMORY} if _ONE_PROCESS else {}),
)
