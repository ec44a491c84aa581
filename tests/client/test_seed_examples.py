"""Seed 000's Python SDK example as written, against the real coordinator: through the gateway's
`http://HOST:PORT/api` and at the coordinator's gRPC address alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aitbc_sdk import AITBCClient
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, running_gateway
from tests.support.scripted_miner import ScriptedMiner


def seed_example(api_url: str, api_key: str) -> None:
    """docs: 2_job-submission.md, "Python SDK", with only the URL and the key filled in."""
    client = AITBCClient(
        api_url=api_url,
        api_key=api_key,  # Optional for authenticated requests
    )

    # Submit a text generation job
    job = client.submit_job(
        prompt="What is the capital of France?",
        model="llama3.2",
        params={
            "max_tokens": 100,
            "temperature": 0.5,
        },
    )

    print(f"Job ID: {job.id}")
    print(f"Status: {job.status}")

    # Wait for completion
    result = client.wait_for_job(job.id, timeout=60)
    print(f"Output: {result.output}")


@pytest.fixture
async def api_url(target: str, transport: str) -> AsyncIterator[str]:
    if transport == "grpc":
        yield target
        return
    async with running_gateway(target) as gateway:
        yield f"http://{gateway}/api"


async def test_the_seed_sdk_example_runs(
    api_url: str, target: str, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m1", [MODEL])
        # The example blocks; it runs on a worker thread while this loop serves the coordinator and miner.
        example = asyncio.create_task(asyncio.to_thread(seed_example, api_url, keys.client))
        job_id = (await miner.expect("assign")).assign.job_id
        await miner.started(job_id, 1)
        await miner.tokens(job_id, 1, "Paris", ".")
        await miner.done(job_id, 1, "Paris.", completion_tokens=2)
        await asyncio.wait_for(example, 30)
    assert capsys.readouterr().out.splitlines() == [f"Job ID: {job_id}", "Status: assigned", "Output: Paris."]
