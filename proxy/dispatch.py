"""Getting an answer despite failing providers: retries, fallbacks, escalation, circuit breakers.

The route gives the preferred models; `plan` adds the tier's fallbacks and, when escalation is on,
the tiers above. Each deployment is tried while its breaker allows, retried with backoff for
retryable failures, and skipped otherwise. A stream counts as answered only once content arrives
(the role-only opening chunk is held back until then), so a failure before the first content byte
falls back like a plain request. Every provider call before the answer gets its own ledger row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

import msgspec

from adapters import ADAPTERS
from adapters.base import Adapter, Reply, StreamState
from proxy import relay
from proxy.config import TIERS, Config
from proxy.errors import RouterError, UpstreamError
from proxy.relay import Deployment
from proxy.resilience import Breaker, Next, backoff, classify_failure, low_confidence
from proxy.router import Route
from proxy.upstream import OllamaStream, Stream


class Step(msgspec.Struct, frozen=True):
    tier: str | None
    model: str


def plan(route: Route, config: Config) -> list[Step]:
    """The deployments to try, in order: the route's, then (if allowed) the tiers above."""
    policy = config.resilience
    models = route.models if policy.fallbacks else route.models[:1]
    steps = [Step(route.tier, m) for m in models]
    if route.tier is not None and policy.escalate:
        for tier in TIERS[TIERS.index(route.tier) + 1 :]:
            tier_models = config.tiers.get(tier)
            steps += [Step(tier, m) for m in (tier_models if policy.fallbacks else tier_models[:1])]
    seen: set[str] = set()
    return [s for s in steps if not (s.model in seen or seen.add(s.model))]  # type: ignore[func-returns-value]


def breakers(config: Config) -> dict[str, Breaker]:
    policy = config.resilience
    return {name: Breaker(policy.breaker_failures, policy.breaker_cooldown) for name in config.models}


class Tracker(Protocol):
    """What dispatch needs of the request it serves: a ledger row for each provider call before the answer."""

    def attempt(
        self, deployment: Deployment, tier: str | None, error: RouterError | None, reply: Reply | None, reason: str
    ) -> None: ...


class Opened(msgspec.Struct):
    """A stream that has produced content (or finished): its first bytes are held in `head`."""

    step: Step
    deployment: Deployment
    adapter: Any
    stream: Stream | OllamaStream
    state: StreamState
    head: list[bytes]
    rest: AsyncGenerator[bytes, None]
    notes: tuple[str, ...]


class Exhausted(UpstreamError):
    """Every deployment the plan allowed failed or was skipped."""

    default_status = 503
    default_code = "no_deployment_available"


class _Call(msgspec.Struct):
    step: Step
    deployment: Deployment
    error: RouterError | None = None
    reply: Reply | None = None
    reason: str = "failed"


class Dispatcher:
    """One request's way through the plan.

    `trail` says what happened (the `x-router-fallbacks` header); `final` is the deployment whose
    answer or error the client gets. Every other provider call is reported to the tracker, once,
    when dispatch ends, so the request's own row never double-counts the call it describes.
    """

    def __init__(self, services: Any, tracker: Tracker, route: Route, body: Mapping[str, Any]) -> None:
        self.services = services
        self.tracker = tracker
        self.route = route
        self.body = body
        self.policy = services.config.resilience
        self.trail: list[str] = []
        self.final: Deployment | None = None
        self._calls: list[_Call] = []

    async def _attempts(self) -> Any:
        """Yields (step, deployment, adapter) for each try; the caller sends back what went wrong."""
        steps = plan(self.route, self.services.config)
        skip_tier: str | None = None
        for step in steps:
            if skip_tier is not None and step.tier == skip_tier:
                continue
            skip_tier = None
            breaker: Breaker = self.services.breakers[step.model]
            if not breaker.allow():
                self.trail.append(f"{step.model}: circuit open")
                continue
            deployment: Deployment = self.services.deployments[step.model]
            adapter = ADAPTERS[deployment.adapter]
            for attempt in range(1, self.policy.retries + 2):
                verdict = yield step, deployment, adapter
                if verdict == "escalate":
                    skip_tier = step.tier
                    break
                error: RouterError = verdict
                decision = classify_failure(error)
                if decision is Next.STOP:
                    raise error
                if decision is Next.RETRY and attempt <= self.policy.retries:
                    delay = backoff(attempt, self.policy, error)
                    if delay <= self.policy.max_retry_after and breaker.allow():
                        self.trail.append(f"{step.model}: retry after {error.status} {error.code or error.type}")
                        await asyncio.sleep(delay)
                        continue
                self.trail.append(f"{step.model}: {error.status} {error.code or error.type}")
                break

    def _failed(self, step: Step, deployment: Deployment, error: RouterError) -> RouterError:
        breaker = self.services.breakers[step.model]
        if classify_failure(error) is Next.STOP:
            breaker.success()  # it answered, if only to refuse the request: the deployment is alive
        else:
            breaker.failure()
        self._calls.append(_Call(step, deployment, error=error))
        return error

    def _settle(self, final: _Call | None) -> None:
        """Report every call but the final one; called once, however dispatch ends."""
        if final is not None:
            self.final = final.deployment
        for call in self._calls:
            if call is not final:
                self.tracker.attempt(call.deployment, call.step.tier, call.error, call.reply, call.reason)
        self._calls = []

    def _exhausted(self) -> RouterError:
        errors = [c for c in self._calls if c.error is not None]
        if not errors:
            return Exhausted(f"No configured model could answer ({'; '.join(self.trail)}).")
        last = errors[-1]
        assert last.error is not None
        if len({c.deployment.name for c in errors}) == 1 and len(errors) == len(self._calls):
            return last.error  # one deployment: its own error says it best (a 429 keeps its retry-after)
        error = Exhausted(f"No configured model could answer ({'; '.join(self.trail)}). Last: {last.error.message}")
        if last.error.status == 429:
            error.status, error.headers = 429, dict(last.error.headers)
        return error

    async def complete(self) -> tuple[Step, Deployment, Reply]:
        """A plain answer; a low-confidence one is costed and asked again one tier up.

        If every tier above fails too, the low-confidence answer is better than none: it is returned.
        """
        attempts = self._attempts()
        final: _Call | None = None
        try:
            step, deployment, adapter = await attempts.__anext__()
            while True:
                verdict: Any
                try:
                    reply = await relay.complete(self.services.upstream, adapter, deployment, self.body)
                except RouterError as exc:
                    verdict = self._failed(step, deployment, exc)
                else:
                    self.services.breakers[step.model].success()
                    reason = self._should_escalate(step, reply)
                    if reason is None:
                        final = _Call(step, deployment, reply=reply)
                        return step, deployment, reply
                    self._calls.append(_Call(step, deployment, reply=reply, reason=f"escalated: {reason}"))
                    self.trail.append(f"{step.model}: escalated ({reason})")
                    verdict = "escalate"
                step, deployment, adapter = await attempts.asend(verdict)
        except StopAsyncIteration:
            kept = [c for c in self._calls if c.reply is not None]
            if kept:
                final = kept[-1]
                self.trail.append(f"{final.step.model}: kept (no stronger model answered)")
                assert final.reply is not None
                return final.step, final.deployment, final.reply
            error = self._exhausted()
            final = self._calls[-1] if self._calls else None
            raise error from None
        except RouterError:
            final = self._calls[-1] if self._calls else None
            raise
        finally:
            self._settle(final)
            await attempts.aclose()

    def _should_escalate(self, step: Step, reply: Reply) -> str | None:
        if step.tier is None or step.tier == TIERS[-1] or not self.policy.escalate:
            return None
        return low_confidence(reply, self.policy)

    async def open_stream(self, *, wants_usage: bool, on_content: Any, text: list[str]) -> Opened:
        """A stream whose first content has arrived; failures before it fall back like plain requests."""
        attempts = self._attempts()
        final: _Call | None = None
        try:
            step, deployment, adapter = await attempts.__anext__()
            while True:
                try:
                    opened = await self._prime(step, deployment, adapter, wants_usage, on_content, text)
                except RouterError as exc:
                    verdict: Any = self._failed(step, deployment, exc)
                    text.clear()
                else:
                    self.services.breakers[step.model].success()
                    final = _Call(step, deployment)
                    return opened
                step, deployment, adapter = await attempts.asend(verdict)
        except StopAsyncIteration:
            error = self._exhausted()
            final = self._calls[-1] if self._calls else None
            raise error from None
        except RouterError:
            final = self._calls[-1] if self._calls else None
            raise
        finally:
            self._settle(final)
            await attempts.aclose()

    async def _prime(
        self,
        step: Step,
        deployment: Deployment,
        adapter: Adapter[Any],
        wants_usage: bool,
        on_content: Any,
        text: list[str],
    ) -> Opened:
        stream = await relay.open_stream(self.services.upstream, adapter, deployment, self.body)
        state = adapter.new_stream()
        rest = relay.relay(
            stream, adapter, state, deployment, wants_usage=wants_usage, on_content=on_content, text=text
        )
        head: list[bytes] = []
        try:
            while not (state.content_chars or state.done or state.finish_reason):
                head.append(await rest.__anext__())
        except StopAsyncIteration:
            pass
        except BaseException:
            await rest.aclose()
            await stream.aclose()
            raise
        return Opened(step, deployment, adapter, stream, state, head, rest, stream.notes)
