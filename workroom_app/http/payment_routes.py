"""The local test-mode gateway's confirmation step: a stand-in for the bank's
3-D Secure page (with Stripe, Stripe's hosted page takes its place).

GET  /api/payments/confirm?token=…  what is being paid, with Confirm and Fail authentication
POST /api/payments/confirm?token=…  form `answer` = confirm | fail: settles the payment once
                                     (billing/payment_confirmation.py) and says what happened

Like Stripe's hosted page, the address itself is the credential: the token is 32 random
bytes, handed only to the account that made the payment (and in its emails). It travels as
`?token=`, which the log redaction blanks (security/log_redaction.py). Posts from other sites
are refused, so a page elsewhere cannot answer for the card holder.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from workroom_app.billing import clock, payment_confirmation, periods
from workroom_app.billing import subscriptions as subs
from workroom_app.billing.payment_confirmation import CONFIRM_PATH, ConfirmationError
from workroom_app.billing.subscriptions.lookup import _money
from workroom_app.db import read_session, write_session
from workroom_app.http.auth_routes import _same_origin
from workroom_app.http.plain_page import plain_page

_STYLE = (
    "button,a.button{font:inherit;padding:.6rem 1rem;border-radius:8px;margin:.5rem .5rem 0 0;"
    "cursor:pointer;display:inline-block;text-decoration:none}"
    ".confirm{background:#3e63dd;color:#fff;border:0}"
    ".fail{background:#fff;color:#ce2c31;border:1px solid #ce2c31}"
    "a.button{background:#3e63dd;color:#fff}.note{color:#60646c;font-size:.9rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return plain_page(title, body, style=_STYLE, status=status)


def _continue(path: str) -> str:
    return f'<p><a class="button" href="{html.escape(path)}" data-testid="confirm-continue">Back to Workroom</a></p>'


def _read(token: str):
    with read_session() as session:
        row = payment_confirmation.by_token(session, token)
        if row is None:
            return None
        deadline = payment_confirmation._deadline_text(session, row)
        return row, deadline


_NOT_FOUND = (
    "This payment confirmation does not exist. Open the payment again from Workroom.",
    404,
)


async def show(request: Request) -> Response:
    token = request.query_params.get("token", "")
    found = await run_in_threadpool(_read, token)
    if found is None or found[0].gateway != "local":
        return _page("Payment not found", f"<p>{_NOT_FOUND[0]}</p>", _NOT_FOUND[1])
    row, deadline = found
    if row.status != payment_confirmation.PENDING or periods.as_utc(row.expires_at) <= clock.now():
        said = {
            payment_confirmation.SUCCEEDED: "This payment is already confirmed.",
            payment_confirmation.FAILED: f"This payment failed: {row.failure_reason or ''}",
            payment_confirmation.EXPIRED: "This payment was not confirmed in time.",
        }.get(row.status, "This payment was not confirmed in time.")
        return _page(
            "Confirm this payment", f"<p>{html.escape(said)}</p>{_continue(row.return_path)}"
        )
    card = (
        f"{html.escape((row.card_brand or 'card').title())} ending in {html.escape(row.card_last4)}"
        if row.card_last4
        else "your card"
    )
    body = (
        f'<p>Your bank asks you to confirm this payment of <strong data-testid="confirm-amount">'
        f"{html.escape(_money(row.amount_cents))}</strong> for "
        f"{html.escape(row.description)} with {card}.</p>"
        f"<p class=note>Workroom test mode: this page stands in for your bank's 3-D Secure "
        f"check. Confirm by {html.escape(deadline)}; nothing is charged until you do.</p>"
        f'<form method="post">'
        f'<button class="confirm" name="answer" value="confirm" data-testid="confirm-payment">'
        f"Confirm</button>"
        f'<button class="fail" name="answer" value="fail" data-testid="fail-payment">'
        f"Fail authentication</button></form>"
    )
    return _page("Confirm this payment", body)


def _answer(token: str, confirmed: bool) -> tuple[subs.Outcome, str]:
    with write_session() as session:
        outcome = payment_confirmation.confirm(session, token, confirmed=confirmed)
        row = payment_confirmation.by_token(session, token)
        return outcome, row.return_path if row is not None else "/"


async def answer(request: Request) -> Response:
    if not _same_origin(request):
        return _page("Request refused", "<p>Cross-site request refused.</p>", 403)
    token = request.query_params.get("token", "")
    body = await request.body()  # capped by security/body_limit.py
    choice = (parse_qs(body.decode("utf-8", "replace")).get("answer") or [""])[0]
    if choice not in ("confirm", "fail"):
        return _page("Confirm this payment", "<p>Choose Confirm or Fail authentication.</p>", 400)
    try:
        outcome, back = await run_in_threadpool(_answer, token, choice == "confirm")
    except ConfirmationError as exc:
        return _page("Payment not found", f"<p>{html.escape(str(exc))}</p>", 404)
    if outcome.ok:
        title = "Payment confirmed"
        said = outcome.message if not outcome.replayed else "This payment is already confirmed."
    else:
        title = "Payment failed"
        said = outcome.message
    return _page(title, f'<p data-testid="confirm-result">{html.escape(said)}</p>{_continue(back)}')


PAYMENT_ROUTES = [
    Route(CONFIRM_PATH, show, methods=["GET"]),
    Route(CONFIRM_PATH, answer, methods=["POST"]),
]
