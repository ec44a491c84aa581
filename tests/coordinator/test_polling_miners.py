"""The seed's polling miner API over gRPC, sharing the queue with streaming miners; leases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.v1 import jobs_pb2 as S
from aitbc.v1 import jobs_pb2_grpc, miner_pb2, miner_pb2_grpc, network_pb2, network_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import collect, expect_error, key, until_event
from tests.support.scripted_miner import STEP_TIMEOUT, ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


Jobs: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"
Miners: TypeAlias = "miner_pb2_grpc.MinerServiceAsyncStub"
M = miner_pb2


@pytest.fixture
async def miners_stub(target: str) -> AsyncIterator[Miners]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield miner_pb2_grpc.MinerServiceStub(channel)


async def register(stub: Miners, miner_key: str, miner_id: str = "poller", slots: int = 1) -> M.RegisterMinerResponse:
    request = M.RegisterMinerRequest(
        miner_id=miner_id,
        capabilities=["llama3.2", "codellama"],
        gpu_info=M.GpuSummary(name="NVIDIA RTX 4090", memory="24GB"),
        max_concurrency=slots,
    )
    return await stub.RegisterMiner(request, metadata=key(miner_key))


async def submit(stub: Jobs, client_key: str, prompt: str = "Hello, world!", model: str = "llama3.2") -> str:
    job = (
        await stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt=prompt, model=model), metadata=key(client_key)
        )
    ).job
    return job.job_id


async def test_register_list_claim_complete(keys: Keys, jobs_stub: Jobs, miners_stub: Miners) -> None:
    registered = await register(miners_stub, keys.miner)
    assert registered.miner_id == "poller"
    assert registered.heartbeat_interval.ToTimedelta().total_seconds() > 0
    first = await submit(jobs_stub, keys.client, "first")
    second = await submit(jobs_stub, keys.client, "second")
    await submit(jobs_stub, keys.client, "other model", model="tiny")

    available = await miners_stub.ListAvailableJobs(
        M.ListAvailableJobsRequest(miner_id="poller"), metadata=key(keys.miner)
    )
    assert [job.job_id for job in available.jobs] == [first, second]  # oldest first, only models it serves
    assert available.jobs[0].prompt == "first"

    claimed = await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=first, miner_id="poller"), metadata=key(keys.miner))
    assert (claimed.assignment.job_id, claimed.assignment.attempt) == (first, 1)
    running = (await jobs_stub.GetJob(S.GetJobRequest(job_id=first), metadata=key(keys.client))).job
    assert (running.status, running.miner_id) == (S.JOB_STATE_RUNNING, "poller")

    done = await miners_stub.CompleteJob(
        M.CompleteJobRequest(job_id=first, miner_id="poller", result="The generated output...", completion_tokens=4),
        metadata=key(keys.miner),
    )
    assert done.status == S.JOB_STATE_COMPLETED
    events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=first), metadata=key(keys.client)))
    assert "".join(e.tokens.text for e in events) == "The generated output..."
    final = (await jobs_stub.GetJob(S.GetJobRequest(job_id=first), metadata=key(keys.client))).job
    assert (final.result, final.usage.completion_tokens, final.finish_reason) == ("The generated output...", 4, "stop")


async def test_racing_claims_exactly_one_wins(keys: Keys, jobs_stub: Jobs, miners_stub: Miners) -> None:
    await register(miners_stub, keys.miner, "a")
    await register(miners_stub, keys.miner, "b")
    job_id = await submit(jobs_stub, keys.client)
    results = await asyncio.gather(
        *(
            miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id=miner), metadata=key(keys.miner))
            for miner in ("a", "b")
        ),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, M.ClaimJobResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert len(losses) == 1
    assert losses[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    again = miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="a"), metadata=key(keys.miner))
    await expect_error(again, grpc.StatusCode.FAILED_PRECONDITION, "JOB_NOT_CLAIMABLE")


async def test_polling_and_streaming_miners_share_the_queue(
    target: str, keys: Keys, jobs_stub: Jobs, miners_stub: Miners
) -> None:
    await register(miners_stub, keys.miner, "poller")
    job_id = await submit(jobs_stub, keys.client)
    # Nothing is pushed to a polling miner: the job waits for a claim or a streaming miner.
    async with ScriptedMiner(target, keys.miner) as streaming:
        await streaming.hello("streamer", ["llama3.2"])
        assign = (await streaming.expect("assign")).assign
        assert assign.job_id == job_id
        listed = await miners_stub.ListAvailableJobs(
            M.ListAvailableJobsRequest(miner_id="poller"), metadata=key(keys.miner)
        )
        assert list(listed.jobs) == []


async def test_cancel_reaches_a_polling_miner_as_lease_lost(keys: Keys, jobs_stub: Jobs, miners_stub: Miners) -> None:
    await register(miners_stub, keys.miner)
    job_id = await submit(jobs_stub, keys.client)
    await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="poller"), metadata=key(keys.miner))
    canceled = await jobs_stub.CancelJob(S.CancelJobRequest(job_id=job_id), metadata=key(keys.client))
    assert canceled.job.status == S.JOB_STATE_CANCELED
    beat = await miners_stub.MinerHeartbeat(M.MinerHeartbeatRequest(miner_id="poller"), metadata=key(keys.miner))
    assert list(beat.job_ids) == []
    late = miners_stub.CompleteJob(
        M.CompleteJobRequest(job_id=job_id, miner_id="poller", result="too late"), metadata=key(keys.miner)
    )
    await expect_error(late, grpc.StatusCode.FAILED_PRECONDITION, "LEASE_LOST")


async def test_retryable_failure_requeues(keys: Keys, jobs_stub: Jobs, miners_stub: Miners) -> None:
    await register(miners_stub, keys.miner)
    job_id = await submit(jobs_stub, keys.client)
    await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="poller"), metadata=key(keys.miner))
    failed = await miners_stub.FailJob(
        M.FailJobRequest(job_id=job_id, miner_id="poller", error="CUDA out of memory", retryable=True),
        metadata=key(keys.miner),
    )
    assert failed.status == S.JOB_STATE_PENDING
    again = await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="poller"), metadata=key(keys.miner))
    assert again.assignment.attempt == 2


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (M.RegisterMinerRequest(miner_id="", capabilities=["m"]), "miner_id"),
        (M.RegisterMinerRequest(miner_id="m", capabilities=[]), "capabilities"),
        (M.RegisterMinerRequest(miner_id="m", capabilities=["m"], max_concurrency=-1), "max_concurrency"),
        (
            M.RegisterMinerRequest(miner_id="m", capabilities=["m"], gpu_info=M.GpuSummary(memory="lots")),
            "gpu_info.memory",
        ),
    ],
)
async def test_bad_registration_names_the_field(
    keys: Keys, miners_stub: Miners, request_: M.RegisterMinerRequest, field: str
) -> None:
    info = await expect_error(
        miners_stub.RegisterMiner(request_, metadata=key(keys.miner)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert info.metadata["field"] == field


async def test_unregistered_miner_and_wrong_roles(keys: Keys, jobs_stub: Jobs, miners_stub: Miners) -> None:
    job_id = await submit(jobs_stub, keys.client)
    claim = miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="ghost"), metadata=key(keys.miner))
    await expect_error(claim, grpc.StatusCode.NOT_FOUND, "MINER_NOT_FOUND")
    as_client = miners_stub.RegisterMiner(
        M.RegisterMinerRequest(miner_id="x", capabilities=["m"]), metadata=key(keys.client)
    )
    await expect_error(as_client, grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    await register(miners_stub, keys.miner, slots=1)
    await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="poller"), metadata=key(keys.miner))
    second = await submit(jobs_stub, keys.client)
    full = miners_stub.ClaimJob(M.ClaimJobRequest(job_id=second, miner_id="poller"), metadata=key(keys.miner))
    await expect_error(full, grpc.StatusCode.RESOURCE_EXHAUSTED, "MINER_AT_CAPACITY")
    missing = miners_stub.ClaimJob(M.ClaimJobRequest(job_id="job_nope", miner_id="poller"), metadata=key(keys.miner))
    await expect_error(missing, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")


LEASE = CoordinatorConfig().lease_timeout


async def until_draining(target: str, api_key: str, miner_id: str, draining: bool) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = network_pb2_grpc.NetworkServiceStub(channel)
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                listed = await stub.ListMiners(network_pb2.ListMinersRequest(), metadata=key(api_key))
                if any(m.miner_id == miner_id and m.draining == draining for m in listed.miners):
                    return


class TestLeases:
    """Time moves only when a test advances the coordinator's clock: no test waits for a lease in real time."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    async def test_a_hung_streaming_miner_loses_its_job(
        self, target: str, keys: Keys, jobs_stub: Jobs, clock: ManualClock
    ) -> None:
        job_id = await submit(jobs_stub, keys.client, model="m")
        hung = ScriptedMiner(target, keys.miner)
        await hung.hello("hung", ["m"])
        await hung.expect("assign")
        await hung.tokens(job_id, 1, "partial")
        await until_event(jobs_stub, keys.client, job_id, lambda event: event.tokens.text == "partial")
        await clock.advance(LEASE - 0.5)
        assert not hung.finished(), "the lease ran out early"
        # It stays connected but says nothing more: its lease runs out and its stream is closed.
        await clock.advance(1.0)
        assert await hung.status() == grpc.StatusCode.OK
        async with ScriptedMiner(target, keys.miner) as healthy:
            await healthy.hello("healthy", ["m"])
            assign = (await healthy.expect("assign")).assign
            assert (assign.job_id, assign.attempt, assign.resume_text) == (job_id, 2, "partial")
        await hung.close()

    async def test_heartbeats_keep_the_lease(
        self, target: str, keys: Keys, jobs_stub: Jobs, clock: ManualClock
    ) -> None:
        job_id = await submit(jobs_stub, keys.client, model="m")
        async with ScriptedMiner(target, keys.miner) as alive:
            await alive.hello("alive", ["m"])
            await alive.expect("assign")
            for beat in range(3 * int(LEASE)):  # three leases long, one beat a second
                # Each beat flips `draining`, so the test can see that the coordinator took it before time moves on.
                await alive.send(M.ConnectRequest(heartbeat=M.Heartbeat(draining=beat % 2 == 0)))
                await until_draining(target, keys.client, "alive", beat % 2 == 0)
                await clock.advance(1.0)
            await alive.done(job_id, 1, "kept", completion_tokens=1)
            events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job_id), metadata=key(keys.client)))
        assert events[-1].state_change.status == S.JOB_STATE_COMPLETED
        assert events[-1].state_change.attempt == 1

    async def test_a_silent_polling_miner_is_forgotten(
        self, keys: Keys, jobs_stub: Jobs, miners_stub: Miners, clock: ManualClock
    ) -> None:
        await register(miners_stub, keys.miner)
        job_id = await submit(jobs_stub, keys.client)
        await miners_stub.ClaimJob(M.ClaimJobRequest(job_id=job_id, miner_id="poller"), metadata=key(keys.miner))
        await clock.advance(LEASE + 0.1)
        events = jobs_stub.WatchJob(S.WatchJobRequest(job_id=job_id, from_seq=4), metadata=key(keys.client))
        requeued = await anext(aiter(events))
        assert requeued.state_change.status == S.JOB_STATE_PENDING
        assert "no heartbeat" in requeued.state_change.error
        late = miners_stub.CompleteJob(
            M.CompleteJobRequest(job_id=job_id, miner_id="poller", result="x"), metadata=key(keys.miner)
        )
        await expect_error(late, grpc.StatusCode.NOT_FOUND, "MINER_NOT_FOUND")
