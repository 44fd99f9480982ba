"""The failure policy is pure: what an error means, how long to wait, when a breaker opens."""

from __future__ import annotations

import pytest

from adapters.base import Reply
from proxy.config import Resilience
from proxy.errors import InvalidRequest, ProviderError, RouterError, UpstreamTimeout, UpstreamUnreachable
from proxy.resilience import Breaker, Next, backoff, classify_failure, low_confidence


def provider(status: int, headers: dict[str, str] | None = None) -> ProviderError:
    return ProviderError("x", upstream_status=status, headers=headers)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UpstreamUnreachable("refused"), Next.RETRY),
        (UpstreamTimeout("slow"), Next.SKIP),
        (provider(408), Next.RETRY),
        (provider(409), Next.RETRY),
        (provider(429), Next.RETRY),
        (provider(500), Next.RETRY),
        (provider(503), Next.RETRY),
        (provider(529), Next.RETRY),
        (provider(401), Next.SKIP),
        (provider(404), Next.SKIP),
        (provider(400), Next.STOP),
        (provider(413), Next.STOP),
        (InvalidRequest("bad"), Next.STOP),
        (RouterError("bad payload", code="bad_upstream_response", status=502), Next.SKIP),
    ],
)
def test_what_a_failure_means(error: RouterError, expected: Next) -> None:
    assert classify_failure(error) is expected


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = Resilience(backoff_base=0.5, backoff_max=3.0)
    error = provider(500)
    assert backoff(1, policy, error, rand=lambda: 0.0) == 0.25
    assert backoff(1, policy, error, rand=lambda: 1.0) == 0.5
    assert backoff(3, policy, error, rand=lambda: 1.0) == 2.0
    assert backoff(10, policy, error, rand=lambda: 1.0) == 3.0


def test_retry_after_is_honoured() -> None:
    policy = Resilience()
    assert backoff(1, policy, provider(429, {"retry-after": "1.5"})) == 1.5
    assert 0 < backoff(1, policy, provider(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) <= 4


def test_breaker_opens_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = Breaker(failures=3, cooldown=10, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half-open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.failure()  # the probe failed: open for another cool-down
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_a_probe_that_never_reports_back_expires() -> None:
    now = [0.0]
    breaker = Breaker(failures=1, cooldown=10, clock=lambda: now[0])
    breaker.failure()
    now[0] = 10.0
    assert breaker.allow()  # the probe goes out, and its client leaves: no success, no failure
    now[0] = 15.0
    assert not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()


def test_success_resets_the_count() -> None:
    breaker = Breaker(failures=2, cooldown=1)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def reply(content: str | None, finish: str = "stop", body: bytes = b"{}") -> Reply:
    return Reply(body=body, usage=None, finish_reason=finish, content=content)


def test_low_confidence_detectors() -> None:
    policy = Resilience()
    assert low_confidence(reply(""), policy) == "empty"
    assert low_confidence(reply(None, body=b'{"tool_calls": [{"id": "c"}]}'), policy) is None
    assert low_confidence(reply("I'm not sure, but maybe 42."), policy) == "refusal"
    assert low_confidence(reply("I can't help with that."), policy) == "refusal"
    assert low_confidence(reply("The answer is", finish="length"), policy) == "truncated"
    assert low_confidence(reply("x" * 500, finish="length"), policy) is None
    assert low_confidence(reply("Paris is the capital of France."), policy) is None
    only_empty = Resilience(escalate_on=("empty",))
    assert low_confidence(reply("I don't know."), only_empty) is None
