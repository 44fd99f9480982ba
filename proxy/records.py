"""What the proxy remembers about each request, and where that goes.

One `RequestRecord` is written for every request, answered or failed. A `Ledger` takes it
without blocking the response; the cost ledger of the database keeps it, the default one logs it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import msgspec

from adapters.base import Usage
from proxy.config import Model


class RequestRecord(msgspec.Struct, kw_only=True):
    id: str
    created_at: datetime
    requested_model: str | None = None
    tier: str | None = None
    score: float | None = None
    model: str | None = None
    provider: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    baseline_cost_usd: Decimal | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    http_status: int = 200
    status: str = "ok"  # ok | error | client_closed; attempts: retried | fallback | escalated
    error: str | None = None
    # 0 for the request's own row. n >= 1 for the n-th provider call made before the answer
    # (failed, or escalated for low confidence): its own row, id "<request id>.<n>", costed too.
    attempt: int = 0


class Ledger(Protocol):
    def record(self, row: RequestRecord) -> None:
        """Take the row without blocking; persisting it is the ledger's business."""


PER_TOKENS = Decimal(1_000_000)


def cost(price: Model, usage: Usage) -> Decimal:
    """USD for these tokens at this model's prices; cached prompt tokens at the cached price."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    total = (
        (usage.prompt_tokens - cached) * price.input + cached * cached_price + usage.completion_tokens * price.output
    )
    return total / PER_TOKENS


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        # fixed-point digits, exactly: 4.9E-7 becomes 0.00000049 (and 0E-10 becomes 0)
        return msgspec.Raw(format(value.normalize() if value else Decimal(0), "f").encode())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_json(value: object) -> bytes:
    """JSON for records and stats: money as exact fixed-point numbers, never floats or exponents.

    msgspec writes a Decimal as its `str()`, which turns small amounts into 4.9E-7: valid JSON,
    but not what a finance team wants to read or paste into a spreadsheet.
    """
    return msgspec.json.encode(_plain(msgspec.to_builtins(value, builtin_types=(Decimal, datetime))))


class LogLedger:
    """Writes each record as one JSON line to the `smr.requests` logger."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("smr.requests")

    def record(self, row: RequestRecord) -> None:
        if self._log.isEnabledFor(logging.INFO):
            self._log.info(to_json(row).decode())
