"""Streams that end well: SSE's `retry:` hint and `event: end`, 204 past the end, keepalives while a job waits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect

from gateway.limits import GatewayLimits
from tests.conftest import Keys
from tests.gateway.conftest import running_gateway
from tests.gateway.test_rest import submit
from tests.gateway.test_streaming import SSE, completed_job
from tests.support.scripted_miner import ScriptedMiner

KEEPALIVE = 0.05


@pytest.fixture
async def quick(target: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose idle streams send a keepalive every 50 ms instead of every 15 s."""
    async with (
        running_gateway(target, GatewayLimits(keepalive_seconds=KEEPALIVE)) as address,
        httpx.AsyncClient(base_url=f"http://{address}", headers={"X-Api-Key": keys.client}) as client,
    ):
        yield client


async def test_an_sse_stream_opens_with_a_retry_hint_and_closes_with_an_end_event(
    http: httpx.AsyncClient, miner: ScriptedMiner
) -> None:
    job_id = await completed_job(http, miner)
    response = await http.get(f"/v1/jobs/{job_id}/stream", headers=SSE)
    assert response.status_code == 200
    assert response.text.startswith("retry: 3000\n\n")
    blocks = response.text.removesuffix("\n\n").split("\n\n")
    assert blocks[-1] == "event: end\ndata: {}"
    assert blocks[-2].startswith("id: 7\n")
    assert json.loads(blocks[-2].split("data: ", 1)[1])["state_change"]["status"] == "completed"


async def test_reconnecting_at_or_past_the_end_is_204(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = await completed_job(http, miner)
    for last_event_id in ("7", "8", "1000"):
        for accept in (SSE, {}):
            response = await http.get(f"/v1/jobs/{job_id}/stream", headers={**accept, "Last-Event-ID": last_event_id})
            assert (response.status_code, response.content) == (204, b""), last_event_id
    # Before the end it resumes as usual.
    resumed = await http.get(f"/v1/jobs/{job_id}/stream", headers={**SSE, "Last-Event-ID": "6"})
    assert resumed.status_code == 200
    assert "id: 7\n" in resumed.text
    assert resumed.text.endswith("event: end\ndata: {}\n\n")
    # Without Last-Event-ID a from_seq past the end is an empty stream, not 204: nothing was resumed.
    empty = await http.get(f"/v1/jobs/{job_id}/stream", params={"from_seq": 50}, headers=SSE)
    assert (empty.status_code, empty.text) == (200, "retry: 3000\n\nevent: end\ndata: {}\n\n")


async def test_from_seq_is_validated_even_when_last_event_id_overrides_it(http: httpx.AsyncClient) -> None:
    job_id = (await submit(http))["job_id"]
    for bad in ("-1", "abc", "9" * 30, "\u00b2"):
        response = await http.get(
            f"/v1/jobs/{job_id}/stream", params={"from_seq": bad}, headers={**SSE, "Last-Event-ID": "1"}
        )
        assert response.status_code == 400, bad
        assert response.json()["field"] == "from_seq"


async def test_a_waiting_sse_stream_sends_comment_keepalives(quick: httpx.AsyncClient) -> None:
    job_id = (await submit(quick))["job_id"]
    async with quick.stream("GET", f"/v1/jobs/{job_id}/stream", headers=SSE) as response:
        lines = response.aiter_lines()
        seen = [await anext(lines) for _ in range(8)]
    assert seen[:2] == ["retry: 3000", ""]
    assert seen[2] == "id: 1"
    assert seen[3].startswith("data: ")
    assert ": keepalive" in seen[5:]


async def test_a_resumed_stream_with_nothing_yet_starts_and_keeps_alive(quick: httpx.AsyncClient) -> None:
    """Resuming a queued job after its last event: the response must start before the next event comes."""
    job_id = (await submit(quick))["job_id"]
    async with quick.stream("GET", f"/v1/jobs/{job_id}/stream", headers={**SSE, "Last-Event-ID": "1"}) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert [await anext(lines) for _ in range(4)] == ["retry: 3000", "", ": keepalive", ""]


async def test_a_waiting_ndjson_stream_sends_empty_lines(quick: httpx.AsyncClient) -> None:
    job_id = (await submit(quick))["job_id"]
    async with quick.stream("GET", f"/v1/jobs/{job_id}/stream") as response:
        lines = response.aiter_lines()
        first = json.loads(await anext(lines))
        assert first["state_change"]["status"] == "pending"
        assert [await anext(lines) for _ in range(2)] == ["", ""]


async def test_a_quiet_websocket_gets_keepalive_frames(target: str, keys: Keys) -> None:
    async with (
        running_gateway(target, GatewayLimits(keepalive_seconds=KEEPALIVE)) as address,
        connect(f"ws://{address}/v1/jobs/ws", additional_headers={"X-Api-Key": keys.client}) as socket,
    ):
        assert json.loads(await socket.recv()) == {"type": "authenticated"}
        assert json.loads(await socket.recv()) == {"type": "keepalive"}
        assert json.loads(await socket.recv()) == {"type": "keepalive"}
