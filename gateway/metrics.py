"""The gateway's Prometheus metrics and its `GET /metrics` route (public, like /health: no key)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class GatewayMetrics:
    """One registry per app, so several gateways in one process (tests) keep their numbers apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "aitbc_gateway_http_request_duration_seconds",
            "HTTP requests and WebSocket sessions served, by method, route template and status"
            " (streams: their lifetime; status 0: no response started); _count counts requests",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "aitbc_gateway_http_requests_in_flight",
            "Requests and WebSocket sessions being served now, open streams included",
            registry=self.registry,
        )

    def route(self) -> Route:
        async def metrics(request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return Route("/metrics", metrics, methods=["GET"])
