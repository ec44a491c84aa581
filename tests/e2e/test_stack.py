"""The whole path with real parts: SDK client, coordinator, MinerAgent with real backends, over loopback gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from aitbc.cli import main
from aitbc.client import AsyncClient, JobEvent
from aitbc.domain.states import JobState
from aitbc.domain.verify import CHECK_NAMES
from aitbc.services.server import RunningCoordinator
from aitbc.store.sqlite import SqliteStore
from miner import Backend, GenerationRequest, MinerAgent, MinerConfig
from miner.backends.synthetic import SyntheticBackend
from tests.conftest import Keys

AgentFactory = Callable[..., AbstractAsyncContextManager[MinerAgent]]


@pytest.fixture
def run_agent(target: str, keys: Keys) -> AgentFactory:
    @asynccontextmanager
    async def running(backend: Backend, miner_id: str, slots: int = 1) -> AsyncIterator[MinerAgent]:
        config = MinerConfig(coordinator=target, api_key=keys.miner, miner_id=miner_id, max_concurrency=slots)
        agent = MinerAgent(config, backend)
        task = asyncio.create_task(agent.run())
        try:
            yield agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return running


@pytest.fixture
async def client(target: str, keys: Keys) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(target, keys.client) as sdk:
        yield sdk


async def expected_text(backend: SyntheticBackend, prompt: str, max_tokens: int) -> str:
    request = GenerationRequest(prompt=prompt, model="synthetic", max_tokens=max_tokens, temperature=0.7, top_p=0.9)
    return "".join([chunk.text async for chunk in backend.generate(request)])


async def tokens_until(stream: AsyncIterator[JobEvent], count: int) -> int:
    seen = 0
    async for event in stream:
        seen += event.token_count
        if seen >= count:
            return seen
    raise AssertionError(f"the stream ended after {seen} tokens")


async def test_submit_stream_complete(client: AsyncClient, run_agent: AgentFactory) -> None:
    backend = SyntheticBackend(tokens_per_second=0)
    async with run_agent(backend, "m1"):
        job = await client.submit_job(
            "Explain machine learning", model="synthetic", max_tokens=24, queue_if_unavailable=True
        )
        events = [event async for event in client.stream(job.job_id)]
    text = "".join(event.text for event in events)
    assert text == await expected_text(SyntheticBackend(tokens_per_second=0), "Explain machine learning", 24)
    final = await client.get_job(job.job_id)
    assert final.status == "completed"
    assert final.result == text
    assert final.usage is not None
    assert final.usage.completion_tokens == 24
    assert final.miner_id == "m1"


async def test_cancel_mid_stream_keeps_tokens_and_frees_the_miner(client: AsyncClient, run_agent: AgentFactory) -> None:
    async with run_agent(SyntheticBackend(tokens_per_second=100), "m1"):
        job = await client.submit_job("long story", model="synthetic", max_tokens=2000, queue_if_unavailable=True)
        stream = client.stream(job.job_id)
        await tokens_until(stream, 5)
        canceled = await client.cancel_job(job.job_id)
        assert canceled.status == "canceled"
        assert canceled.usage is not None
        produced = canceled.usage.completion_tokens
        assert 5 <= produced < 2000
        rest = [event async for event in stream]
        assert rest[-1].status == "canceled"
        everything = [event async for event in client.stream(job.job_id)]
        assert sum(event.token_count for event in everything) == produced
        assert "".join(event.text for event in everything) == canceled.result
        # The slot is free: another job runs to completion on the same miner.
        follow_up = await client.submit_job("short", model="synthetic", max_tokens=3, queue_if_unavailable=True)
        assert (await client.wait_for_job(follow_up.job_id, timeout=30)).status == "completed"


async def test_killed_miner_job_finishes_on_another_with_continuous_text(
    client: AsyncClient, run_agent: AgentFactory
) -> None:
    prompt, max_tokens = "a job that outlives its miner", 60
    job = await client.submit_job(prompt, model="synthetic", max_tokens=max_tokens, queue_if_unavailable=True)
    watched = client.stream(job.job_id)
    async with run_agent(SyntheticBackend(tokens_per_second=200), "doomed"):
        await tokens_until(watched, 10)
    # The first miner is gone mid-job (its stream was cut); a second one picks the job up.
    async with run_agent(SyntheticBackend(tokens_per_second=0), "rescuer"):
        final = await client.wait_for_job(job.job_id, timeout=30)
    assert final.status == "completed"
    assert final.attempt == 2
    assert final.miner_id == "rescuer"
    uninterrupted = await expected_text(SyntheticBackend(tokens_per_second=0), prompt, max_tokens)
    events = [event async for event in client.stream(job.job_id)]
    assert "".join(event.text for event in events) == uninterrupted == final.result
    assert final.usage is not None
    assert final.usage.completion_tokens == max_tokens


async def test_shutdown_drains_the_miner_and_lets_its_job_finish(
    coordinator: RunningCoordinator, database: Path, client: AsyncClient, run_agent: AgentFactory
) -> None:
    async with run_agent(SyntheticBackend(tokens_per_second=100), "m1") as agent:
        job = await client.submit_job("finish me", model="synthetic", max_tokens=30, queue_if_unavailable=True)
        await tokens_until(client.stream(job.job_id), 1)
        await coordinator.stop(grace=10)
        await asyncio.wait_for(agent.drain(), 10)  # it was reconnecting; now it stops
    store = await SqliteStore.open(database)
    try:
        record = await store.get_job(job.job_id)
    finally:
        await store.close()
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.completion_tokens == 30


@pytest.mark.llama
async def test_llama_cpp_end_to_end(
    client: AsyncClient,
    run_agent: AgentFactory,
    coordinator: RunningCoordinator,
    target: str,
    keys: Keys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    llama_cpp = pytest.importorskip("miner.backends.llama_cpp", reason="llama-cpp-python is not installed")
    backend = llama_cpp.LlamaCppBackend()
    try:
        async with run_agent(backend, "cpu"):
            job = await client.submit_job(
                "Explain machine learning in simple terms",
                model=backend.models[0],
                max_tokens=16,
                temperature=0.0,
                queue_if_unavailable=True,
            )
            events = [event async for event in client.stream(job.job_id)]
    finally:
        await backend.close()
    final = await client.get_job(job.job_id)
    assert final.status == "completed", final.error
    text = "".join(event.text for event in events)
    assert text.strip()
    assert text == final.result
    assert final.usage is not None
    assert 1 <= final.usage.completion_tokens <= 16
    assert final.usage.prompt_tokens > 5
    # The seed's last step: the job's receipt, its block and its result check out, the miner's signature too.
    await coordinator.coordinator._blocks.seal_pending()  # the next tick's work, now
    verify = ["verify", "--job-id", job.job_id, "--coordinator", target, "--api-key", keys.client]
    assert await asyncio.to_thread(main, verify) == 0
    verdicts = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert verdicts == dict.fromkeys(CHECK_NAMES, "passed")
