"""Fixtures: an isolated AITBC environment and the fake coordinator, in the test's loop or on a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aitbc import config

from .fake_coordinator import BackgroundServer, FakeJobService, start_server


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's key, coordinator or `~/.aitbc` leaks into a test."""
    monkeypatch.setenv(config.ENV_HOME, str(tmp_path))
    monkeypatch.delenv(config.ENV_API_KEY, raising=False)
    monkeypatch.delenv(config.ENV_COORDINATOR, raising=False)


@pytest.fixture
def fake() -> FakeJobService:
    return FakeJobService()


@pytest.fixture
async def aio_address(fake: FakeJobService) -> AsyncIterator[str]:
    """The fake served in the test's own event loop, for `AsyncClient` tests."""
    server, address = await start_server(fake)
    yield address
    await server.stop(None)


@pytest.fixture
def thread_address(fake: FakeJobService) -> Iterator[str]:
    """The fake served from a background thread, for the blocking `Client` and the CLI."""
    server = BackgroundServer(fake)
    yield server.address
    server.stop()
