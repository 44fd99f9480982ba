"""The one error tree of the proxy, and its one rendering in OpenAI's error shape.

Every failure a client can see is a `RouterError`; it knows its HTTP status and renders as
``{"error": {"message", "type", "param", "code"}}``, which is what the OpenAI SDKs parse.

    RouterError                       500 api_error
    ├── ConfigError                   500 (start-up only: a bad pricing.yaml stops the server)
    ├── InvalidRequest                400 invalid_request_error
    │   ├── PayloadTooLarge           413 request_too_large
    │   └── ModelNotFound             404 model_not_found
    ├── RouteNotFound                 404 / 405 for paths and methods we do not serve
    ├── LedgerUnavailable             503 ledger_unavailable (stats while the cost database is away)
    └── UpstreamError                 502 api_error: anything that went wrong at a provider
        ├── ProviderError             the provider answered with an error; status mapped below
        ├── UpstreamTimeout           504 timeout
        ├── UpstreamUnreachable       502 upstream_unreachable (connect refused, reset, bad HTTP)
        └── StreamInterrupted         the stream broke after the client got its 200

Provider HTTP statuses are translated in exactly one place, `from_provider`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from adapters.base import ProviderFailure


class RouterError(Exception):
    """Base of every error a client can see."""

    default_status: ClassVar[int] = 500
    default_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.status = status if status is not None else self.default_status
        self.type = error_type or self.default_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json(self) -> bytes:
        return msgspec.json.encode(self.body())


class ConfigError(RouterError):
    """The configuration cannot be used; raised at start-up with the offending key named."""

    default_code = "config_error"


class InvalidRequest(RouterError):
    default_status = 400
    default_type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    default_status = 413
    default_code = "request_too_large"


class ModelNotFound(InvalidRequest):
    default_status = 404
    default_code = "model_not_found"


class RouteNotFound(InvalidRequest):
    default_status = 404
    default_code = "not_found"


class UpstreamError(RouterError):
    default_status = 502
    default_type = "api_error"


class ProviderError(UpstreamError):
    """The provider answered with an error status."""

    def __init__(self, message: str, *, upstream_status: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


class UpstreamTimeout(UpstreamError):
    default_status = 504
    default_type = "timeout_error"
    default_code = "timeout"


class UpstreamUnreachable(UpstreamError):
    default_code = "upstream_unreachable"


class StreamInterrupted(UpstreamError):
    default_code = "stream_interrupted"


class LedgerUnavailable(RouterError):
    """The cost ledger's database cannot answer a read; requests themselves are unaffected."""

    default_status = 503
    default_code = "ledger_unavailable"


# upstream status -> (status we answer, OpenAI error type, code when the provider gave none)
_PROVIDER_STATUS: dict[int, tuple[int, str, str | None]] = {
    400: (400, "invalid_request_error", None),
    401: (502, "api_error", "upstream_auth_error"),
    403: (502, "api_error", "upstream_auth_error"),
    404: (502, "api_error", "upstream_not_found"),
    408: (504, "timeout_error", "timeout"),
    409: (409, "api_error", None),
    413: (413, "invalid_request_error", "request_too_large"),
    422: (400, "invalid_request_error", None),
    429: (429, "rate_limit_error", "rate_limit_exceeded"),
    500: (502, "api_error", "upstream_error"),
    502: (502, "api_error", "upstream_error"),
    503: (503, "api_error", "upstream_overloaded"),
    504: (504, "timeout_error", "timeout"),
    529: (503, "api_error", "upstream_overloaded"),
}


def from_provider(failure: ProviderFailure, *, provider: str) -> ProviderError:
    """Translate a provider's error answer into ours.

    Client mistakes (400, 413, 422) keep their meaning and the provider's message. A provider
    refusing *our* credentials or not knowing the configured model is the proxy's fault, not the
    client's, so it becomes 502: the client's SDK must not report a bad API key it never sent.
    """
    status = failure.status
    default = (502, "api_error", "upstream_error") if status >= 500 else (400, "invalid_request_error", None)
    answer, err_type, code = _PROVIDER_STATUS.get(status, default)
    headers = {"retry-after": failure.retry_after} if failure.retry_after else None
    message = failure.message or f"the provider answered HTTP {status}"
    if answer == 502 and status in (401, 403):
        message = f"provider {provider!r} rejected the proxy's credentials: {message}"
    elif answer >= 500:
        message = f"provider {provider!r} failed (HTTP {status}): {message}"
    error = ProviderError(
        message,
        upstream_status=status,
        param=failure.param,
        code=failure.code or code,
        status=answer,
        error_type=failure.type if (answer == 400 and failure.type) else err_type,
        headers=headers,
    )
    return error
