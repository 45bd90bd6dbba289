"""GET /api/usage.csv?action=&feature=&from=&to= : the signed-in user's
filtered ledger as CSV, streamed in chunks (billing/usage.iter_csv).

Authenticated by the login cookie only, looked up server-side; there is no
account parameter, so nobody can ask for another account's rows. The filters
are validated by the same UsageFilter the page uses: a bad one is a 400 with
the user-readable message.
"""

from __future__ import annotations

from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from workroom_app.billing import clock, usage
from workroom_app.billing.usage import UsageError, UsageFilter
from workroom_app.db import read_session
from workroom_app.http.caller import caller_account_id

CSV_ROUTE = "/api/usage.csv"
_PARAMS = frozenset({"action", "feature", "from", "to"})
SIGN_IN = "Sign in to download your usage."


def _stream(account_id: int, filters: UsageFilter) -> Iterator[str]:
    # Starlette runs a sync iterator in its thread pool, so these blocking
    # reads stay off the event loop; closing the iterator closes the session.
    with read_session() as session:
        yield from usage.iter_csv(session, account_id, filters)


def _single(values: list[str], what: str) -> str | None:
    if len(values) > 1:
        raise UsageError(f"Give one {what} date.")
    return values[0] if values else None


def parse_filters(query) -> UsageFilter:  # noqa: ANN001  (starlette QueryParams)
    unknown = set(query.keys()) - _PARAMS
    if unknown:
        raise UsageError(f"Unknown parameter {sorted(unknown)[0]!r}.")
    return UsageFilter(
        action_types=tuple(query.getlist("action")),
        features=tuple(query.getlist("feature")),
        date_from=_single(query.getlist("from"), "start"),
        date_to=_single(query.getlist("to"), "end"),
    )


async def usage_csv(request: Request) -> Response:
    account_id = await caller_account_id(request)
    if account_id is None:
        return PlainTextResponse(SIGN_IN, status_code=401)
    try:
        filters = parse_filters(request.query_params)
    except UsageError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    filename = f"workroom-usage-{clock.now().date().isoformat()}.csv"
    return StreamingResponse(
        _stream(account_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


USAGE_CSV_ROUTES = [Route(CSV_ROUTE, usage_csv, methods=["GET"])]
