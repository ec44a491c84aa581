"""Health routes, all public (no key):

* `GET /health`: 200 while the coordinator's grpc.health.v1 check says SERVING, else 503 (the seed's route);
* `GET /livez`: 200 while this process serves HTTP at all; it asks nothing of the coordinator, so a
  coordinator outage does not get every gateway restarted;
* `GET /readyz`: 200 when the coordinator answers SERVING and at least `min_miners` miners are online and
  taking jobs (`aitbc gateway --ready-min-miners`, 0 skips that check), else 503 with the reason.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.rpc import CoordinatorClient

DEFAULT_READY_MIN_MINERS = 1


def health_route(coordinator: CoordinatorClient) -> Route:
    async def health(request: Request) -> JSONResponse:
        serving, coordinator_status = await coordinator.serving()
        return JSONResponse(
            {"status": "ok" if serving else "unavailable", "gateway": "serving", "coordinator": coordinator_status},
            status_code=200 if serving else 503,
        )

    return Route("/health", health, methods=["GET"])


def probe_routes(coordinator: CoordinatorClient, min_miners: int = DEFAULT_READY_MIN_MINERS) -> list[Route]:
    async def livez(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        serving, coordinator_status = await coordinator.serving()
        if not serving:
            return _not_ready(f"the coordinator is not serving: {coordinator_status}", coordinator_status)
        if min_miners > 0:
            enough, _ = await coordinator.enough_miners(min_miners)
            if not enough:
                miners = "miner" if min_miners == 1 else "miners"
                return _not_ready(f"fewer than {min_miners} {miners} online and taking jobs", "serving")
        return JSONResponse({"status": "ready", "coordinator": coordinator_status, "min_miners": min_miners})

    return [Route("/livez", livez, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


def _not_ready(reason: str, coordinator_status: str) -> JSONResponse:
    return JSONResponse({"status": "not_ready", "reason": reason, "coordinator": coordinator_status}, status_code=503)
