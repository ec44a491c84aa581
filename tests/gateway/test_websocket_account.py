"""The account's updates on `/v1/jobs/ws`: seed 001's example, a silent socket, and SSE on `/v1/jobs:watch`."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websocket
from websockets.asyncio.client import ClientConnection, connect

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator
from tests.conftest import STARTING_CREDITS, Keys
from tests.gateway.conftest import assigned, run_to_completion
from tests.gateway.test_rest import submit
from tests.gateway.test_streaming import SSE, sse_events
from tests.support.scripted_miner import ScriptedMiner

RECEIVE_TIMEOUT = 10.0
TOKENS = 40


@dataclass
class Account:
    """Two client keys of one account (`aitbc keys create --owner acme`): one submits, the other watches."""

    submitter: str
    watcher: str


@pytest.fixture
async def account(coordinator: RunningCoordinator) -> Account:
    now = datetime.now(UTC)
    submitter, _ = await create_api_key(coordinator.store, Role.CLIENT, now, owner_id="acme")
    watcher, _ = await create_api_key(coordinator.store, Role.CLIENT, now, owner_id="acme")
    # The jobs run on a priced model: the account pays for them.
    await coordinator.store.credit("acme", STARTING_CREDITS, tx_id="mint:test:acme", now=now)
    return Account(submitter, watcher)


@pytest.fixture
async def submitter(gateway: str, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of the account: plain REST with the other key."""
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": account.submitter}) as client:
        yield client


def describe(frame: dict[str, Any]) -> str:
    """An update frame as `state` or `progress`; anything else as its type."""
    if frame["type"] != "update":
        return str(frame["type"])
    if "progress" in frame:
        return "progress"
    return str(frame["event"]["state_change"]["status"])


async def updates_until_final(frames: AsyncIterator[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    """The update frames about `job_id` up to its completion; any other frame fails the test."""
    seen: list[dict[str, Any]] = []
    async for frame in frames:
        assert (frame["type"], frame["job_id"]) == ("update", job_id), frame
        seen.append(frame)
        if describe(frame) == "completed":
            return seen
    raise AssertionError(f"the updates ended before the job completed: {seen}")


def check_the_job_run(updates: list[dict[str, Any]]) -> None:
    """pending → assigned → running, progress coalesced (fewer frames than tokens), completed last."""
    described = [describe(frame) for frame in updates]
    states = [name for name in described if name != "progress"]
    assert states == ["pending", "assigned", "running", "completed"]
    progress = [frame["progress"] for frame in updates if "progress" in frame]
    assert 1 <= len(progress) < TOKENS, described
    assert described.index("progress") > described.index("running")
    assert [update["seq"] for update in progress] == sorted(update["seq"] for update in progress)
    completed = updates[-1]["event"]
    assert progress[-1]["seq"] < completed["seq"]
    assert completed["state_change"]["usage"]["completion_tokens"] == TOKENS


async def run_job(submitter: httpx.AsyncClient, miner: ScriptedMiner) -> str:
    job_id = str((await submit(submitter))["job_id"])
    await assigned(miner)
    await run_to_completion(miner, job_id, *["x"] * TOKENS)
    return job_id


async def test_seed_example_with_the_key_prints_the_updates_of_a_job_another_client_submits(
    gateway: str,
    account: Account,
    submitter: httpx.AsyncClient,
    miner: ScriptedMiner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    received: queue.Queue[str] = queue.Queue()

    # Seed 001's example, with only the key added.
    def on_message(ws: websocket.WebSocketApp, message: str) -> None:
        print(message)
        received.put(message)

    ws = websocket.WebSocketApp(
        f"ws://{gateway}/v1/jobs/ws", header={"X-Api-Key": account.watcher}, on_message=on_message
    )
    running = asyncio.create_task(asyncio.to_thread(ws.run_forever))

    async def frames() -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await asyncio.to_thread(received.get, timeout=RECEIVE_TIMEOUT)
            frame: dict[str, Any] = json.loads(message)
            yield frame

    try:
        stream = frames()
        assert await anext(stream) == {"type": "authenticated"}
        job_id = await run_job(submitter, miner)
        updates = await updates_until_final(stream, job_id)
    finally:
        # Only the close frame is sent from here: run_forever's thread reads the gateway's reply and returns.
        # (ws.close() would wait up to 3 s for a reply that the other thread consumes.)
        if ws.sock is not None:
            ws.sock.send_close()
        await asyncio.wait_for(running, RECEIVE_TIMEOUT)
    check_the_job_run(updates)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == [{"type": "authenticated"}, *updates]


async def receive(connection: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(connection.recv(), RECEIVE_TIMEOUT))
    return frame


async def frames_of(connection: ClientConnection) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await receive(connection)


@pytest.mark.parametrize("auth", ["x-api-key", "bearer", "first frame"])
async def test_a_silent_socket_hears_every_job_of_its_account_and_no_other(
    gateway: str,
    http: httpx.AsyncClient,
    account: Account,
    submitter: httpx.AsyncClient,
    miner: ScriptedMiner,
    auth: str,
) -> None:
    headers = {
        "x-api-key": {"X-Api-Key": account.watcher},
        "bearer": {"Authorization": f"Bearer {account.watcher}"},
        "first frame": None,
    }[auth]
    async with connect(f"ws://{gateway}/v1/jobs/ws", additional_headers=headers, proxy=None) as connection:
        if headers is None:
            await connection.send(json.dumps({"type": "auth", "api_key": account.watcher}))
        assert await receive(connection) == {"type": "authenticated"}
        # Another account's job comes first (for a model no miner serves, so that it stays pending);
        # the socket's first update is about the account's own.
        await submit(http, prompt="not acme's", model="tiny")
        job_id = await run_job(submitter, miner)
        check_the_job_run(await updates_until_final(frames_of(connection), job_id))


async def test_subscriptions_still_carry_the_tokens_beside_the_updates(
    gateway: str, account: Account, submitter: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    async with connect(
        f"ws://{gateway}/v1/jobs/ws", additional_headers={"X-Api-Key": account.watcher}, proxy=None
    ) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        job_id = str((await submit(submitter))["job_id"])
        await connection.send(json.dumps({"type": "subscribe", "job_id": job_id}))
        await assigned(miner)
        await run_to_completion(miner, job_id, "Hi", "!")
        events: list[str] = []
        updates: list[str] = []
        while "completed" not in events or "completed" not in updates:
            frame = await receive(connection)
            if frame["type"] == "event":
                event = frame["event"]
                events.append(f"tokens:{event['tokens']['text']}" if "tokens" in event else describe_event(event))
            elif frame["type"] == "update":
                updates.append(describe(frame))
            else:
                assert frame == {"type": "subscribed", "job_id": job_id}
    assert events == ["pending", "assigned", "running", "tokens:Hi", "tokens:!", "completed"]
    # The updates began before the subscription (pending); tokens reach them only as progress.
    assert [name for name in updates if name != "progress"] == ["pending", "assigned", "running", "completed"]


def describe_event(event: dict[str, Any]) -> str:
    return str(event["state_change"]["status"])


async def test_the_account_watch_over_sse(
    gateway: str, account: Account, submitter: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": account.watcher}) as watcher,
        watcher.stream("GET", "/api/v1/jobs:watch", headers=SSE, timeout=RECEIVE_TIMEOUT) as response,
    ):
        assert response.status_code == 200
        events = sse_events(response)
        first = await anext(events)
        # No `seq` at the top level, so no SSE id: the account's watch has nothing to resume.
        assert (first.id, first.data["job_id"], "started" in first.data) == (None, "", True)
        job_id = await run_job(submitter, miner)

        async def frames() -> AsyncIterator[dict[str, Any]]:
            async for event in events:
                yield {"type": "update", **event.data}

        check_the_job_run(await updates_until_final(frames(), job_id))


async def test_a_miner_key_is_refused_on_the_account_socket(gateway: str, keys: Keys) -> None:
    async with connect(
        f"ws://{gateway}/v1/jobs/ws", additional_headers={"X-Api-Key": keys.miner}, proxy=None
    ) as connection:
        error = await receive(connection)
        assert (error["type"], error["error_code"]) == ("error", "PERMISSION_DENIED")
        await asyncio.wait_for(connection.wait_closed(), RECEIVE_TIMEOUT)
    assert connection.close_code == 4403
