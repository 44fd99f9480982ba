"""A finished request's tokens and money: priced from the provider's usage, else estimated.

Pricing is exact (`Decimal`, from pricing.yaml, cached input at its own price). When a provider
sent no usage (it reports none, the stream was cut, the client left), tiktoken counts the prompt
and the text sent so far; that runs in a worker thread (the first count loads the encoding), and
the row, marked `usage_estimated`, goes to the ledger when it is done.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import anyio.to_thread

from adapters.base import Usage
from proxy.config import Config
from proxy.records import Ledger, RequestRecord, cost

log = logging.getLogger("smr.ledger")
ZERO = Decimal(0)


def price(record: RequestRecord, usage: Usage | None, config: Config) -> None:
    """Tokens and cost onto the row; a routed request without usage costs nothing."""
    if record.model is None:
        return
    usage = usage or Usage()
    record.prompt_tokens = usage.prompt_tokens
    record.completion_tokens = usage.completion_tokens
    record.cached_tokens = usage.cached_tokens
    record.cost_usd = cost(config.models[record.model], usage)
    # the baseline would have been called once, for the answer: earlier attempts have no baseline cost
    record.baseline_cost_usd = cost(config.models[config.baseline], usage) if record.attempt == 0 else ZERO


def needs_estimate(record: RequestRecord, usage: Usage | None, text: str) -> bool:
    """No usage for a request a provider worked on: answered, cut mid-answer, or left by the client."""
    return usage is None and record.model is not None and (record.status != "error" or bool(text))


async def estimate_and_record(record: RequestRecord, messages: Any, text: str, config: Config, ledger: Ledger) -> None:
    """Count the tokens off the event loop, price them, and hand the row to the ledger."""
    from proxy import tokens  # tiktoken loads only if a provider ever omits usage

    usage: Usage | None = None
    try:
        usage = await anyio.to_thread.run_sync(tokens.estimate_usage, messages, text, record.model or "")
        record.usage_estimated = True
    except Exception:  # an estimate must never cost the row
        log.exception("ledger: could not estimate the tokens of %s; recorded without them", record.id)
    finally:
        price(record, usage, config)
        ledger.record(record)


def settle(
    record: RequestRecord,
    usage: Usage | None,
    messages: Any,
    text: str,
    config: Config,
    ledger: Ledger,
    pending: set[asyncio.Task[None]],
) -> None:
    """The row's tokens and cost, then the ledger: now, or after an estimate in the background."""
    if needs_estimate(record, usage, text):
        task = asyncio.get_running_loop().create_task(estimate_and_record(record, messages, text, config, ledger))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return
    price(record, usage, config)
    ledger.record(record)
