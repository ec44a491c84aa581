"""The gateway's ASGI app: REST from the proto annotations, SSE/NDJSON, WebSocket, OpenAI, health, docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount

import aitbc.v1
from aitbc.api_descriptors import api_files
from aitbc.tls import ClientTls
from gateway.errors import GatewayError, render_gateway_error, render_http_exception
from gateway.health import DEFAULT_READY_MIN_MINERS, health_route, probe_routes
from gateway.jobs import JobClient
from gateway.limits import GatewayLimits, HangUpOnUnreadBodies
from gateway.metrics import GatewayMetrics
from gateway.observability import Observability
from gateway.openai_api import OpenAIRoutes
from gateway.openai_models import OpenAIModels
from gateway.openapi import openapi_routes
from gateway.options import GatewayOptions
from gateway.rest import AnnotatedRoutes
from gateway.routes import RouteTable
from gateway.rpc import CoordinatorClient
from gateway.seed_routing import SeedRouting
from gateway.webapp import webapp_routes
from gateway.websocket import websocket_routes

# The seed documents give https://HOST/api as the base URL.
API_PREFIX = "/api"


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """CORS for browser clients of the given origins; none without any.

    Keys travel in headers (X-Api-Key, Authorization), never in cookies, so no credentials are allowed.
    """
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["Retry-After", "X-Request-Id", "Content-Disposition"],
            max_age=600,
        )
    ]


def create_app(
    coordinator_target: str,
    limits: GatewayLimits | None = None,
    options: GatewayOptions | None = None,
    *,
    tls: ClientTls | None = None,
    ready_min_miners: int = DEFAULT_READY_MIN_MINERS,
    metrics: bool = True,
) -> Starlette:
    """The app for a coordinator at `coordinator_target` (HOST:PORT); its channel lives as long as the lifespan.

    `tls`: reach the coordinator over TLS. `ready_min_miners`: the miners online `/readyz` asks for (0: none).
    `metrics`: serve `/metrics`.
    """
    limits = limits or GatewayLimits()
    options = options or GatewayOptions()
    coordinator = CoordinatorClient(coordinator_target, tls)
    gateway_metrics = GatewayMetrics() if metrics else None
    jobs = JobClient(coordinator)
    table = RouteTable.from_files(api_files(aitbc.v1))
    # Hand-written routes come first; the annotated ones go last, so they
    # cannot shadow /health or the OpenAI paths with a broad template.
    routes: list[BaseRoute] = [
        health_route(coordinator),
        *probe_routes(coordinator, ready_min_miners),
        *([gateway_metrics.route()] if gateway_metrics is not None else []),
        *openapi_routes(table),
        *OpenAIRoutes(
            jobs, limits.max_body_bytes, keepalive_seconds=limits.keepalive_seconds, queue=options.openai_queue
        ).routes(),
        *OpenAIModels(jobs, queueable=options.openai_queue).routes(),
        *websocket_routes(jobs, limits),
        *SeedRouting(coordinator, limits.max_body_bytes, options.wei_per_credit).routes(),
        AnnotatedRoutes(table, coordinator, limits.max_body_bytes, limits.keepalive_seconds),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await coordinator.open()
        try:
            yield
        finally:
            await coordinator.close()

    api = Mount(API_PREFIX, routes=routes)
    # Starlette's mount pattern stops at a line break (a percent-encoded %0A in an id); /api must serve
    # whatever / serves, with the same error bodies.
    api.path_regex = re.compile(api.path_regex.pattern, re.DOTALL)
    return Starlette(
        # The web app's pages are exact paths, so they go before the annotated routes without shadowing any.
        routes=[api, *webapp_routes(), *routes],
        lifespan=lifespan,
        # A client may overshoot the limit by up to its own size and still read its 413.
        middleware=[
            # Outermost, so every response (a 413 included) carries its request id and is counted.
            Middleware(Observability, metrics=gateway_metrics),
            *cors_middleware(options.cors_origins),
            Middleware(HangUpOnUnreadBodies, drain_bytes=2 * limits.max_body_bytes),
        ],
        exception_handlers={HTTPException: render_http_exception, GatewayError: render_gateway_error},
    )
