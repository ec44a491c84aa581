"""The job path over real gRPC on loopback: client, coordinator, a scripted miner."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc, miner_pb2, models_pb2, models_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import collect, expect_error, key, until_event
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


Stub: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"
S = jobs_pb2


async def submit(stub: Stub, client_key: str, max_tokens: int = 16) -> S.Job:
    request = S.SubmitJobRequest(
        queue_if_unavailable=True,
        prompt="Explain machine learning in simple terms",
        model="tiny",
        params=S.SamplingParams(max_tokens=max_tokens),
    )
    response = await stub.SubmitJob(request, metadata=key(client_key))
    return response.job


def kinds(events: list[S.WatchJobResponse]) -> list[str]:
    return [
        S.JobState.Name(e.state_change.status) if e.WhichOneof("event") == "state_change" else f"tokens:{e.tokens.text}"
        for e in events
    ]


async def test_submit_stream_complete(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client, max_tokens=3)
    assert job.status == S.JOB_STATE_PENDING
    assert job.created_at.seconds > 0
    assert job.params.temperature == pytest.approx(0.7)  # defaults filled in
    watch = asyncio.create_task(
        collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    )

    async with ScriptedMiner(target, keys.miner) as miner:
        welcome = await miner.hello("m1", ["tiny"])
        assert welcome.heartbeat_interval.seconds > 0
        assign = (await miner.expect("assign")).assign
        assert (assign.job_id, assign.attempt, assign.prompt) == (job.job_id, 1, job.prompt)
        assert assign.params.max_tokens == 3
        await miner.started(job.job_id, 1)
        await miner.tokens(job.job_id, 1, "Machine", " learning")
        await miner.done(job.job_id, 1, "Machine learning is", completion_tokens=3)
        events = await asyncio.wait_for(watch, 10)

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert kinds(events) == [
        "JOB_STATE_PENDING",
        "JOB_STATE_ASSIGNED",
        "JOB_STATE_RUNNING",
        "tokens:Machine",
        "tokens: learning",
        "tokens: is",  # the part of the output the miner never streamed
        "JOB_STATE_COMPLETED",
    ]
    assert events[-1].state_change.usage.completion_tokens == 3
    assert events[-1].state_change.finish_reason == "length"
    final = (await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    assert final.status == S.JOB_STATE_COMPLETED
    assert final.result == "Machine learning is"
    assert final.miner_id == "m1"
    assert final.progress == 100
    assert final.usage.completion_tokens == 3
    assert final.usage.prompt_tokens == 5
    assert final.finish_reason == "length"
    assert final.completed_at.ToDatetime() >= final.started_at.ToDatetime() >= final.created_at.ToDatetime()


async def test_late_watcher_and_resume_from_sequence(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m1", ["tiny"])
        await miner.expect("assign")
        await miner.tokens(job.job_id, 1, "a", "b", "c")
        # A watcher joining mid-job gets everything so far, then the live rest.
        live = jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client))
        seen = []
        async for event in live:
            seen.append(event)
            if event.tokens.text == "c":
                break
        await miner.tokens(job.job_id, 1, "d")
        await miner.done(job.job_id, 1, "abcd", completion_tokens=4)
        seen += await collect(live)
    assert kinds(seen)[-3:] == ["tokens:c", "tokens:d", "JOB_STATE_COMPLETED"]

    everything = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    assert [e.SerializeToString() for e in everything] == [e.SerializeToString() for e in seen]
    resumed = await collect(
        jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id, from_seq=5), metadata=key(keys.client))
    )
    assert [e.seq for e in resumed] == [e.seq for e in everything[4:]]
    assert "".join(e.tokens.text for e in everything) == "abcd"


async def test_cancel_running_job_keeps_tokens_and_frees_slot(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m1", ["tiny"], max_concurrency=1)
        await miner.expect("assign")
        await miner.started(job.job_id, 1)
        await miner.tokens(job.job_id, 1, "one", " two")
        cancel = asyncio.ensure_future(
            jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client))
        )
        request = (await miner.expect("cancel")).cancel
        assert (request.job_id, request.attempt) == (job.job_id, 1)
        await miner.tokens(job.job_id, 1, " three")  # produced before the miner stopped
        await miner.send(
            miner_pb2.ConnectRequest(cancel_ack=miner_pb2.CancelAck(job_id=job.job_id, attempt=1, completion_tokens=3))
        )
        canceled = (await asyncio.wait_for(cancel, 10)).job
        assert canceled.status == S.JOB_STATE_CANCELED
        assert canceled.result == "one two three"
        assert canceled.usage.completion_tokens == 3

        # The slot is free again: the next job goes to the same miner.
        second = await submit(jobs_stub, keys.client)
        assert (await miner.expect("assign")).assign.job_id == second.job_id
        # Late messages about the canceled attempt change nothing.
        await miner.done(job.job_id, 1, "one two three four", completion_tokens=4)
        await miner.done(second.job_id, 1, "ok", completion_tokens=1)
        await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=second.job_id), metadata=key(keys.client)))
    again = (await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    assert again.status == S.JOB_STATE_CANCELED
    assert again.result == "one two three"
    await expect_error(
        jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_CANCELABLE",
    )


async def test_cancel_pending_job(keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    canceled = (await jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    assert canceled.status == S.JOB_STATE_CANCELED
    assert canceled.usage.completion_tokens == 0


class TestCancelTimeout:
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    async def test_cancel_without_ack_still_cancels(
        self, target: str, keys: Keys, jobs_stub: Stub, clock: ManualClock, coordinator_config: CoordinatorConfig
    ) -> None:
        job = await submit(jobs_stub, keys.client)
        async with ScriptedMiner(target, keys.miner) as miner:
            await miner.hello("mute", ["tiny"])
            await miner.expect("assign")
            await miner.tokens(job.job_id, 1, "x")
            await until_event(jobs_stub, keys.client, job.job_id, lambda event: event.tokens.text == "x")
            cancel = asyncio.ensure_future(
                jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client))
            )
            await miner.expect("cancel")
            # The miner never acknowledges; just short of the timeout the cancel still waits for it.
            await clock.advance(coordinator_config.cancel_ack_timeout - 0.1)
            assert not cancel.done()
            await clock.advance(0.1)
            canceled = (await cancel).job
            assert canceled.status == S.JOB_STATE_CANCELED
            assert canceled.result == "x"


async def test_miner_killed_mid_job_is_resumed_by_another(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    watch = asyncio.create_task(
        collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    )
    first = ScriptedMiner(target, keys.miner)
    await first.hello("first", ["tiny"])
    await first.expect("assign")
    await first.started(job.job_id, 1)
    await first.tokens(job.job_id, 1, "The", " cat")
    # Wait until the coordinator has both tokens, then kill the miner.
    async for event in jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id, from_seq=5), metadata=key(keys.client)):
        assert event.tokens.text == " cat"
        break
    await first.close()

    async with ScriptedMiner(target, keys.miner) as second:
        await second.hello("second", ["tiny"])
        assign = (await second.expect("assign")).assign
        assert assign.attempt == 2
        assert (assign.resume_text, assign.resume_tokens) == ("The cat", 2)
        await second.tokens(job.job_id, 2, " sat")
        await second.done(job.job_id, 2, " sat", completion_tokens=1)
        events = await asyncio.wait_for(watch, 10)

    assert "".join(e.tokens.text for e in events) == "The cat sat"
    states = [S.JobState.Name(e.state_change.status) for e in events if e.WhichOneof("event") == "state_change"]
    assert states == [
        "JOB_STATE_PENDING",
        "JOB_STATE_ASSIGNED",
        "JOB_STATE_RUNNING",
        "JOB_STATE_PENDING",
        "JOB_STATE_ASSIGNED",
        "JOB_STATE_RUNNING",
        "JOB_STATE_COMPLETED",
    ]
    requeued = next(e for e in events if e.seq > 3 and e.state_change.status == S.JOB_STATE_PENDING)
    assert "first" in requeued.state_change.error
    final = (await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    assert (final.result, final.usage.completion_tokens, final.attempt, final.miner_id) == (
        "The cat sat",
        3,
        2,
        "second",
    )


async def test_stale_attempt_is_fenced(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    async with ScriptedMiner(target, keys.miner) as a, ScriptedMiner(target, keys.miner) as b:
        await a.hello("a", ["tiny"])
        await a.expect("assign")
        await a.tokens(job.job_id, 1, "kept")
        await a.send(
            miner_pb2.ConnectRequest(
                failed=miner_pb2.JobFailed(job_id=job.job_id, attempt=1, error="out of memory", retryable=True)
            )
        )
        await b.hello("b", ["tiny"])
        # a is idle again and may get the job back; whoever gets attempt 2, the other is fenced.
        waits = {asyncio.ensure_future(m.received.get()): m for m in (a, b)}
        finished, pending = await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        winner = finished.pop()
        reply = winner.result()
        assert reply is not None
        assign, owner = reply.assign, waits[winner]
        assert assign.attempt == 2
        other = b if owner is a else a
        await other.tokens(job.job_id, 1, " STALE")
        await other.done(job.job_id, 1, "kept STALE", completion_tokens=2)
        await owner.done(job.job_id, 2, " fresh", completion_tokens=1)
        await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    final = (await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
    assert final.result == "kept fresh"


async def test_non_retryable_failure_fails_the_job(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m", ["tiny"])
        await miner.expect("assign")
        await miner.send(
            miner_pb2.ConnectRequest(
                failed=miner_pb2.JobFailed(job_id=job.job_id, attempt=1, error="prompt too long", retryable=False)
            )
        )
        events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    assert events[-1].state_change.status == S.JOB_STATE_FAILED
    assert "prompt too long" in events[-1].state_change.error


async def test_job_waits_for_a_miner_serving_its_model(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = await submit(jobs_stub, keys.client)
    async with ScriptedMiner(target, keys.miner) as wrong, ScriptedMiner(target, keys.miner) as right:
        await wrong.hello("wrong", ["other-model"])
        await right.hello("right", ["tiny"])
        assert (await right.expect("assign")).assign.job_id == job.job_id
        assert wrong.received.empty()


async def test_dispatch_respects_max_concurrency(target: str, keys: Keys, jobs_stub: Stub) -> None:
    jobs = [await submit(jobs_stub, keys.client) for _ in range(3)]
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m", ["tiny"], max_concurrency=2)
        first = (await miner.expect("assign")).assign
        second = (await miner.expect("assign")).assign
        assert [first.job_id, second.job_id] == [jobs[0].job_id, jobs[1].job_id]  # oldest first
        third = (await jobs_stub.GetJob(S.GetJobRequest(job_id=jobs[2].job_id), metadata=key(keys.client))).job
        assert third.status == S.JOB_STATE_PENDING
        await miner.done(first.job_id, 1, "done", completion_tokens=1)
        assert (await miner.expect("assign")).assign.job_id == jobs[2].job_id


async def test_health_is_serving(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "aitbc.v1.JobService", "aitbc.v1.MinerService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_conversation_and_stop_strings_reach_the_miner(target: str, keys: Keys, jobs_stub: Stub) -> None:
    conversation = [S.ChatMessage(role="system", content="Be brief."), S.ChatMessage(role="user", content="Hi")]
    request = S.SubmitJobRequest(
        queue_if_unavailable=True, model="tiny", messages=conversation, params=S.SamplingParams(stop=["\n\n"])
    )
    job = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
    assert list(job.messages) == conversation
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m", ["tiny"])
        assign = (await miner.expect("assign")).assign
    assert list(assign.messages) == conversation
    assert (assign.prompt, assign.raw, list(assign.params.stop)) == ("", False, ["\n\n"])


async def test_models_lists_the_catalog_with_what_connected_miners_offer(target: str, keys: Keys) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        models = models_pb2_grpc.ModelServiceStub(channel)

        async def offers() -> dict[str, tuple[int, int]]:
            listed = await models.ListModels(models_pb2.ListModelsRequest(), metadata=key(keys.client))
            assert listed.object == "list"
            return {m.id: (m.miners, m.free_slots) for m in listed.data}

        idle = await offers()
        assert idle["tiny"] == idle["llama-3.2-1b-instruct"] == (0, 0)
        async with ScriptedMiner(target, keys.miner) as a, ScriptedMiner(target, keys.miner) as b:
            await a.hello("a", ["tiny", "llama3.2"], max_concurrency=2)
            await b.hello("b", ["tiny"], max_concurrency=1)
            busy = await offers()
        assert busy["llama-3.2-1b-instruct"] == (1, 2)  # advertised by its alias
        assert busy["tiny"] == (2, 3)
        await expect_error(
            models.ListModels(models_pb2.ListModelsRequest()), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"
        )


async def test_a_miner_serving_no_catalog_model_is_refused(target: str, keys: Keys) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.send(
            miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="odd", models=["mystery"], max_concurrency=1))
        )
        assert await miner.status() == grpc.StatusCode.INVALID_ARGUMENT
