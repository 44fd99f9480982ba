"""HTTP handlers. They orchestrate and nothing more: classify → route → adapter → upstream."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import Parameter
from litestar.response import Stream

from adapters import ADAPTERS
from proxy import relay, router
from proxy.classify import Classifier, extract_prompt
from proxy.config import AUTO, TIERS, Config
from proxy.errors import PayloadTooLarge, RouterError
from proxy.records import Ledger, RequestRecord, cost
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

    @property
    def upstream(self) -> Upstream:
        if self._upstream is None:
            raise RuntimeError("the upstream client is built in the app's lifespan; it has not started")
        return self._upstream

    def attach(self, upstream: Upstream | None) -> None:
        self._upstream = upstream


class Call:
    """One request on its way; becomes its ledger row exactly once."""

    __slots__ = ("record", "services", "started")

    def __init__(self, services: Services) -> None:
        self.services = services
        self.started = time.perf_counter()
        self.record = RequestRecord(id=f"chatcmpl-smr-{uuid.uuid4().hex}", created_at=datetime.now(UTC))

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def first_content(self) -> None:
        self.record.ttft_ms = round(self.elapsed_ms(), 3)

    def fail(self, exc: RouterError) -> None:
        self.record.status = "error"
        self.record.http_status = exc.status
        self.record.error = f"{exc.code or exc.type}: {exc.message}"[:1000]

    def finish(self, usage: Any = None) -> None:
        record = self.record
        record.latency_ms = round(self.elapsed_ms(), 3)
        config = self.services.config
        if usage is not None and record.model is not None:
            record.prompt_tokens = usage.prompt_tokens
            record.completion_tokens = usage.completion_tokens
            record.cached_tokens = usage.cached_tokens
            record.cost_usd = cost(config.models[record.model], usage)
            record.baseline_cost_usd = cost(config.models[config.baseline], usage)
        self.services.ledger.record(record)


def _services(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


async def _route(services: Services, view: ChatRequest) -> Route:
    if not router.needs_score(view.model):
        return router.route(view.model, services.config)
    prompt = extract_prompt(view.messages)
    classifier = services.classifier
    if classifier.inline:
        scored = classifier.score(prompt)
    else:
        scored = await anyio.to_thread.run_sync(classifier.score, prompt)
    return router.route(view.model, services.config, scored)


def _headers(route: Route, deployment: Deployment) -> dict[str, str]:
    return {
        "x-router-tier": route.tier or "none",
        "x-router-model": deployment.name,
        "x-router-reason": route.reason[:200].encode("ascii", "replace").decode(),
    }


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    services = _services(request)
    call = Call(services)
    record = call.record
    try:
        try:
            body = await request.body()
        except RequestEntityTooLarge:
            raise PayloadTooLarge(
                f"The request body is larger than this proxy accepts ({services.config.server.max_body_bytes} bytes)."
            ) from None
        raw, view = decode(body)
        record.requested_model = view.model
        record.stream = bool(view.stream)
        route = await _route(services, view)
        record.tier, record.score = route.tier, route.score
        deployment = services.deployments[route.models[0]]
        record.model, record.provider = deployment.name, deployment.provider
        adapter = ADAPTERS[deployment.adapter]
        headers = _headers(route, deployment)
        if view.stream:
            stream = await relay.open_stream(services.upstream, adapter, deployment, raw)
        else:
            reply = await relay.complete(services.upstream, adapter, deployment, raw)
            call.finish(reply.usage)
            return Response(reply.body, media_type=JSON, headers=headers)
    except RouterError as exc:
        call.fail(exc)
        call.finish()
        raise
    except Exception:
        log.exception("request %s failed", record.id)
        error = RouterError("The proxy failed on this request.", code="internal_error")
        call.fail(error)
        call.finish()
        raise error from None
    state = adapter.new_stream()

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            async for piece in relay.relay(
                stream, adapter, state, deployment, wants_usage=view.wants_usage, on_content=call.first_content
            ):
                yield piece
        except RouterError as exc:
            call.fail(exc)
            yield b"data: " + exc.json() + b"\n\n"
        except Exception:
            log.exception("stream %s failed", record.id)
            error = RouterError("The proxy failed while streaming; the answer is incomplete.", code="internal_error")
            call.fail(error)
            yield b"data: " + error.json() + b"\n\n"
        except BaseException:  # cancelled or closed: the client went away
            record.status, record.http_status = "client_closed", 499
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            call.finish(state.usage)

    iterator = body()
    return Stream(
        iterator,
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
        # runs even when the client left while we waited to send: closes the upstream at once
        background=BackgroundTask(iterator.aclose),
    )


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
