"""GET /v1/stats: what the ledger counted, cost against the baseline, over an optional window.

`?window=24h` (s, m, h, d, w) counts back from now; `?since=` and `?until=` take ISO 8601 times
(UTC when no offset is given). Without any, everything the ledger holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from litestar import Request, Response, get

from proxy.errors import InvalidRequest, RouteNotFound
from proxy.ledger.stats import Stats, parse_window
from proxy.records import to_json


class StatsSource(Protocol):
    async def stats(self, since: datetime | None = None, until: datetime | None = None) -> Stats: ...


def _moment(name: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name}: not an ISO 8601 time: {text!r}", param=name, code="invalid_value") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(since: str | None, until: str | None, last: str | None) -> tuple[datetime | None, datetime | None]:
    """The (since, until) a query asks for; `InvalidRequest` naming the parameter otherwise."""
    end = _moment("until", until)
    if last:
        if since:
            raise InvalidRequest("give either window or since, not both", param="window", code="invalid_value")
        try:
            span = parse_window(last)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="window", code="invalid_value") from None
        return (end or datetime.now(UTC)) - span, end
    return _moment("since", since), end


@get("/v1/stats")
async def stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    source: StatsSource | None = request.app.state.get("stats")
    if source is None:
        raise RouteNotFound("This proxy runs without a cost ledger; /v1/stats is not available.")
    query = request.query_params
    since, until = window(query.get("since"), query.get("until"), query.get("window"))
    return Response(to_json(await source.stats(since, until)), media_type="application/json")
