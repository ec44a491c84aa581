"""History listing, concurrent clients, racing cancels and restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest

from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.v1 import jobs_pb2 as S
from aitbc.v1 import jobs_pb2_grpc
from tests.conftest import TEST_CATALOG, Keys
from tests.support.rpc import collect, key
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


Stub: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"


async def test_list_pages_newest_first_with_status_filter(keys: Keys, jobs_stub: Stub) -> None:
    submitted = [
        (
            await jobs_stub.SubmitJob(
                S.SubmitJobRequest(queue_if_unavailable=True, prompt=f"job {n}"), metadata=key(keys.client)
            )
        ).job.job_id
        for n in range(7)
    ]
    await jobs_stub.CancelJob(S.CancelJobRequest(job_id=submitted[2]), metadata=key(keys.client))
    listed: list[str] = []
    token = ""
    while True:
        page = await jobs_stub.ListJobs(S.ListJobsRequest(limit=3, page_token=token), metadata=key(keys.client))
        assert len(page.jobs) <= 3
        listed += [job.job_id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert listed == submitted[::-1]
    canceled = await jobs_stub.ListJobs(S.ListJobsRequest(status=S.JOB_STATE_CANCELED), metadata=key(keys.client))
    assert [job.job_id for job in canceled.jobs] == [submitted[2]]


async def test_two_clients_racing(target: str, keys: Keys, jobs_stub: Stub) -> None:
    async def burst(client_key: str, count: int) -> list[str]:
        replies = await asyncio.gather(
            *(
                jobs_stub.SubmitJob(
                    S.SubmitJobRequest(queue_if_unavailable=True, prompt=f"p{n}", model="m"), metadata=key(client_key)
                )
                for n in range(count)
            )
        )
        return [reply.job.job_id for reply in replies]

    mine, theirs = await asyncio.gather(burst(keys.client, 20), burst(keys.other_client, 20))
    assert len(set(mine) | set(theirs)) == 40
    for client_key, expected in ((keys.client, mine), (keys.other_client, theirs)):
        listed = await jobs_stub.ListJobs(S.ListJobsRequest(limit=100), metadata=key(client_key))
        assert sorted(job.job_id for job in listed.jobs) == sorted(expected)

    # Both clients' jobs all complete on one miner with four slots.
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m", ["m"], max_concurrency=4)
        for _ in range(40):
            assign = (await miner.expect("assign")).assign
            await miner.done(assign.job_id, assign.attempt, f"out {assign.job_id}", completion_tokens=2)
        for job_id, client_key in [*((j, keys.client) for j in mine), *((j, keys.other_client) for j in theirs)]:
            events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job_id), metadata=key(client_key)))
            assert events[-1].state_change.status == S.JOB_STATE_COMPLETED
            assert "".join(e.tokens.text for e in events) == f"out {job_id}"


async def test_racing_cancels_exactly_one_wins(keys: Keys, jobs_stub: Stub) -> None:
    job = (
        await jobs_stub.SubmitJob(S.SubmitJobRequest(queue_if_unavailable=True, prompt="x"), metadata=key(keys.client))
    ).job
    results = await asyncio.gather(
        *(jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.client)) for _ in range(5)),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, S.CancelJobResponse)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1
    assert len(losses) == 4
    assert all(loss.code() == grpc.StatusCode.FAILED_PRECONDITION for loss in losses)
    events = await collect(jobs_stub.WatchJob(S.WatchJobRequest(job_id=job.job_id), metadata=key(keys.client)))
    assert [e.state_change.status for e in events] == [S.JOB_STATE_PENDING, S.JOB_STATE_CANCELED]


async def test_acknowledged_jobs_survive_a_restart(database: Path, keys: Keys, coordinator: RunningCoordinator) -> None:
    target = f"127.0.0.1:{coordinator.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        queued = (
            await stub.SubmitJob(
                S.SubmitJobRequest(queue_if_unavailable=True, prompt="queued", model="m"), metadata=key(keys.client)
            )
        ).job
        running = (
            await stub.SubmitJob(
                S.SubmitJobRequest(queue_if_unavailable=True, prompt="running", model="m"), metadata=key(keys.client)
            )
        ).job
        miner = ScriptedMiner(target, keys.miner)
        await miner.hello("m", ["m"])
        await miner.expect("assign")
        await miner.tokens(queued.job_id, 1, "partial")
        # Wait until the token is stored, then stop the coordinator under the miner.
        async for event in stub.WatchJob(
            S.WatchJobRequest(job_id=queued.job_id, from_seq=3), metadata=key(keys.client)
        ):
            if event.WhichOneof("event") == "tokens":
                break
    await coordinator.stop(grace=0.1)
    await miner.close()

    restarted = await start_coordinator(database, "127.0.0.1:0", CoordinatorConfig(catalog=TEST_CATALOG))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            for job in (queued, running):
                again = (await stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.client))).job
                assert again.status == S.JOB_STATE_PENDING
            async with ScriptedMiner(f"127.0.0.1:{restarted.port}", keys.miner) as fresh:
                await fresh.hello("fresh", ["m"])
                assign = (await fresh.expect("assign")).assign
                assert (assign.job_id, assign.attempt, assign.resume_text) == (queued.job_id, 2, "partial")
    finally:
        await restarted.stop(grace=0.1)
