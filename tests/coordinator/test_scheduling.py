"""Scheduling features over real gRPC: idempotent submits, TTL expiry."""

from __future__ import annotations

import asyncio
from typing import TypeAlias

import grpc
from google.protobuf import duration_pb2

from aitbc.v1 import jobs_pb2 as S
from aitbc.v1 import jobs_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import collect, expect_error, key

Jobs: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"


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


async def test_idempotency_key_reused_for_a_different_request(keys: Keys, jobs_stub: Jobs) -> None:
    first = S.SubmitJobRequest(queue_if_unavailable=True, prompt="one thing", model="m", idempotency_key="k")
    await jobs_stub.SubmitJob(first, metadata=key(keys.client))
    other = S.SubmitJobRequest(queue_if_unavailable=True, prompt="another thing", model="m", idempotency_key="k")
    info = await expect_error(
        jobs_stub.SubmitJob(other, metadata=key(keys.client)), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
    )
    assert info.metadata["field"] == "idempotency_key"


async def test_a_job_nobody_picks_up_expires(keys: Keys, jobs_stub: Jobs) -> None:
    request = S.SubmitJobRequest(
        queue_if_unavailable=True, prompt="anyone?", model="m", ttl=duration_pb2.Duration(seconds=1)
    )
    job = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job
    assert job.expires_at.ToDatetime() > job.created_at.ToDatetime()
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
