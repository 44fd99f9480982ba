"""Deciding what to do when a provider fails: retry, skip, or give up; and when a deployment is dead.

Pure policy, no I/O: the handler asks `classify_failure` what an error means, `backoff` how long
to wait, a `Breaker` whether a deployment may be tried, and `low_confidence` whether an answer
should go one tier up. Time comes from an injected clock so tests need not sleep.
"""

from __future__ import annotations

import enum
import random
import re
import time
from collections.abc import Callable

from adapters.base import Reply
from proxy.config import Resilience
from proxy.errors import ProviderError, RouterError, UpstreamTimeout, UpstreamUnreachable


class Next(enum.Enum):
    RETRY = "retry"  # the same deployment again, after a backoff
    SKIP = "skip"  # this deployment will not do; try the next one
    STOP = "stop"  # the request itself is at fault: no provider will answer it differently


_RETRYABLE_STATUS = {408, 409, 429}


def classify_failure(error: RouterError) -> Next:
    """Connect errors, 408, 409, 429 and 5xx are worth retrying; our own auth or model problems with one
    provider are worth skipping; a bad request is the client's and goes straight back."""
    if isinstance(error, UpstreamUnreachable):
        return Next.RETRY
    if isinstance(error, UpstreamTimeout):
        return Next.SKIP  # waiting the whole timeout again rarely pays; the next deployment might not hang
    if isinstance(error, ProviderError):
        status = error.upstream_status
        if status in _RETRYABLE_STATUS or status >= 500:
            return Next.RETRY
        if status in (401, 403, 404):
            return Next.SKIP
        return Next.STOP
    if error.status >= 500:
        return Next.SKIP
    return Next.STOP


def retry_after_seconds(error: RouterError) -> float | None:
    value = error.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare from APIs; fall back to our own backoff


def backoff(attempt: int, policy: Resilience, error: RouterError, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (1-based): the provider's retry-after if it gave
    one, else full-jitter exponential backoff capped at `backoff_max`."""
    hinted = retry_after_seconds(error)
    if hinted is not None:
        return hinted
    ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
    return float(ceiling * (0.5 + rand() / 2))


class Breaker:
    """A circuit breaker for one deployment.

    Closed: calls flow. After `failures` consecutive failures it opens: calls are refused for
    `cooldown` seconds, then one probe is let through (half-open); its success closes the breaker,
    its failure opens it for another cool-down. A probe that never reports back (its client left)
    expires after a cool-down, so a breaker cannot stay shut for good.
    """

    __slots__ = ("_clock", "_cooldown", "_failures", "_limit", "_opened_at", "_probe_at")

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = failures
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._cooldown else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        now = self._clock()
        if state == "half-open" and (self._probe_at is None or now - self._probe_at >= self._cooldown):
            self._probe_at = now
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def failure(self) -> None:
        self._failures += 1
        if self._probe_at is not None or self._failures >= self._limit:
            self._opened_at = self._clock()
        self._probe_at = None


_HEDGES = re.compile(
    r"\b(i'?m not (sure|certain|able to)|i am not (sure|certain|able to)|i (do not|don'?t) know|"
    r"i can(no|')t (help|assist|answer|do that)|i'?m unable to|as an ai( language model)?|"
    r"i (do not|don'?t) have (enough|access|the ability))\b",
    re.IGNORECASE,
)


def low_confidence(reply: Reply, policy: Resilience) -> str | None:
    """Why this answer should be asked of a stronger tier, or None. Only the detectors configured run."""
    detectors = policy.escalate_on
    content = (reply.content or "").strip()
    has_tools = b'"tool_calls":[{' in reply.body.replace(b" ", b"")
    if "empty" in detectors and not content and not has_tools:
        return "empty"
    if "refusal" in detectors and content and _HEDGES.search(content[:400]):
        return "refusal"
    if "truncated" in detectors and reply.finish_reason == "length" and len(content) < policy.short_answer_chars:
        return "truncated"
    return None
