"""GET /v1/jobs/{job_id}/stream as Server-Sent Events and NDJSON, resumable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.gateway.conftest import assigned, job_in_state, run_to_completion
from tests.gateway.test_rest import submit
from tests.support.scripted_miner import ScriptedMiner

SSE = {"Accept": "text/event-stream"}


@dataclass
class ServerSentEvent:
    data: Any
    id: str | None = None
    event: str | None = None


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """A minimal SSE parser: the gateway sends one `data:` line per event. Comments (keepalives) and the
    `retry:` hint are skipped; the iteration stops at the `end` event (tested on its own below)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "data" in fields:
            if fields.get("event") == "end":
                return
            yield ServerSentEvent(json.loads(fields["data"]), fields.get("id"), fields.get("event"))
        fields = {}


def describe(event: dict[str, Any]) -> str:
    if "tokens" in event:
        return f"tokens:{event['tokens']['text']}"
    return str(event["state_change"]["status"])


async def completed_job(http: httpx.AsyncClient, miner: ScriptedMiner) -> str:
    job_id = str((await submit(http))["job_id"])
    await assigned(miner)
    await run_to_completion(miner, job_id, "a", "b", "c")
    await job_in_state(http, job_id, "completed")
    return job_id


ALL_EVENTS = ["pending", "assigned", "running", "tokens:a", "tokens:b", "tokens:c", "completed"]


async def test_sse_streams_live_events_with_seq_ids(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = str((await submit(http))["job_id"])
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=SSE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        first = await anext(events)
        assert (first.id, first.event, describe(first.data)) == ("1", None, "pending")
        await assigned(miner)
        await run_to_completion(miner, job_id, "a", "b", "c")
        rest = [event async for event in events]
    received = [first, *rest]
    assert [describe(event.data) for event in received] == ALL_EVENTS
    assert [event.id for event in received] == [str(seq) for seq in range(1, 8)]
    assert all(event.data["seq"] == int(str(event.id)) for event in received)
    assert received[3].data["tokens"] == {"text": "a", "token_count": 1}
    final = received[-1].data["state_change"]
    assert final["usage"] == {"prompt_tokens": 5, "completion_tokens": 3}
    assert final["finish_reason"] == "length"
    assert received[-1].data["time"].endswith("Z")


async def test_sse_resumes_after_last_event_id(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = await completed_job(http, miner)
    # An EventSource reconnects to its original URL: Last-Event-ID wins over from_seq there.
    headers = {**SSE, "Last-Event-ID": "4"}
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream?from_seq=1", headers=headers) as response:
        resumed = [event async for event in sse_events(response)]
    assert [event.id for event in resumed] == ["5", "6", "7"]
    assert [describe(event.data) for event in resumed] == ALL_EVENTS[4:]


async def test_ndjson_by_default_and_from_seq(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = await completed_job(http, miner)
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream", params={"from_seq": 6}) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    assert [line["seq"] for line in lines] == [6, 7]
    assert [describe(line) for line in lines] == ["tokens:c", "completed"]


async def test_stream_errors_before_the_first_event_are_plain_http_errors(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/jobs/job_missing/stream", headers=SSE)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "JOB_NOT_FOUND"
    job_id = (await submit(http))["job_id"]
    negative = await http.get(f"/v1/jobs/{job_id}/stream", params={"from_seq": -1})
    assert (negative.status_code, negative.json()["field"]) == (400, "from_seq")
    bad_resume = await http.get(f"/v1/jobs/{job_id}/stream", headers={**SSE, "Last-Event-ID": "x"})
    assert bad_resume.status_code == 400


async def test_streams_are_served_under_api_too(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = await completed_job(http, miner)
    async with http.stream("GET", f"/api/v1/jobs/{job_id}/stream", headers=SSE) as response:
        assert [event.id async for event in sse_events(response)] == [str(seq) for seq in range(1, 8)]


async def test_disconnecting_a_watcher_cancels_nothing(http: httpx.AsyncClient, miner: ScriptedMiner) -> None:
    job_id = str((await submit(http))["job_id"])
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=SSE) as response:
        await anext(sse_events(response))
    await assigned(miner)
    await run_to_completion(miner, job_id, "still", " here")
    assert (await job_in_state(http, job_id, "completed"))["result"] == "still here"


async def test_grpc_timeout_ends_a_stream_in_band_with_its_status(http: httpx.AsyncClient) -> None:
    job_id = str((await submit(http))["job_id"])
    # Pending, no miner: the stream sends its first event, then waits until the deadline.
    headers = {**SSE, "Grpc-Timeout": "200m"}
    async with http.stream("GET", f"/v1/jobs/{job_id}/stream", headers=headers) as response:
        events = [event async for event in sse_events(response)]
    assert [event.event for event in events] == [None, "error"]
    assert (events[1].data["error_code"], events[1].data["status"]) == ("DEADLINE_EXCEEDED", 504)
    bad = await http.get(f"/v1/jobs/{job_id}", headers={"Grpc-Timeout": "soon"})
    assert (bad.status_code, bad.json()["field"]) == (400, "grpc-timeout")
