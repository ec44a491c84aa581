"""Raw bytes to every gRPC method: each answer is a clear client error, never UNKNOWN or INTERNAL."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitbc.services.server import SERVICE_NAMES
from aitbc.v1 import jobs_pb2, miner_pb2, models_pb2, network_pb2
from tests.conftest import Keys
from tests.support.rpc import error_info, key

# Codes that mean the server did not understand its own failure.
SERVER_FAULTS = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
KNOWN_BAD = [
    b"\xff\xff\xff\xff",  # a tag with no end
    b"\x0a\xff\xff\xff\xff\x0f",  # a string field claiming 4 GB
    b"\x08",  # a varint field cut short
    b"\x0b",  # a start-group marker proto3 has no use for
    b"\x0a\x02\xc3\x28",  # a string field holding invalid UTF-8
]


def methods() -> list[tuple[str, bool, bool]]:
    """(path, request streaming, response streaming) of every method the coordinator serves."""
    found = []
    for module in (jobs_pb2, miner_pb2, models_pb2, network_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.full_name in SERVICE_NAMES
            for method in service.methods:
                found.append((f"/{service.full_name}/{method.name}", method.client_streaming, method.server_streaming))
    return found


def fuzzed_bodies() -> list[bytes]:
    bodies: list[bytes] = []

    @settings(max_examples=40, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(min_size=1, max_size=48))
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()
    return KNOWN_BAD + bodies


async def call(channel: grpc.aio.Channel, path: str, streams: tuple[bool, bool], body: bytes, api_key: str) -> None:
    metadata = key(api_key)
    request: Any = body  # sent as it is: no serializer
    match streams:
        case (False, False):
            await channel.unary_unary(path)(request, metadata=metadata, timeout=5)
        case (False, True):
            async for _ in channel.unary_stream(path)(request, metadata=metadata, timeout=5):
                pass
        case _:
            requests: Any = iter([body])
            async for _ in channel.stream_stream(path)(requests, metadata=metadata, timeout=5):
                pass


async def test_undecodable_requests_are_invalid_arguments(target: str, keys: Keys) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(channel, "/aitbc.v1.JobService/GetJob", (False, False), KNOWN_BAD[0], keys.client)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "INVALID_ARGUMENT"
    assert "GetJob" in (caught.value.details() or "")


async def test_raw_bytes_to_every_method_get_client_errors(target: str, keys: Keys) -> None:
    bodies = fuzzed_bodies()
    seen: dict[grpc.StatusCode, int] = {}
    faults: list[str] = []
    async with grpc.aio.insecure_channel(target) as channel:
        for path, *streams in methods():
            api_key = keys.miner if "MinerService" in path else keys.client
            for body in bodies:
                code = grpc.StatusCode.OK
                try:
                    await call(channel, path, (streams[0], streams[1]), body, api_key)
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    if code in SERVER_FAULTS:
                        faults.append(f"{path} {body!r}: {code} {error.details()}")
                seen[code] = seen.get(code, 0) + 1
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert faults == []
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert seen.get(grpc.StatusCode.INVALID_ARGUMENT, 0) > 0
