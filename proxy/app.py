"""The app factory: configuration in, a Litestar app out. Resources live in its lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import httpx
from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from adapters import ADAPTERS
from adapters.base import Target
from proxy.classify import Classifier, registry
from proxy.config import Config
from proxy.errors import ConfigError, InvalidRequest, PayloadTooLarge, RouteNotFound, RouterError
from proxy.handlers import Services, chat_completions, get_model, health, list_models
from proxy.ledger import QueuedLedger, open_ledger
from proxy.records import Ledger
from proxy.relay import Deployment
from proxy.stats import stats
from proxy.upstream import Upstream

log = logging.getLogger("smr")


def deployments(config: Config, env: Mapping[str, str]) -> dict[str, Deployment]:
    """Every configured model resolved to its adapter, endpoint and key."""
    out: dict[str, Deployment] = {}
    for name, model in config.models.items():
        provider = config.providers[model.provider]
        if provider.adapter not in ADAPTERS:
            raise ConfigError(
                f"providers.{model.provider}.adapter: unknown adapter {provider.adapter!r}; "
                f"known: {', '.join(sorted(ADAPTERS))}"
            )
        key = env.get(provider.api_key_env) if provider.api_key_env else None
        out[name] = Deployment(
            name=name,
            provider=model.provider,
            adapter=provider.adapter,
            target=Target(
                model=model.upstream or name,
                base_url=provider.base_url,
                api_key=key or None,
                headers=tuple(provider.headers.items()),
            ),
            timeout=model.timeout,
            missing_key=provider.api_key_env if provider.api_key_env and not key else None,
        )
    return out


def _render(_: Request[Any, Any, Any], exc: RouterError) -> Response[bytes]:
    return Response(exc.json(), status_code=exc.status, media_type=MediaType.JSON, headers=exc.headers)


def _render_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    error: RouterError
    if exc.status_code == 413:
        error = PayloadTooLarge("The request body is larger than this proxy accepts (server.max_body_bytes).")
    elif exc.status_code == 404:
        error = RouteNotFound(f"No route for {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        error = RouteNotFound(f"{request.method} is not allowed on {request.url.path}.", code="method_not_allowed")
        error.status = 405
    else:
        error = InvalidRequest(str(exc.detail), status=exc.status_code)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
    error.headers.update(headers)
    return _render(request, error)


def _render_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _render(request, RouterError("The proxy failed on this request.", code="internal_error"))


def create_app(
    config: Config,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    classifier: Classifier | None = None,
    ledger: Ledger | None = None,
) -> Litestar:
    """Build the proxy. Tests inject a transport, classifier or ledger; defaults are the real ones.

    The default ledger is the database's ($DATABASE_URL, else the SQLite file): see `proxy.ledger`.
    """
    env = os.environ if env is None else env
    if ledger is None:
        ledger = open_ledger(config.ledger, env)
    database = ledger if isinstance(ledger, QueuedLedger) else None
    services = Services(
        config=config,
        deployments=deployments(config, env),
        classifier=classifier or registry.build(config.router),
        ledger=ledger,
    )
    for provider, key_env in sorted({(d.provider, d.missing_key) for d in services.deployments.values()}):
        if key_env:
            log.warning("provider %s: %s is not set; requests routed to it will fail", provider, key_env)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        upstream = Upstream(transport=transport or config.server.upstream_transport)
        services.attach(upstream)
        services.classifier = await anyio.to_thread.run_sync(registry.warmed, services.classifier)
        if database is not None:
            await database.start()
        try:
            yield
        finally:
            services.attach(None)
            await upstream.aclose()
            if services.pending:  # rows waiting for a token estimate
                await asyncio.wait(set(services.pending), timeout=10)
            if database is not None:
                await database.aclose()

    return Litestar(
        route_handlers=[chat_completions, list_models, get_model, health, stats],
        lifespan=[lifespan],
        state=State({"services": services, "stats": database}),
        exception_handlers={
            RouterError: _render,
            HTTPException: _render_http,
            Exception: _render_unexpected,
        },
        request_max_body_size=config.server.max_body_bytes,
        openapi_config=None,
        logging_config=None,  # logging is the CLI's business; Litestar's default logs every httpx call
        debug=False,
    )
