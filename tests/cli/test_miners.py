"""`aitbc miners`: LAST SEEN follows a miner's heartbeats, and keeps the last one once the miner is gone."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc.aio
import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.v1 import miner_pb2, miner_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import key

from .conftest import Aitbc


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def last_seen(aitbc: Aitbc, capsys: pytest.CaptureFixture[str]) -> tuple[bool, str]:
    assert await aitbc("miners", "--json") == 0
    [rig] = json.loads(capsys.readouterr().out)
    return rig["online"], rig["last_seen"]


async def test_last_seen_follows_heartbeats(
    aitbc: Aitbc, target: str, keys: Keys, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    lease = CoordinatorConfig().lease_timeout
    start = clock.now()
    async with grpc.aio.insecure_channel(target) as channel:
        miners = miner_pb2_grpc.MinerServiceStub(channel)
        registration = miner_pb2.RegisterMinerRequest(miner_id="rig-1", capabilities=["tiny"])
        await miners.RegisterMiner(registration, metadata=key(keys.miner))
        assert await last_seen(aitbc, capsys) == (True, "2026-01-01T00:00:00Z")
        for _ in range(3):
            await clock.advance(lease - 1)
            await miners.MinerHeartbeat(miner_pb2.MinerHeartbeatRequest(miner_id="rig-1"), metadata=key(keys.miner))
        heartbeat = start + 3 * timedelta(seconds=lease - 1)
        assert await last_seen(aitbc, capsys) == (True, heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ"))
        # Silent past its lease, the miner is gone; it was last seen at its last heartbeat, not since.
        await clock.advance(lease + 1)
        assert await last_seen(aitbc, capsys) == (False, heartbeat.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert await aitbc("miners") == 0
        row = capsys.readouterr().out.splitlines()[1].split()
        assert row[-2:] == heartbeat.strftime("%Y-%m-%d %H:%M:%S").split()
