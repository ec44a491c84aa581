"""Fixtures: an isolated AITBC environment, and the fake coordinator in the test's loop or on a thread,
reached over either transport.

`aio_target` and `thread_target` are parametrised: the fake's gRPC address, and the base URL
(`http://HOST:PORT/api`, the seed's form) of the real gateway in front of it. Tests of the SDK take
those, so that every one of them runs over both transports and the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aitbc import config
from tests.gateway.conftest import running_gateway

from .fake_coordinator import BackgroundServer, FakeJobService, start_server

TRANSPORTS = ["grpc", "http"]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's key, coordinator or `~/.aitbc` leaks into a test."""
    monkeypatch.setenv(config.ENV_HOME, str(tmp_path))
    monkeypatch.delenv(config.ENV_API_KEY, raising=False)
    monkeypatch.delenv(config.ENV_COORDINATOR, raising=False)


@pytest.fixture
def fake() -> FakeJobService:
    return FakeJobService()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Which wire an SDK test runs over: "grpc" or "http"."""
    param: str = request.param
    return param


@pytest.fixture
async def aio_address(fake: FakeJobService) -> AsyncIterator[str]:
    """The fake served in the test's own event loop, for `AsyncClient` tests."""
    server, address = await start_server(fake)
    yield address
    await server.stop(None)


@pytest.fixture
async def aio_target(aio_address: str, transport: str) -> AsyncIterator[str]:
    """The fake in the test's loop, as an `AsyncClient` target over `transport`."""
    if transport == "grpc":
        yield aio_address
        return
    async with running_gateway(aio_address) as gateway:
        yield f"http://{gateway}/api"


@pytest.fixture
def background_server(fake: FakeJobService) -> Iterator[BackgroundServer]:
    server = BackgroundServer(fake)
    yield server
    server.stop()


@pytest.fixture
def thread_address(background_server: BackgroundServer) -> str:
    """The fake served from a background thread, for the blocking `Client` and the CLI."""
    return background_server.address


@pytest.fixture
def thread_target(background_server: BackgroundServer, transport: str) -> Iterator[str]:
    """The fake on a background thread, as a `Client` target over `transport` (the gateway, if any, is
    served from the same thread's loop)."""
    if transport == "grpc":
        yield background_server.address
        return
    gateway = running_gateway(background_server.address)
    address = background_server.run(gateway.__aenter__())
    try:
        yield f"http://{address}/api"
    finally:
        background_server.run(gateway.__aexit__(None, None, None))
