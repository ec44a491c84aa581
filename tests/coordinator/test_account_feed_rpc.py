"""`JobService.WatchAccountJobs` over real gRPC on loopback: two keys of one account, another account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

import grpc
import pytest

from aitbc.coordinator.auth import create_api_key
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import expect_error, key
from tests.support.scripted_miner import ScriptedMiner

Stub: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"
S = jobs_pb2
RECEIVE_TIMEOUT = 10.0


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


def describe(update: S.WatchAccountJobsResponse) -> str:
    kind = update.WhichOneof("update")
    if kind == "event":
        return f"{update.job_id}: {S.JobState.Name(update.event.state_change.status)}"
    if kind == "progress":
        return f"{update.job_id}: progress"
    return str(kind)


async def test_a_second_key_of_the_account_sees_the_jobs_the_first_submits(
    coordinator: RunningCoordinator, target: str, keys: Keys, jobs_stub: Stub
) -> None:
    now = datetime.now(UTC)
    submitter, _ = await create_api_key(coordinator.store, Role.CLIENT, now, owner_id="acme")
    watcher, _ = await create_api_key(coordinator.store, Role.CLIENT, now, owner_id="acme")
    feed_call = jobs_stub.WatchAccountJobs(S.WatchAccountJobsRequest(), metadata=key(watcher))
    outsider_call = jobs_stub.WatchAccountJobs(S.WatchAccountJobsRequest(), metadata=key(keys.client))
    feed, outsider = aiter(feed_call), aiter(outsider_call)
    try:
        first = await asyncio.wait_for(anext(feed), RECEIVE_TIMEOUT)
        assert first.WhichOneof("update") == "started"
        assert first.started.seconds > 0
        assert (await asyncio.wait_for(anext(outsider), RECEIVE_TIMEOUT)).WhichOneof("update") == "started"

        async with ScriptedMiner(target, keys.miner) as miner:
            await miner.hello("m1", ["tiny"])
            request = S.SubmitJobRequest(prompt="Hello", model="tiny", params=S.SamplingParams(max_tokens=4))
            job = (await jobs_stub.SubmitJob(request, metadata=key(submitter))).job
            await miner.expect("assign")
            await miner.started(job.job_id, 1)
            await miner.tokens(job.job_id, 1, "Hi")
            await miner.done(job.job_id, 1, "Hi", completion_tokens=1)
            seen: list[str] = []
            while not seen or seen[-1] != f"{job.job_id}: JOB_STATE_COMPLETED":
                seen.append(describe(await asyncio.wait_for(anext(feed), RECEIVE_TIMEOUT)))
        assert seen == [
            f"{job.job_id}: JOB_STATE_PENDING",
            f"{job.job_id}: JOB_STATE_ASSIGNED",
            f"{job.job_id}: JOB_STATE_RUNNING",
            f"{job.job_id}: progress",
            f"{job.job_id}: JOB_STATE_COMPLETED",
        ]
        # The other account's feed heard none of it: the first it hears of is its own account's job.
        request = S.SubmitJobRequest(prompt="Mine", model="tiny", queue_if_unavailable=True)
        own = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
        assert describe(await asyncio.wait_for(anext(outsider), RECEIVE_TIMEOUT)) == f"{own.job_id}: JOB_STATE_PENDING"
    finally:
        feed_call.cancel()
        outsider_call.cancel()


async def test_a_miner_key_may_not_watch_an_account(keys: Keys, jobs_stub: Stub) -> None:
    feed = aiter(jobs_stub.WatchAccountJobs(S.WatchAccountJobsRequest(), metadata=key(keys.miner)))
    await expect_error(anext(feed), grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
