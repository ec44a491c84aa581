"""Scheduling features over real gRPC: idempotent submits, TTL expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.v1 import jobs_pb2 as S
from aitbc.v1 import jobs_pb2_grpc, miner_pb2, network_pb2, network_pb2_grpc
from tests.conftest import TEST_CATALOG, Keys
from tests.support.rpc import collect, error_info, expect_error, key
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


Jobs: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"


def retry_delay(error: grpc.aio.AioRpcError) -> float:
    for name, value in error.trailing_metadata() or ():
        if name == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                retry = error_details_pb2.RetryInfo()
                if detail.Unpack(retry):
                    seconds: float = retry.retry_delay.ToTimedelta().total_seconds()
                    return seconds
    pytest.fail("no RetryInfo")


async def test_idempotency_key_returns_the_same_job(keys: Keys, jobs_stub: Jobs) -> None:
    request = S.SubmitJobRequest(
        queue_if_unavailable=True, prompt="charge me once", model="m", idempotency_key="order-42"
    )
    replies = await asyncio.gather(*(jobs_stub.SubmitJob(request, metadata=key(keys.client)) for _ in range(5)))
    assert len({reply.job.job_id for reply in replies}) == 1
    listed = await jobs_stub.ListJobs(S.ListJobsRequest(), metadata=key(keys.client))
    assert len(listed.jobs) == 1
    assert listed.jobs[0].idempotency_key == "order-42"
    # Keys are per client: another client's identical key is another job.
    theirs = await jobs_stub.SubmitJob(request, metadata=key(keys.other_client))
    assert theirs.job.job_id != replies[0].job.job_id


async def test_a_retry_gets_its_job_back_even_when_new_work_would_be_refused(keys: Keys, jobs_stub: Jobs) -> None:
    first = S.SubmitJobRequest(prompt="queued once", model="m", idempotency_key="k1", queue_if_unavailable=True)
    job = (await jobs_stub.SubmitJob(first, metadata=key(keys.client))).job
    # The retry forgot queue_if_unavailable and no miner is online: a new job would be 503, the retry is not.
    retry = S.SubmitJobRequest(prompt="queued once", model="m", idempotency_key="k1")
    assert (await jobs_stub.SubmitJob(retry, metadata=key(keys.client))).job.job_id == job.job_id


async def test_idempotency_key_reused_for_a_different_request(keys: Keys, jobs_stub: Jobs) -> None:
    first = S.SubmitJobRequest(queue_if_unavailable=True, prompt="one thing", model="m", idempotency_key="k")
    await jobs_stub.SubmitJob(first, metadata=key(keys.client))
    other = S.SubmitJobRequest(queue_if_unavailable=True, prompt="another thing", model="m", idempotency_key="k")
    info = await expect_error(
        jobs_stub.SubmitJob(other, metadata=key(keys.client)), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
    )
    assert info.metadata["field"] == "idempotency_key"


class TestTtl:
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    async def test_a_job_nobody_picks_up_expires(self, keys: Keys, jobs_stub: Jobs, clock: ManualClock) -> None:
        request = S.SubmitJobRequest(
            queue_if_unavailable=True, prompt="anyone?", model="m", ttl=duration_pb2.Duration(seconds=60)
        )
        job = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
        assert (job.expires_at.ToDatetime() - job.created_at.ToDatetime()).total_seconds() == 60
        await clock.advance(59.5)
        still = (await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
        assert still.status == S.JOB_STATE_PENDING
        await clock.advance(0.5)
        events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
        assert events[-1].state_change.status == S.JOB_STATE_FAILED
        assert "expired" in events[-1].state_change.error


async def test_ttl_out_of_range_is_rejected(keys: Keys, jobs_stub: Jobs) -> None:
    for ttl in (duration_pb2.Duration(nanos=1000), duration_pb2.Duration(seconds=8 * 86400)):
        request = S.SubmitJobRequest(queue_if_unavailable=True, prompt="x", ttl=ttl)
        info = await expect_error(
            jobs_stub.SubmitJob(request, metadata=key(keys.client)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert info.metadata["field"] == "ttl"


async def test_submit_reports_the_input_hash(keys: Keys, jobs_stub: Jobs) -> None:
    request = S.SubmitJobRequest(queue_if_unavailable=True, prompt="hash me", model="m")
    first = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
    second = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
    assert len(first.routing.input_hash) == 64
    assert first.routing.input_hash == second.routing.input_hash
    other = (
        await jobs_stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hash me too", model="m"), metadata=key(keys.client)
        )
    ).job
    assert other.routing.input_hash != first.routing.input_hash


def submit_request(prompt: str, model: str = "m", **fields: object) -> S.SubmitJobRequest:
    return S.SubmitJobRequest(prompt=prompt, model=model, queue_if_unavailable=True, **fields)  # type: ignore[arg-type]


async def run_jobs(miner: ScriptedMiner, count: int) -> list[str]:
    """Complete `count` assignments in the order they arrive; returns their job ids."""
    done = []
    for _ in range(count):
        assign = (await miner.expect("assign")).assign
        await miner.done(assign.job_id, assign.attempt, "ok", completion_tokens=1)
        done.append(assign.job_id)
    return done


async def until_completed(jobs_stub: Jobs, keys: Keys, job_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    request = S.GetJobRequest(job_id=job_id)
    while (await jobs_stub.GetJob(request, metadata=key(keys.client))).job.status != S.JOB_STATE_COMPLETED:
        assert asyncio.get_running_loop().time() < deadline, f"{job_id} did not complete"
        await asyncio.sleep(0.01)


async def test_routing_prefers_the_better_reputation(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    async with ScriptedMiner(target, keys.miner) as veteran, ScriptedMiner(target, keys.miner) as rookie:
        await veteran.hello("veteran", ["m"], max_concurrency=4)
        for n in range(6):  # a track record: six completions lift it above the newcomer's 5000
            await jobs_stub.SubmitJob(submit_request(f"warm-up {n}"), metadata=key(keys.client))
            [warm_up] = await run_jobs(veteran, 1)
        # The miner's reports are asynchronous: its record counts the last completion once the job shows it.
        await until_completed(jobs_stub, keys, warm_up)
        await rookie.hello("rookie", ["m"], max_concurrency=4)
        job = (await jobs_stub.SubmitJob(submit_request("who takes it?"), metadata=key(keys.client))).job
        assert (job.status, job.routing.miner_id) == (S.JOB_STATE_ASSIGNED, "veteran")
        assert job.routing.miner_reputation > 5000
        assert job.routing.estimated_cost >= 0


async def test_tiers_and_503_naming_why(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    codellama = S.SubmitJobRequest(prompt="write a sort", model="codellama")
    async with ScriptedMiner(target, keys.miner) as small:
        await small.hello("small-gpu", ["codellama"], vram_gib=8)
        info = await expect_error(
            jobs_stub.SubmitJob(codellama, metadata=key(keys.client)), grpc.StatusCode.UNAVAILABLE, "NO_ELIGIBLE_MINER"
        )
        assert info.metadata["field"] == "model"
        async with ScriptedMiner(target, keys.miner) as big:
            await big.hello("big-gpu", ["codellama"], vram_gib=24)
            job = (await jobs_stub.SubmitJob(codellama, metadata=key(keys.client))).job
            assert job.routing.miner_id == "big-gpu"
            assert job.model == "codellama-7b-instruct"


async def test_unknown_model_is_not_found(keys: Keys, jobs_stub: Jobs) -> None:
    """As OpenAI, vLLM and Ollama answer a model they do not know: 404 over HTTP."""
    info = await expect_error(
        jobs_stub.SubmitJob(submit_request("x", model="gpt-9"), metadata=key(keys.client)),
        grpc.StatusCode.NOT_FOUND,
        "MODEL_NOT_FOUND",
    )
    assert info.metadata["field"] == "model"


async def test_max_price_excludes_expensive_miners(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    async with ScriptedMiner(target, keys.miner) as pricey:
        hello = miner_pb2.MinerHello(
            miner_id="pricey",
            models=["m"],
            max_concurrency=1,
            prices=[miner_pb2.ModelPrice(model="m", input_per_1k=10_000_000, output_per_1k=10_000_000)],
        )
        await pricey.send(miner_pb2.ConnectRequest(hello=hello))
        await pricey.expect("welcome")
        capped = S.SubmitJobRequest(prompt="cheap please", model="m", max_price=10_000)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jobs_stub.SubmitJob(capped, metadata=key(keys.client))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "over max_price" in (caught.value.details() or "")
        generous = (
            await jobs_stub.SubmitJob(submit_request("fine", max_price=100_000_000), metadata=key(keys.client))
        ).job
        assert generous.routing.miner_id == "pricey"
        assert generous.routing.estimated_cost > 2_560_000  # 256 output tokens at 10 credits per 1k, in µcr


async def test_a_single_job_is_not_starved_by_a_burst(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    burst = [
        (await jobs_stub.SubmitJob(submit_request(f"a{n}"), metadata=key(keys.client))).job.job_id for n in range(40)
    ]
    lone = (await jobs_stub.SubmitJob(submit_request("b"), metadata=key(keys.other_client))).job
    assert lone.routing.queue_position <= 1
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("one-slot", ["m"], max_concurrency=1)
        first_two = await run_jobs(miner, 2)
    assert lone.job_id in first_two
    assert burst[0] in first_two


async def test_backlogged_clients_share_the_miner_evenly(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    mine = {
        (await jobs_stub.SubmitJob(submit_request(f"a{n}"), metadata=key(keys.client))).job.job_id for n in range(20)
    }
    for n in range(20):
        await jobs_stub.SubmitJob(submit_request(f"b{n}"), metadata=key(keys.other_client))
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("one-slot", ["m"], max_concurrency=1)
        order = await run_jobs(miner, 20)
    # Strict alternation: over the first 20 dispatches each client gets 10, within one job at any prefix.
    for prefix in range(1, 21):
        share = sum(job in mine for job in order[:prefix])
        assert abs(share - prefix / 2) <= 1, (prefix, share)


async def test_high_priority_goes_first(target: str, keys: Keys, jobs_stub: Jobs) -> None:
    for n in range(3):
        await jobs_stub.SubmitJob(submit_request(f"low {n}", priority=S.JOB_PRIORITY_LOW), metadata=key(keys.client))
    urgent = (
        await jobs_stub.SubmitJob(submit_request("urgent", priority=S.JOB_PRIORITY_HIGH), metadata=key(keys.client))
    ).job
    assert urgent.priority == S.JOB_PRIORITY_HIGH
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("one-slot", ["m"], max_concurrency=1)
        assert (await run_jobs(miner, 1)) == [urgent.job_id]


async def test_pending_jobs_show_their_queue_position(keys: Keys, jobs_stub: Jobs) -> None:
    ids = [(await jobs_stub.SubmitJob(submit_request(f"q{n}"), metadata=key(keys.client))).job.job_id for n in range(3)]
    positions = [
        (await jobs_stub.GetJob(S.GetJobRequest(job_id=job_id), metadata=key(keys.client))).job.routing.queue_position
        for job_id in ids
    ]
    assert positions == [0, 1, 2]


class TestQueueLimits:
    @pytest.fixture
    def coordinator_config(self) -> CoordinatorConfig:
        return CoordinatorConfig(catalog=TEST_CATALOG, max_queued_per_client=3, max_queued_total=5)

    async def test_per_client_and_total_limits(self, keys: Keys, jobs_stub: Jobs) -> None:
        for n in range(3):
            await jobs_stub.SubmitJob(submit_request(f"mine {n}"), metadata=key(keys.client))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await jobs_stub.SubmitJob(submit_request("one too many"), metadata=key(keys.client))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(caught.value).reason == "QUEUE_FULL"
        assert retry_delay(caught.value) >= 1.0
        # Another client still has room, up to the total.
        for n in range(2):
            await jobs_stub.SubmitJob(submit_request(f"theirs {n}"), metadata=key(keys.other_client))
        await expect_error(
            jobs_stub.SubmitJob(submit_request("total"), metadata=key(keys.other_client)),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "QUEUE_FULL",
        )


async def test_miners_list_shows_reputation_that_survives_a_restart(
    database: Path, target: str, keys: Keys, jobs_stub: Jobs, coordinator: RunningCoordinator
) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("steady", ["m"], vram_gib=16)
        for n in range(3):
            job = (await jobs_stub.SubmitJob(submit_request(f"j{n}"), metadata=key(keys.client))).job
            await run_jobs(miner, 1)
            await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
        async with grpc.aio.insecure_channel(target) as channel:
            listed = await network_pb2_grpc.NetworkServiceStub(channel).ListMiners(
                network_pb2.ListMinersRequest(), metadata=key(keys.client)
            )
        [steady] = listed.miners
        assert (steady.online, steady.connection, steady.tier, list(steady.models)) == (True, "stream", 2, ["m"])
        assert steady.reputation.completions == pytest.approx(3, rel=1e-3)
        score = steady.reputation.score
        assert score > 5000
    await coordinator.stop(grace=0.1)
    restarted = await start_coordinator(database, "127.0.0.1:0", CoordinatorConfig(catalog=TEST_CATALOG))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            listed = await network_pb2_grpc.NetworkServiceStub(channel).ListMiners(
                network_pb2.ListMinersRequest(), metadata=key(keys.client)
            )
        [remembered] = listed.miners
        assert (remembered.miner_id, remembered.online) == ("steady", False)
        assert abs(remembered.reputation.score - score) <= 1  # a moment's decay at most
    finally:
        await restarted.stop(grace=0.1)
