"""GET /api/invoices/{id}/pdf : an invoice as PDF (Subscription → Payment History).

Authenticated by the same server-side login the app uses: the login cookie is
only a lookup key (billing.accounts.lookup_session). Only the invoice's owner
(and staff) get it; everybody else, signed in or not, gets the same 404 as for
an id that does not exist, so invoice ids cannot be probed.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from workroom_app.billing import invoices
from workroom_app.db import read_session
from workroom_app.http.caller import caller_account_id

INVOICE_PDF_ROUTE = "/api/invoices/{invoice_id:int}/pdf"
NOT_FOUND = "Invoice not found."


def _pdf_for(account_id: int, invoice_id: int) -> tuple[str, bytes] | None:
    with read_session() as session:
        return invoices.pdf_for_viewer(session, invoice_id, account_id)


def _not_found() -> Response:
    return PlainTextResponse(NOT_FOUND, status_code=404, headers={"Cache-Control": "no-store"})


async def invoice_pdf(request: Request) -> Response:
    invoice_id = request.path_params.get("invoice_id")
    if not isinstance(invoice_id, int) or not 0 < invoice_id < 2**63:
        return _not_found()
    account_id = await caller_account_id(request)
    if account_id is None:
        return _not_found()
    found = await run_in_threadpool(_pdf_for, account_id, invoice_id)
    if found is None:
        return _not_found()
    filename, pdf = found
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


INVOICE_ROUTES = [Route(INVOICE_PDF_ROUTE, invoice_pdf, methods=["GET"])]
