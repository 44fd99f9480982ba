"""HTTP handlers. They orchestrate and nothing more: classify → route → adapter → upstream."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import anyio
import msgspec
from litestar import Request, Response, asgi, get
from litestar.connection import ASGIConnection
from litestar.exceptions import MethodNotAllowedException
from litestar.params import Parameter
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.base import Reply, Usage
from proxy import accounting, router
from proxy.classify import Classifier, extract_prompt
from proxy.classify.cache import CachedClassifier
from proxy.config import AUTO, TIERS, Config
from proxy.departure import Answer, ClientClosed, Departure, SSEResponse
from proxy.dispatch import Dispatcher, Opened, Step, breakers
from proxy.errors import PayloadTooLarge, RouterError
from proxy.records import Ledger, RequestRecord
from proxy.relay import Deployment
from proxy.request import ChatRequest, decode
from proxy.router import Route
from proxy.upstream import Upstream

JSON = "application/json"
log = logging.getLogger("smr")


class Services:
    """What handlers need, built once by the app factory and shared by every request."""

    def __init__(
        self,
        config: Config,
        deployments: dict[str, Deployment],
        classifier: Classifier,
        ledger: Ledger,
        upstream: Upstream | None = None,
    ) -> None:
        self.config = config
        self.deployments = deployments
        self.classifier = classifier
        self.ledger = ledger
        self._upstream = upstream
        self.pending: set[asyncio.Task[None]] = set()  # rows waiting for a token estimate
        self.busy = 0  # chat requests between arrival and the start of their answer
        self.breakers = breakers(config)  # one circuit breaker per deployment

    @property
    def upstream(self) -> Upstream:
        if self._upstream is None:
            raise RuntimeError("the upstream client is built in the app's lifespan; it has not started")
        return self._upstream

    def attach(self, upstream: Upstream | None) -> None:
        self._upstream = upstream


class Call:
    """One request on its way; becomes its ledger row exactly once."""

    __slots__ = ("attempts", "messages", "record", "services", "started", "text")

    def __init__(self, services: Services) -> None:
        self.services = services
        self.started = time.perf_counter()
        self.record = RequestRecord(id=f"chatcmpl-smr-{uuid.uuid4().hex}", created_at=datetime.now(UTC))
        self.messages: Any = None  # the client's messages, to count if the provider sends no usage
        self.text: list[str] = []  # the content streamed so far, likewise
        self.attempts = 0  # provider calls before the one that answered, each with its own row

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def first_content(self) -> None:
        self.record.ttft_ms = round(self.elapsed_ms(), 3)

    def fail(self, exc: RouterError) -> None:
        self.record.status = "error"
        self.record.http_status = exc.status
        self.record.error = f"{exc.code or exc.type}: {exc.message}"[:1000]

    def finish(self, usage: Usage | None = None) -> None:
        self.record.latency_ms = round(self.elapsed_ms(), 3)
        services = self.services
        accounting.settle(
            self.record, usage, self.messages, "".join(self.text), services.config, services.ledger, services.pending
        )

    def attempt(
        self, deployment: Deployment, tier: str | None, error: RouterError | None, reply: Reply | None, reason: str
    ) -> None:
        """A provider call that did not become the answer: its own row, costed if it produced tokens."""
        self.attempts += 1
        mine = self.record
        row = RequestRecord(
            id=f"{mine.id}.{self.attempts}",
            created_at=mine.created_at,
            requested_model=mine.requested_model,
            tier=tier,
            score=mine.score,
            model=deployment.name,
            provider=deployment.provider,
            stream=mine.stream,
            latency_ms=round(self.elapsed_ms(), 3),
            attempt=self.attempts,
            status="error" if error is not None else "escalated",
            http_status=error.status if error is not None else 200,
            error=f"{error.code or error.type}: {error.message}"[:1000] if error is not None else reason,
        )
        services = self.services
        text = reply.content or "" if reply is not None else ""
        usage = reply.usage if reply is not None else None
        accounting.settle(row, usage, self.messages, text, services.config, services.ledger, services.pending)


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


async def _route(services: Services, view: ChatRequest) -> Route:
    if not router.needs_score(view.model):
        return router.route(view.model, services.config)
    prompt = extract_prompt(view.messages)
    classifier = services.classifier
    scored = classifier.cached(prompt) if isinstance(classifier, CachedClassifier) else None
    if scored is None:
        text = prompt.text
        if classifier.inline or (services.busy == 1 and len(text) <= classifier.loop_chars and text.isascii()):
            scored = classifier.score(prompt)  # cheap, or this request has the loop to itself
        else:
            scored = await anyio.to_thread.run_sync(classifier.score, prompt)
    return router.route(view.model, services.config, scored)


def _dropped(request_id: str, deployment: Deployment, notes: tuple[str, ...]) -> dict[str, str]:
    """The parameters the provider could not honour as sent, for the client's header and the log."""
    if not notes:
        return {}
    text = ", ".join(notes)
    log.info("request %s: %s did not honour: %s", request_id, deployment.provider, text)
    return {"x-router-dropped-params": text[:1000].encode("ascii", "replace").decode()}


def _headers(route: Route, step: Step, deployment: Deployment, dispatcher: Dispatcher) -> dict[str, str]:
    headers = {
        "x-router-tier": step.tier or "none",
        "x-router-model": deployment.name,
        "x-router-reason": _ascii(route.reason, 200),
    }
    if dispatcher.trail:
        headers["x-router-fallbacks"] = _ascii("; ".join(dispatcher.trail), 1000)
    return headers


def _ascii(text: str, limit: int) -> str:
    return text[:limit].encode("ascii", "replace").decode()


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than this proxy accepts ({limit} bytes).")


async def _body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over `limit` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientClosed
        chunk = cast(bytes, message.get("body", b""))
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@asgi("/v1/chat/completions", copy_scope=False)
async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    """POST only. A bare ASGI handler: Litestar's request and response layers cost ~0.1 ms a request
    here (bench/README.md); errors raised before the answer starts still go through the app's
    exception handlers, so they keep OpenAI's shape."""
    if scope.get("method") != "POST":
        raise MethodNotAllowedException(headers={"Allow": "POST"})
    services: Services = ASGIConnection(scope).app.state.services
    services.busy += 1
    try:
        answer = await _chat(services, scope, receive)
    finally:
        services.busy -= 1
    await answer(scope, receive, send)


async def _chat(services: Services, scope: Scope, receive: Receive) -> ASGIApp:
    call = Call(services)
    record = call.record
    departure: Departure | None = None
    opened: Opened | None = None  # a stream with its first content: the departure passes to its response
    try:
        raw, view = decode(await _body(scope, receive, services.config.server.max_body_bytes))
        call.messages = raw.get("messages")
        record.requested_model = view.model
        record.stream = bool(view.stream)
        route = await _route(services, view)
        record.tier, record.score = route.tier, route.score
        dispatcher = Dispatcher(services, call, route, raw)
        departure = Departure(receive)  # the body is read: from here on, receive only says "gone"
        try:
            if view.stream:
                opened = await departure.guard(
                    dispatcher.open_stream(wants_usage=view.wants_usage, on_content=call.first_content, text=call.text)
                )
            else:
                step, deployment, reply = await departure.guard(dispatcher.complete())
        finally:
            if dispatcher.final is not None:
                record.model, record.provider = dispatcher.final.name, dispatcher.final.provider
        if opened is None:
            record.tier = step.tier
            if reply.usage is None and reply.content:
                call.text.append(reply.content)
            call.finish(reply.usage)
            headers = _headers(route, step, deployment, dispatcher)
            headers.update(_dropped(record.id, deployment, reply.notes))
            return Answer(200, reply.body, headers)
    except RouterError as exc:
        call.fail(exc)
        call.finish()
        raise
    except ClientClosed:
        record.status, record.http_status = "client_closed", 499
        call.finish()
        return Answer(499, b"", {})
    except Exception:
        log.exception("request %s failed", record.id)
        error = RouterError("The proxy failed on this request.", code="internal_error")
        call.fail(error)
        call.finish()
        raise error from None
    finally:
        if departure is not None and opened is None:
            departure.stop()
    assert departure is not None and opened is not None
    record.tier = opened.step.tier
    headers = _headers(route, opened.step, opened.deployment, dispatcher)
    headers.update(_dropped(record.id, opened.deployment, opened.notes))

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            if opened.head:
                yield b"".join(opened.head)  # the role chunk and the first content: one write
            async for piece in opened.rest:
                yield piece
        except RouterError as exc:
            call.fail(exc)
            yield b"data: " + exc.json() + b"\n\n"
        except Exception:
            log.exception("stream %s failed", record.id)
            error = RouterError("The proxy failed while streaming; the answer is incomplete.", code="internal_error")
            call.fail(error)
            yield b"data: " + error.json() + b"\n\n"

    async def finish(gone: bool) -> None:
        # Runs once, however the stream ended, even if it never started: the upstream is closed
        # and the row written.
        if gone:
            record.status, record.http_status = "client_closed", 499
        with anyio.CancelScope(shield=True):
            await opened.rest.aclose()
            await opened.stream.aclose()
        call.finish(opened.state.usage)

    return SSEResponse(departure, headers, body(), finish)


def _model_card(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any]) -> Response[bytes]:
    config = _services(request).config
    cards = [_model_card(name, "smart-model-router") for name in (AUTO, *TIERS)]
    cards += [_model_card(name, model.provider) for name, model in config.models.items()]
    return Response(msgspec.json.encode({"object": "list", "data": cards}), media_type=JSON)


@get("/v1/models/{model_id:str}")
async def get_model(request: Request[Any, Any, Any], model_id: Annotated[str, Parameter()]) -> Response[bytes]:
    config = _services(request).config
    if model_id in (AUTO, *TIERS):
        return Response(msgspec.json.encode(_model_card(model_id, "smart-model-router")), media_type=JSON)
    router.route(model_id, config)  # raises ModelNotFound in OpenAI's shape
    return Response(msgspec.json.encode(_model_card(model_id, config.models[model_id].provider)), media_type=JSON)


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
