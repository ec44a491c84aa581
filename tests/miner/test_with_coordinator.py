"""The real agent with the real coordinator, over gRPC on loopback: client to coordinator to miner and back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeAlias

import pytest

from aitbc.v1 import jobs_pb2, jobs_pb2_grpc
from miner.agent import MinerAgent
from miner.backends.base import Backend
from miner.backends.synthetic import SyntheticBackend, synthetic_text
from miner.config import MinerConfig
from tests.conftest import Keys
from tests.support.rpc import key

from .fakes import STEP_TIMEOUT, GatedBackend

Stub: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"
PROMPT = "Explain machine learning in simple terms"


class Miners:
    """Agents run against the test's coordinator; whatever still runs is stopped after the test."""

    def __init__(self, target: str, miner_key: str) -> None:
        self._target = target
        self._key = miner_key
        self._running: dict[MinerAgent, asyncio.Task[None]] = {}

    def start(self, miner_id: str, backend: Backend) -> MinerAgent:
        config = MinerConfig(coordinator=self._target, api_key=self._key, miner_id=miner_id)
        agent = MinerAgent(config, backend)
        self._running[agent] = asyncio.create_task(agent.run(), name=miner_id)
        return agent

    async def stop(self, agent: MinerAgent) -> None:
        agent.stop()
        await asyncio.wait_for(self._running.pop(agent), STEP_TIMEOUT)

    async def stop_all(self) -> None:
        for agent in list(self._running):
            await self.stop(agent)


@pytest.fixture
async def miners(target: str, keys: Keys) -> AsyncIterator[Miners]:
    started = Miners(target, keys.miner)
    yield started
    await started.stop_all()


async def submit(stub: Stub, keys: Keys, max_tokens: int) -> str:
    request = jobs_pb2.SubmitJobRequest(
        prompt=PROMPT,
        model="synthetic",
        params=jobs_pb2.SamplingParams(max_tokens=max_tokens),
        queue_if_unavailable=True,
    )
    return (await stub.SubmitJob(request, metadata=key(keys.client))).job.job_id


async def wait_for_tokens(stub: Stub, keys: Keys, job_id: str, count: int) -> None:
    seen = 0
    async for event in stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=key(keys.client)):
        seen += event.tokens.token_count
        if seen >= count:
            return
    raise AssertionError(f"job {job_id} ended after {seen} tokens")


async def finished(stub: Stub, keys: Keys, job_id: str) -> jobs_pb2.Job:
    async def watch() -> None:
        async for _ in stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=key(keys.client)):
            pass

    await asyncio.wait_for(watch(), STEP_TIMEOUT)
    return (await stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=key(keys.client))).job


async def test_job_completes_on_a_miner(jobs_stub: Stub, keys: Keys, miners: Miners) -> None:
    miners.start("miner-1", SyntheticBackend(tokens_per_second=0))

    job = await finished(jobs_stub, keys, await submit(jobs_stub, keys, max_tokens=12))

    assert job.status == jobs_pb2.JOB_STATE_COMPLETED
    assert (job.result, job.miner_id, job.finish_reason) == (synthetic_text(PROMPT, 12), "miner-1", "length")
    assert (job.usage.prompt_tokens, job.usage.completion_tokens) == (len(PROMPT.split()), 12)


async def test_cancel_is_charged_for_the_tokens_produced(jobs_stub: Stub, keys: Keys, miners: Miners) -> None:
    backend = GatedBackend()
    miners.start("miner-1", backend)
    job_id = await submit(jobs_stub, keys, max_tokens=50)
    backend.let_through(4)
    await asyncio.wait_for(wait_for_tokens(jobs_stub, keys, job_id, 4), STEP_TIMEOUT)

    canceled = (await jobs_stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id), metadata=key(keys.client))).job

    assert canceled.status == jobs_pb2.JOB_STATE_CANCELED
    assert (canceled.result, canceled.usage.completion_tokens) == (synthetic_text(PROMPT, 4), 4)


async def test_job_of_a_vanished_miner_resumes_on_another(jobs_stub: Stub, keys: Keys, miners: Miners) -> None:
    backend = GatedBackend()
    first = miners.start("miner-1", backend)
    job_id = await submit(jobs_stub, keys, max_tokens=12)
    backend.let_through(5)
    await asyncio.wait_for(wait_for_tokens(jobs_stub, keys, job_id, 5), STEP_TIMEOUT)

    await miners.stop(first)
    miners.start("miner-2", SyntheticBackend(tokens_per_second=0))
    job = await finished(jobs_stub, keys, job_id)

    # Clients see the uninterrupted text once: the second attempt continued after the first one's tokens.
    assert job.status == jobs_pb2.JOB_STATE_COMPLETED
    assert (job.result, job.attempt, job.miner_id) == (synthetic_text(PROMPT, 12), 2, "miner-2")
    assert job.usage.completion_tokens == 12
