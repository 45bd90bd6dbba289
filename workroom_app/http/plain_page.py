"""The small standalone HTML pages served outside the app (a link opened from an email or a
bank's page: payment confirmation, one-click unsubscribe): one look, no script, never cached,
never framed, and no Referer leaves them (their address is the credential)."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
BASE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "color:#1c2024}main{border:1px solid #d9d9e0;border-radius:12px;padding:1.5rem}"
)


def plain_page(title: str, body: str, *, style: str = "", status: int = 200) -> HTMLResponse:
    """`body` (already escaped HTML) under a heading `title`, with BASE_STYLE plus `style`."""
    text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · Workroom</title><style>{BASE_STYLE}{style}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(text, status_code=status, headers=HEADERS)
