"""A coordinator never shares a port: a second one on a taken address fails at start and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitbc.services.server import ListenError, RunningCoordinator, start_coordinator

from .conftest import Aitbc, free_port


def in_use(address: str) -> str:
    return f"{address} is already in use; stop the other coordinator or pass --listen"


async def test_a_second_coordinator_on_a_taken_port_fails(coordinator: RunningCoordinator, tmp_path: Path) -> None:
    address = f"127.0.0.1:{coordinator.port}"
    with pytest.raises(ListenError) as refused:
        await start_coordinator(tmp_path / "other.db", address)
    assert str(refused.value) == in_use(address)


async def test_aitbc_coordinator_on_a_taken_port_exits_with_the_reason(
    aitbc: Aitbc, coordinator: RunningCoordinator, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{coordinator.port}"
    assert await aitbc("coordinator", "--listen", address) == 1
    assert capsys.readouterr().err.endswith(f"aitbc coordinator: error: {in_use(address)}\n")


async def test_aitbc_up_on_a_taken_port_exits_with_the_reason(
    aitbc: Aitbc, coordinator: RunningCoordinator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{coordinator.port}"
    http = f"127.0.0.1:{free_port()}"
    up = ("up", "--backend", "synthetic", "--listen", address, "--http", http, "--home", str(tmp_path / "up"))
    assert await aitbc(*up) == 1
    assert capsys.readouterr().err.endswith(f"aitbc up: error: {in_use(address)}\n")
