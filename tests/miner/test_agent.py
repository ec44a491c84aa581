"""The miner agent against a fake coordinator on a real gRPC server."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from aitbc.domain.canonical import text_hash
from aitbc.domain.receipts import MinerAttestation
from aitbc.domain.signing import public_key_of, verify_b64
from aitbc.key_files import read_private_key
from aitbc.v1 import miner_pb2
from miner.agent import CoordinatorRejectedError, MinerAgent
from miner.backends.synthetic import SyntheticBackend, synthetic_text
from miner.config import MinerConfig

from .fakes import (
    STEP_TIMEOUT,
    AgentFactory,
    FakeCoordinator,
    GatedBackend,
    MinerStream,
    agent_config,
    new_fake_coordinator,
    serving,
)

PROMPT = "Tell me about the sea"


def tokens_of(messages: list[miner_pb2.ConnectRequest]) -> tuple[str, int]:
    """The concatenated text and summed token count of the JobTokens among `messages`."""
    chunks = [message.tokens for message in messages if message.WhichOneof("msg") == "tokens"]
    return "".join(chunk.text for chunk in chunks), sum(chunk.token_count for chunk in chunks)


async def tokens_until(stream: MinerStream, job_id: str, count: int) -> list[miner_pb2.ConnectRequest]:
    """JobTokens of `job_id` until `count` tokens have arrived."""
    received: list[miner_pb2.ConnectRequest] = []
    while tokens_of(received)[1] < count:
        received.append(await stream.next("tokens"))
        assert received[-1].tokens.job_id == job_id
    return received


async def test_says_hello_then_heartbeats(fake_coordinator: FakeCoordinator, start_agent: AgentFactory) -> None:
    fake_coordinator.heartbeat_interval = 0.05
    start_agent(SyntheticBackend(models=["m1", "m2"]), max_concurrency=3)

    stream = await fake_coordinator.next_stream()
    assert stream.api_key == "test-miner-key"
    hello = stream.hello
    assert (hello.miner_id, list(hello.models), hello.max_concurrency, hello.backend) == (
        "miner-under-test",
        ["m1", "m2"],
        3,
        "synthetic",
    )
    assert hello.version
    beat = await stream.next("heartbeat")
    assert beat.heartbeat.draining is False


async def test_job_streams_tokens_then_done(fake_coordinator: FakeCoordinator, start_agent: AgentFactory) -> None:
    start_agent()
    stream = await fake_coordinator.next_stream()

    await stream.assign("job-1", PROMPT, max_tokens=20)
    messages = await stream.until("done", "job-1")

    assert messages[0].WhichOneof("msg") == "started"
    assert messages[0].started.prompt_tokens == len(PROMPT.split())
    done = messages[-1].done
    text, token_count = tokens_of(messages)
    assert text == done.output == synthetic_text(PROMPT, 20)
    assert token_count == done.completion_tokens == 20
    assert (done.attempt, done.prompt_tokens, done.finish_reason) == (1, len(PROMPT.split()), "length")
    attestation = MinerAttestation("job-1", 1, text_hash(done.output), done.prompt_tokens, 20)
    assert verify_b64(stream.hello.public_key, attestation.canonical_bytes(), done.signature)


async def test_resumed_job_continues_after_the_earlier_text(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory
) -> None:
    start_agent()
    stream = await fake_coordinator.next_stream()

    await stream.assign(
        "job-1", PROMPT, max_tokens=12, attempt=2, resume_text=synthetic_text(PROMPT, 5), resume_tokens=5
    )
    done = (await stream.until("done", "job-1"))[-1].done

    assert done.output == synthetic_text(PROMPT, 12, start=5)
    assert (done.attempt, done.completion_tokens) == (2, 7)
    # The signature covers the whole job: the text it resumed from and this attempt's, and all their tokens.
    whole = MinerAttestation("job-1", 2, text_hash(synthetic_text(PROMPT, 12)), done.prompt_tokens, 12)
    assert verify_b64(stream.hello.public_key, whole.canonical_bytes(), done.signature)
    this_attempt_only = MinerAttestation("job-1", 2, text_hash(done.output), done.prompt_tokens, 7)
    assert not verify_b64(stream.hello.public_key, this_attempt_only.canonical_bytes(), done.signature)


async def test_the_signing_key_is_made_once_and_kept(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, tmp_path: Path
) -> None:
    fake_coordinator.heartbeat_interval = 0.05
    key_file = tmp_path / "miner-signing-key.pem"
    start_agent(key_file=key_file)
    stream = await fake_coordinator.next_stream()
    await stream.next("heartbeat")  # welcomed and running, as the other tests leave their agents
    first = stream.hello.public_key
    assert len(first) == 32
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the miner alone
    assert first == public_key_of(read_private_key(key_file))


async def test_stop_string_ends_the_job(fake_coordinator: FakeCoordinator, start_agent: AgentFactory) -> None:
    start_agent()
    stream = await fake_coordinator.next_stream()
    full = synthetic_text(PROMPT, 30)
    stop = full.split()[6]

    await stream.assign("job-1", PROMPT, max_tokens=30, stop=[stop])
    messages = await stream.until("done", "job-1")

    done = messages[-1].done
    assert tokens_of(messages)[0] == done.output == full[: full.index(stop)]
    assert done.finish_reason == "stop"


async def test_cancel_is_acked_with_the_tokens_produced(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    start_agent(gated_backend)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=100)
    await stream.next("started")
    gated_backend.let_through(5)
    await tokens_until(stream, "job-1", 5)

    await stream.cancel("job-1")
    ack = await stream.next("cancel_ack")

    assert (ack.cancel_ack.job_id, ack.cancel_ack.attempt, ack.cancel_ack.completion_tokens) == ("job-1", 1, 5)
    await asyncio.wait_for(gated_backend.idle.wait(), STEP_TIMEOUT)
    # Everything the miner ever sends arrives before the stream ends: nothing about the job after its ack.
    gated_backend.let_through(100)
    await stream.drain()
    await stream.ended()
    kinds = [message.WhichOneof("msg") for message in stream.log if message.WhichOneof("msg") != "heartbeat"]
    assert kinds[-1] == "cancel_ack"
    assert tokens_of(stream.log) == (synthetic_text(PROMPT, 5), 5)


async def test_cancel_of_another_attempt_or_job_is_ignored(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    start_agent(gated_backend)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=3, attempt=2)
    await stream.next("started")

    await stream.cancel("job-1", attempt=1)
    await stream.cancel("job-unknown")
    gated_backend.let_through(3)

    messages = await stream.until("done", "job-1")
    assert messages[-1].done.output == synthetic_text(PROMPT, 3)


async def test_assignment_beyond_capacity_is_refused(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    start_agent(gated_backend, max_concurrency=1)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=2)
    await stream.next("started")

    await stream.assign("job-2", PROMPT)
    refusal = (await stream.next("failed")).failed

    assert (refusal.job_id, refusal.error, refusal.retryable) == ("job-2", "miner at capacity", True)
    gated_backend.let_through(2)
    assert (await stream.until("done", "job-1"))[-1].done.output == synthetic_text(PROMPT, 2)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"model": "no-such-model"}, "model 'no-such-model' is not served here"),
        ({"temperature": 3.0}, "temperature must be between 0 and 2"),
        ({"resume_tokens": 17}, "resume_tokens must be between 0 and max_tokens"),
    ],
)
async def test_bad_assignment_fails_the_job_not_the_stream(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, changes: dict[str, Any], error: str
) -> None:
    start_agent()
    stream = await fake_coordinator.next_stream()

    await stream.assign("job-bad", PROMPT, **changes)
    failed = (await stream.next("failed")).failed
    await stream.assign("job-good", PROMPT, max_tokens=4)
    messages = await stream.until("done", "job-good")

    assert failed.job_id == "job-bad"
    assert error in failed.error
    assert not failed.retryable
    assert messages[-1].done.output == synthetic_text(PROMPT, 4)


async def test_assignment_without_sampling_params_fails_naming_the_field(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory
) -> None:
    start_agent()
    stream = await fake_coordinator.next_stream()

    assignment = miner_pb2.AssignJob(job_id="job-1", attempt=1, prompt=PROMPT, model="synthetic")
    await stream.send(miner_pb2.ConnectResponse(assign=assignment))
    failed = (await stream.next("failed")).failed

    assert (failed.error, failed.retryable) == ("params.max_tokens is missing", False)


async def test_coordinator_drain_finishes_the_running_job_closes_and_reconnects(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    running = start_agent(gated_backend, max_concurrency=2)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=10)
    await stream.next("started")
    gated_backend.let_through(3)
    await tokens_until(stream, "job-1", 3)

    await stream.drain("coordinator restart")
    beat = await stream.next("heartbeat")
    assert beat.heartbeat.draining is True
    await stream.assign("job-2", PROMPT)
    refusal = (await stream.next("failed")).failed
    assert (refusal.job_id, refusal.error, refusal.retryable) == ("job-2", "miner is draining", True)
    gated_backend.let_through(7)
    done = (await stream.until("done", "job-1"))[-1].done

    assert done.output == synthetic_text(PROMPT, 10)
    await stream.ended()
    # The miner outlives its coordinator's restart: it connects again, ready for work.
    again = await fake_coordinator.next_stream()
    await again.assign("job-3", PROMPT, max_tokens=2)
    await again.next("started")
    assert not running.task.done()


async def test_local_drain_fails_jobs_still_running_after_the_grace(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    running = start_agent(gated_backend, drain_grace_seconds=0.05)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=10)
    await stream.next("started")
    gated_backend.let_through(2)
    await tokens_until(stream, "job-1", 2)

    await asyncio.wait_for(running.agent.drain(), STEP_TIMEOUT)

    assert running.task.done()
    failed = (await stream.next("failed")).failed
    assert (failed.job_id, failed.retryable) == ("job-1", True)
    assert "shut down" in failed.error
    await stream.ended()
    assert gated_backend.running == 0


async def test_reconnects_when_the_coordinator_comes_back(gated_backend: GatedBackend) -> None:
    fake_coordinator = new_fake_coordinator()
    async with serving(fake_coordinator) as port:
        agent = MinerAgent(agent_config(port), gated_backend)
        run = asyncio.create_task(agent.run())
        first = await fake_coordinator.next_stream()
        await first.assign("job-1", PROMPT, max_tokens=10)
        await first.next("started")
    try:
        await first.ended()
        # The job of the broken stream is stopped here (the coordinator re-queues it), freeing its slot.
        await asyncio.wait_for(gated_backend.idle.wait(), STEP_TIMEOUT)

        async with serving(fake_coordinator, port):
            second = await fake_coordinator.next_stream()
            await second.assign("job-2", PROMPT, max_tokens=2)
            gated_backend.let_through(2)
            done = (await second.until("done", "job-2"))[-1].done

        assert second.hello.miner_id == "miner-under-test"
        assert done.output == synthetic_text(PROMPT, 2)
    finally:
        agent.stop()
        await asyncio.wait_for(run, STEP_TIMEOUT)


async def test_rejected_api_key_is_fatal(config: MinerConfig) -> None:
    agent = MinerAgent(dataclasses.replace(config, api_key="wrong"), SyntheticBackend())

    with pytest.raises(CoordinatorRejectedError, match="UNAUTHENTICATED"):
        await asyncio.wait_for(agent.run(), STEP_TIMEOUT)


async def test_stop_ends_run_and_abandons_jobs(
    fake_coordinator: FakeCoordinator, start_agent: AgentFactory, gated_backend: GatedBackend
) -> None:
    running = start_agent(gated_backend)
    stream = await fake_coordinator.next_stream()
    await stream.assign("job-1", PROMPT, max_tokens=10)
    await stream.next("started")

    running.agent.stop()
    await asyncio.wait_for(running.task, STEP_TIMEOUT)

    assert gated_backend.running == 0
    await stream.ended()
    assert [message.WhichOneof("msg") for message in stream.log] == ["started"]
