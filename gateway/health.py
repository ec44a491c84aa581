"""`GET /health`: public, 200 while the coordinator's grpc.health.v1 check says SERVING, else 503."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.rpc import CoordinatorClient


def health_route(coordinator: CoordinatorClient) -> Route:
    async def health(request: Request) -> JSONResponse:
        serving, coordinator_status = await coordinator.serving()
        return JSONResponse(
            {"status": "ok" if serving else "unavailable", "gateway": "serving", "coordinator": coordinator_status},
            status_code=200 if serving else 503,
        )

    return Route("/health", health, methods=["GET"])
