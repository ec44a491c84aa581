"""`aitbc keys list` and `aitbc keys revoke`: a revoked key stops working at once, open streams included."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from aitbc.cli import main
from aitbc.client import AitbcApiError, AsyncClient, StatusCode
from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role, hash_key, key_id
from aitbc.services.server import RunningCoordinator
from aitbc.store.sqlite import SqliteStore
from tests.conftest import Keys
from tests.support.scripted_miner import ScriptedMiner

from .conftest import Aitbc


def id_of(raw_key: str) -> str:
    return key_id(hash_key(raw_key))


async def second_key(coordinator: RunningCoordinator, raw_key: str) -> str:
    """Another client key of the same account as `raw_key`."""
    owner = (await coordinator.store.principal_for(hash_key(raw_key))).owner_id  # type: ignore[union-attr]
    raw, _ = await create_api_key(coordinator.store, Role.CLIENT, datetime.now(UTC), owner)
    return raw


async def test_list_shows_the_accounts_keys_with_created_and_last_used(
    aitbc: Aitbc, coordinator: RunningCoordinator, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    spare = await second_key(coordinator, keys.client)
    assert await aitbc("keys", "list") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "KEY",
        "ID",
        "ROLE",
        "ACCOUNT",
        "CREATED",
        "(UTC)",
        "LAST",
        "USED",
        "(UTC)",
        "REVOKED",
        "(UTC)",
    ]
    listed = {row.split()[0]: row.split() for row in rows}
    assert set(listed) == {id_of(keys.client), id_of(spare)}  # no other account's keys
    used, unused = listed[id_of(keys.client)], listed[id_of(spare)]
    assert used[1] == "client"
    assert used[5] != "-"  # this very command used it
    assert unused[5:] == ["-", "-"]  # never used, not revoked


async def test_an_admin_lists_every_key(aitbc: Aitbc, keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    assert await aitbc("keys", "list", "--json", "--api-key", keys.admin) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {key["key_id"] for key in listed} == {
        id_of(raw) for raw in (keys.client, keys.other_client, keys.miner, keys.admin)
    }
    assert {key["role"] for key in listed} == {"client", "miner", "admin"}


async def test_revoke_ends_the_keys_calls_and_open_streams_at_once(
    aitbc: Aitbc, coordinator: RunningCoordinator, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    doomed = await second_key(coordinator, keys.client)
    async with AsyncClient(target, doomed) as client:
        job = await client.submit_job("waits", "tiny", queue_if_unavailable=True)
        watch = client.stream(job.job_id)
        assert (await anext(watch)).status == "pending"
        waiting = asyncio.ensure_future(anext(watch))
        assert await aitbc("keys", "revoke", id_of(doomed)) == 0
        printed = capsys.readouterr()
        assert printed.out.startswith(f"{id_of(doomed)} (client key of account ")
        assert " is revoked since " in printed.out
        with pytest.raises(AitbcApiError) as ended:
            await waiting
        assert (ended.value.code, ended.value.detail) == (StatusCode.UNAUTHENTICATED, "the API key was revoked")
        with pytest.raises(AitbcApiError) as refused:
            await client.get_job(job.job_id)
        assert refused.value.code == StatusCode.UNAUTHENTICATED
    # The account's other key still works, and sees the job.
    async with AsyncClient(target, keys.client) as client:
        assert (await client.get_job(job.job_id)).status == "pending"


async def test_revoking_a_miner_key_ends_its_stream_and_requeues_its_job(
    aitbc: Aitbc, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncClient(target, keys.client) as client, ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("rig-1", ["tiny"], vram_gib=0)
        job = await client.submit_job("runs", "tiny")
        await miner.expect("assign")
        await miner.started(job.job_id, 1)
        assert await aitbc("keys", "revoke", id_of(keys.miner), "--api-key", keys.admin) == 0
        assert await miner.status() == grpc.StatusCode.UNAUTHENTICATED
        states = []
        async for event in client.stream(job.job_id):
            states.append(event.status)
            if states[-2:] == ["running", "pending"]:
                break  # requeued: back in the queue for another miner
        assert states == ["pending", "assigned", "running", "pending"]
    capsys.readouterr()


async def test_another_accounts_key_cannot_be_revoked(
    aitbc: Aitbc, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    other = id_of(keys.other_client)
    assert await aitbc("keys", "revoke", other) == 1
    assert capsys.readouterr().err == f"error: KEY_NOT_FOUND: key {other!r} not found\n"
    async with AsyncClient(target, keys.other_client) as client:
        assert await client.list_api_keys()


async def test_revocation_is_final(
    aitbc: Aitbc, coordinator: RunningCoordinator, database: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    doomed = await second_key(coordinator, keys.client)
    assert await aitbc("keys", "revoke", id_of(doomed)) == 0
    first = capsys.readouterr().out
    assert await aitbc("keys", "revoke", id_of(doomed)) == 0
    assert capsys.readouterr().out == first  # the same revocation, at the same time
    # Stored: a coordinator started later on this store refuses the key too.
    store = await SqliteStore.open(database)
    try:
        assert await store.principal_for(hash_key(doomed)) is None
        [record] = [key for key in await store.api_keys(owner_id=None) if key.key_id == id_of(doomed)]
        assert record.revoked_at is not None
    finally:
        await store.close()


@pytest.mark.parametrize("owner", ["mint", "network-fee"])
def test_no_key_can_belong_to_the_networks_own_accounts(
    tmp_path: Path, owner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path)]
    assert main(["keys", "create", "--role", "client", "--owner", owner, *home]) == 2
    assert f"{owner!r} is a reserved account of the network" in capsys.readouterr().err
    assert main(["keys", "create", "--role", "client", "--owner", "alice", *home]) == 0
