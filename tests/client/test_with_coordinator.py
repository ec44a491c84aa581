"""The SDK (over both transports) and the CLI against the real coordinator, with a scripted miner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from aitbc.client import AitbcApiError, AsyncClient, JobEvent, StatusCode
from tests.conftest import Keys
from tests.gateway.conftest import running_gateway
from tests.support.scripted_miner import ScriptedMiner

from .cli_runner import run_cli


@pytest.fixture
async def client(target: str, keys: Keys, transport: str) -> AsyncIterator[AsyncClient]:
    """The SDK straight to the coordinator, or through the real gateway in front of it."""
    async with AsyncExitStack() as stack:
        sdk_target = target
        if transport == "http":
            sdk_target = f"http://{await stack.enter_async_context(running_gateway(target))}/api"
        yield await stack.enter_async_context(AsyncClient(sdk_target, keys.client, timeout=10))


async def collect(events: AsyncIterator[JobEvent]) -> list[JobEvent]:
    return [event async for event in events]


async def test_submit_stream_and_wait(target: str, keys: Keys, client: AsyncClient) -> None:
    job = await client.submit_job("Explain machine learning", "tiny", max_tokens=3, queue_if_unavailable=True)
    assert (job.status, job.params.max_tokens, job.params.temperature) == ("pending", 3, 0.7)
    watch = asyncio.create_task(collect(client.stream(job.job_id)))
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m1", ["tiny"])
        await miner.expect("assign")
        await miner.started(job.job_id, 1)
        await miner.tokens(job.job_id, 1, "Machine", " learning")
        await miner.done(job.job_id, 1, "Machine learning", completion_tokens=2)
        events = await asyncio.wait_for(watch, 10)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert [event.status for event in events if event.kind == "state"] == [
        "pending",
        "assigned",
        "running",
        "completed",
    ]
    assert "".join(event.text for event in events) == "Machine learning"
    done = await client.wait_for_job(job.job_id, timeout=10)
    assert (done.status, done.output, done.miner_id, done.usage.completion_tokens) == (
        "completed",
        "Machine learning",
        "m1",
        2,
    )
    assert done.completed_at is not None
    assert done.created_at is not None
    assert done.completed_at >= done.created_at


async def test_cancel_list_and_errors(client: AsyncClient) -> None:
    job = await client.submit_job("Write a story", "tiny", queue_if_unavailable=True)
    assert (await client.cancel_job(job.job_id)).status == "canceled"
    assert (await client.wait_for_job(job.job_id, timeout=10)).status == "canceled"
    assert [listed.job_id async for listed in client.iter_jobs(status="cancelled")] == [job.job_id]

    with pytest.raises(AitbcApiError) as not_cancelable:
        await client.cancel_job(job.job_id)
    assert (not_cancelable.value.code, not_cancelable.value.reason) == (
        StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_CANCELABLE",
    )
    with pytest.raises(AitbcApiError) as not_found:
        await client.get_job("job_missing")
    assert (not_found.value.reason, not_found.value.field) == ("JOB_NOT_FOUND", "job_id")
    with pytest.raises(AitbcApiError) as invalid:
        await client.submit_job("hi", "tiny", max_tokens=0)
    assert invalid.value.reason == "INVALID_ARGUMENT"
    assert invalid.value.field is not None
    assert "max_tokens" in invalid.value.field


async def test_no_online_miner_is_unavailable_unless_queued(client: AsyncClient) -> None:
    with pytest.raises(AitbcApiError) as unavailable:
        await client.submit_job("Nobody serves this model now", "tiny")
    assert (unavailable.value.code, unavailable.value.reason) == (StatusCode.UNAVAILABLE, "NO_ELIGIBLE_MINER")
    # The advice comes apart over either transport (the gateway's body repeats it as `advice`).
    assert unavailable.value.advice == "set queue_if_unavailable to wait for one"
    with pytest.raises(AitbcApiError) as unknown:
        await client.submit_job("No such model", "no-such-model")
    assert (unknown.value.reason, unknown.value.field) == ("MODEL_NOT_FOUND", "model")


async def test_wait_for_a_pending_job_times_out(client: AsyncClient) -> None:
    job = await client.submit_job("Nobody serves this model", "tiny", queue_if_unavailable=True, priority="low")
    assert job.routing.queue_position == 0
    with pytest.raises(TimeoutError, match=job.job_id):
        await client.wait_for_job(job.job_id, timeout=0.3)


async def test_cli_submit_and_status(target: str, keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    connection = ("--coordinator", target, "--api-key", keys.client)
    # The blocking client runs in a worker thread so the coordinator keeps serving on this loop.
    assert await asyncio.to_thread(run_cli, "submit", "Hello", "--model", "tiny", "--queue", *connection) == 0
    job_id = capsys.readouterr().out.strip()
    assert await asyncio.to_thread(run_cli, "client", "status", "--job-id", job_id, *connection) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["job_id"], status["status"], status["miner_id"]) == (job_id, "pending", "")
    assert status["created_at"].endswith("Z")


async def test_cli_models_and_miners(target: str, keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    connection = ("--coordinator", target, "--api-key", keys.client)
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("rig-1", ["tiny", "llama3.2"], max_concurrency=2)
        assert await asyncio.to_thread(run_cli, "models", "--json", *connection) == 0
        models = {model["id"]: model for model in json.loads(capsys.readouterr().out)}
        assert (models["llama-3.2-1b-instruct"]["miners"], models["tiny"]["free_slots"]) == (1, 2)
        assert "llama3.2" in models["llama-3.2-1b-instruct"]["aliases"]
        # Prices are integer µcr in JSON and credits in the table: 1000 µcr = 0.001 credits.
        assert models["llama-3.2-1b-instruct"]["price_input_per_1k"] == 1_000
        assert await asyncio.to_thread(run_cli, "miners", *connection) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split()[:3] == ["MINER", "ONLINE", "REPUTATION"]
        assert table[1].split()[:3] == ["rig-1", "yes", "5000"]
        assert await asyncio.to_thread(run_cli, "models", *connection) == 0
        listing = capsys.readouterr().out
        assert "llama-3.2-1b-instruct" in listing
        assert "0.001 / 0.002" in listing
        assert await asyncio.to_thread(run_cli, "miners", "--json", *connection) == 0
        [rig] = json.loads(capsys.readouterr().out)
        assert (rig["miner_id"], rig["online"], rig["max_concurrency"]) == ("rig-1", True, 2)


async def test_the_accounts_keys(client: AsyncClient) -> None:
    [own] = await client.list_api_keys()
    assert own["role"] == "client"
    assert "revoked_at" not in own
    with pytest.raises(AitbcApiError) as missing:
        await client.revoke_api_key("key_missing")
    assert (missing.value.code, missing.value.reason, missing.value.field) == (
        StatusCode.NOT_FOUND,
        "KEY_NOT_FOUND",
        "key_id",
    )
