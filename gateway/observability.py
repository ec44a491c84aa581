"""Request ids, trace context, access logs and HTTP metrics for every request the gateway serves.

An ASGI middleware around the whole app: it takes the caller's `X-Request-Id` (or makes one) and W3C
`traceparent`, sets them for the request's logs and for the gRPC calls made on its behalf (`gateway.rpc`
sends them as metadata), answers with the id in `X-Request-Id`, and records one access log line and one
metrics sample per request, labelled by route template rather than raw path (bounded label values).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Final

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitbc.logs import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    request_id_var,
    traceparent_var,
    valid_request_id,
    valid_traceparent,
)
from gateway.metrics import GatewayMetrics
from gateway.rest import matched_template

access_log = logging.getLogger("gateway.access")

UNMATCHED: Final = "unmatched"


def route_label(scope: Scope) -> str:
    """The template of the route that served the request ("/v1/jobs/{job_id}"), "/api" first where it came
    through the seed's mount; "unmatched" for a path no route knows."""
    template = matched_template(scope)
    route: BaseRoute | None = scope.get("route")
    if template is None and isinstance(route, Route | WebSocketRoute):
        template = route.path
    if template is None or isinstance(route, Mount):
        return UNMATCHED
    mounted = scope.get("root_path", "").endswith("/api")
    return f"/api{template}" if mounted else template


class Observability:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = valid_request_id(headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        request_id_var.set(request_id)
        traceparent_var.set(valid_traceparent(headers.get(TRACEPARENT_HEADER)) or "")
        status = 0
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        if self.metrics is not None:
            self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope)
            method = scope.get("method", "WEBSOCKET")
            # 0: the client left (or the app failed) before any response started.
            if self.metrics is not None:
                self.metrics.in_flight.dec()
                self.metrics.requests.labels(method, route, str(status)).observe(seconds)
            access_log.info(
                "%s %s %d %.1fms",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 1)},
            )
