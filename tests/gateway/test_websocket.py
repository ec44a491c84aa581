"""The WebSocket frame protocol over a real socket: many jobs, submit, cancel, auth, single-job sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Keys
from tests.gateway.conftest import MODEL, assigned, cancel_acknowledged, job_in_state, run_to_completion
from tests.gateway.test_rest import submit
from tests.gateway.test_streaming import ALL_EVENTS, completed_job, describe
from tests.support.scripted_miner import ScriptedMiner

RECEIVE_TIMEOUT = 10.0


@asynccontextmanager
async def socket(
    gateway: str, path: str = "/v1/jobs/ws", api_key: str | None = None
) -> AsyncIterator[ClientConnection]:
    headers = {"X-Api-Key": api_key} if api_key else None
    async with connect(f"ws://{gateway}{path}", additional_headers=headers, proxy=None) as connection:
        yield connection


async def receive(connection: ClientConnection) -> dict[str, Any]:
    """The next frame other than the account's `update`s, which interleave with the rest and have tests
    of their own (test_websocket_account.py)."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(connection.recv(), RECEIVE_TIMEOUT))
        if frame["type"] != "update":
            return frame


async def send(connection: ClientConnection, frame: dict[str, Any]) -> None:
    await connection.send(json.dumps(frame))


async def closed_with(connection: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the gateway to close the socket; its close code and reason."""
    await asyncio.wait_for(connection.wait_closed(), RECEIVE_TIMEOUT)
    return connection.close_code, connection.close_reason


async def test_one_socket_follows_three_jobs(
    gateway: str, http: httpx.AsyncClient, miner: ScriptedMiner, keys: Keys
) -> None:
    job_ids = [str((await submit(http, prompt=f"job {n}"))["job_id"]) for n in range(3)]
    async with socket(gateway, api_key=keys.client) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        for n, job_id in enumerate(job_ids):
            await send(connection, {"type": "subscribe", "job_id": job_id, "id": n})
        for _ in job_ids:
            await assigned(miner)
        for job_id in job_ids:
            await run_to_completion(miner, job_id, "a", "b", "c")
        events: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id in job_ids}
        subscribed = set()
        while not all(len(seen) == len(ALL_EVENTS) for seen in events.values()):
            frame = await receive(connection)
            if frame["type"] == "subscribed":
                assert frame["job_id"] not in subscribed
                assert not events[frame["job_id"]], "subscribed comes before the job's events"
                subscribed.add(frame["job_id"])
                assert frame["id"] == job_ids.index(frame["job_id"])
            else:
                assert frame["type"] == "event", frame
                events[frame["job_id"]].append(frame["event"])
    assert subscribed == set(job_ids)
    for seen in events.values():
        assert [describe(event) for event in seen] == ALL_EVENTS
        assert [event["seq"] for event in seen] == list(range(1, len(ALL_EVENTS) + 1))


async def test_submit_and_cancel_over_the_socket(gateway: str, miner: ScriptedMiner, keys: Keys) -> None:
    async with socket(gateway) as connection:
        await send(connection, {"type": "auth", "api_key": keys.client, "id": "a1"})
        assert await receive(connection) == {"type": "authenticated", "id": "a1"}

        await send(connection, {"type": "submit", "id": "s1", "job": {"prompt": "Hello, world!", "model": MODEL}})
        submitted = await receive(connection)
        # The miner is free, so the job is routed before the submit is answered.
        assert (submitted["type"], submitted["id"], submitted["job"]["status"]) == ("submitted", "s1", "assigned")
        job_id = submitted["job"]["job_id"]
        assert await receive(connection) == {"type": "subscribed", "job_id": job_id, "id": "s1"}
        await assigned(miner)
        await run_to_completion(miner, job_id, "Hi", "!")
        seen = [describe((await receive(connection))["event"]) for _ in range(6)]
        assert seen == ["pending", "assigned", "running", "tokens:Hi", "tokens:!", "completed"]

        job = {"prompt": "never mind", "model": MODEL}
        await send(connection, {"type": "submit", "id": "s2", "job": job, "subscribe": False})
        second = (await receive(connection))["job"]["job_id"]
        await assigned(miner)
        await send(connection, {"type": "cancel", "id": "c2", "job_id": second})
        await cancel_acknowledged(miner, second, completion_tokens=0)
        canceled = await receive(connection)
        assert (canceled["type"], canceled["id"], canceled["job"]["status"]) == ("canceled", "c2", "canceled")

        await send(connection, {"type": "cancel", "id": "c3", "job_id": second})
        conflict = await receive(connection)
        assert (conflict["type"], conflict["id"], conflict["error_code"]) == ("error", "c3", "JOB_NOT_CANCELABLE")


async def test_unsubscribe_stops_the_events(gateway: str, http: httpx.AsyncClient, target: str, keys: Keys) -> None:
    job_id = str((await submit(http))["job_id"])
    async with socket(gateway, api_key=keys.client) as connection:
        await receive(connection)
        await send(connection, {"type": "subscribe", "job_id": job_id})
        assert (await receive(connection))["type"] == "subscribed"
        assert describe((await receive(connection))["event"]) == "pending"
        await send(connection, {"type": "unsubscribe", "job_id": job_id, "id": 7})
        assert await receive(connection) == {"type": "unsubscribed", "job_id": job_id, "id": 7}
        async with ScriptedMiner(target, keys.miner) as miner:
            await miner.hello("m1", [MODEL])
            await assigned(miner)
            await job_in_state(http, job_id, "assigned")
        # Had the assigned event been sent, it would arrive before this reply.
        await send(connection, {"type": "unsubscribe", "job_id": job_id, "id": 8})
        assert await receive(connection) == {
            "type": "error",
            "id": 8,
            "detail": f"not subscribed to {job_id!r}",
            "error_code": "NOT_SUBSCRIBED",
            "field": "job_id",
        }


async def test_bad_frames_get_errors_and_the_socket_stays_open(gateway: str, keys: Keys) -> None:
    async with socket(gateway, api_key=keys.client) as connection:
        await receive(connection)
        await connection.send("{nope")
        assert (await receive(connection))["error_code"] == "INVALID_ARGUMENT"
        await send(connection, {"type": "dance", "id": 1})
        unknown = await receive(connection)
        assert (unknown["id"], unknown["field"]) == (1, "type")
        await send(connection, {"type": "subscribe", "job_id": "job_missing", "id": 2})
        missing = await receive(connection)
        assert (missing["type"], missing["id"], missing["job_id"], missing["error_code"]) == (
            "error",
            2,
            "job_missing",
            "JOB_NOT_FOUND",
        )
        await send(connection, {"type": "subscribe", "id": 3})
        assert (await receive(connection))["field"] == "job_id"
        await send(connection, {"type": "submit", "id": 4, "job": {"prompt": "x", "params": {"max_tokens": -1}}})
        assert (await receive(connection))["field"] == "params.max_tokens"


@pytest.mark.parametrize("in_header", [True, False])
async def test_a_refused_key_closes_with_4401(gateway: str, in_header: bool) -> None:
    async with socket(gateway, api_key="aitbc_wrong" if in_header else None) as connection:
        if not in_header:
            await send(connection, {"type": "auth", "api_key": "aitbc_wrong"})
        error = await receive(connection)
        assert (error["type"], error["error_code"]) == ("error", "UNAUTHENTICATED")
        assert await closed_with(connection) == (4401, "UNAUTHENTICATED")


async def test_no_auth_frame_closes_with_4401(gateway: str) -> None:
    async with socket(gateway) as connection:
        await send(connection, {"type": "subscribe", "job_id": "job_x"})
        code, reason = await closed_with(connection)
    assert code == 4401
    assert reason is not None
    assert "auth" in reason


async def test_single_job_socket_resumes_and_closes_when_the_job_is_done(
    gateway: str, http: httpx.AsyncClient, miner: ScriptedMiner, keys: Keys
) -> None:
    job_id = await completed_job(http, miner)
    async with socket(gateway, f"/v1/jobs/{job_id}/ws?from_seq=5", keys.client) as connection:
        assert await receive(connection) == {"type": "authenticated"}
        assert await receive(connection) == {"type": "subscribed", "job_id": job_id}
        frames = [await receive(connection) for _ in range(3)]
        assert [frame["event"]["seq"] for frame in frames] == [5, 6, 7]
        assert await closed_with(connection) == (1000, "job finished")


async def test_single_job_socket_for_an_unknown_job_closes_with_4404(gateway: str, keys: Keys) -> None:
    async with socket(gateway, "/api/v1/jobs/job_missing/ws", keys.client) as connection:
        await receive(connection)
        assert (await receive(connection))["error_code"] == "JOB_NOT_FOUND"
        assert (await closed_with(connection))[0] == 4404
