"""grpc.health.v1 with one more kind of service name: `aitbc.miners/N`, SERVING while at least N miners are
online (connected and not draining), NOT_SERVING otherwise.

Health checks need no API key, so the gateway's `/readyz`, Kubernetes gRPC probes and `grpc_health_probe
-service aitbc.miners/1` can all ask whether the coordinator can run jobs now, without a proto change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

MINERS_SERVICE_PREFIX = "aitbc.miners/"
# Beyond this, a "minimum" is a typo rather than a fleet; the name is NOT_FOUND like any unknown service.
MAX_MINIMUM = 1_000_000


def miners_service(minimum: int) -> str:
    """The health service name that is SERVING while at least `minimum` miners are online."""
    return f"{MINERS_SERVICE_PREFIX}{minimum}"


class ReadinessHealth(HealthServicer):  # type: ignore[misc]  # grpc_health ships no type hints
    def __init__(self, miners_online: Callable[[], int]) -> None:
        super().__init__()
        self._miners_online = miners_online

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        minimum = _minimum(request.service)
        if minimum is None:
            response: health_pb2.HealthCheckResponse = await super().Check(request, context)
            return response
        serving = self._miners_online() >= minimum
        return health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )


def _minimum(service: str) -> int | None:
    if not service.startswith(MINERS_SERVICE_PREFIX):
        return None
    digits = service.removeprefix(MINERS_SERVICE_PREFIX)
    if not (digits.isascii() and digits.isdigit()) or int(digits) > MAX_MINIMUM:
        return None
    return int(digits)
