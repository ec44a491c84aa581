"""ResultService over real gRPC: the public method needs no key, the others do; a download names its file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from aitbc.v1 import jobs_pb2, jobs_pb2_grpc, results_pb2, results_pb2_grpc
from tests.conftest import Keys
from tests.support.rpc import expect_error, key, until_event
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


@pytest.fixture
async def results_stub(target: str) -> AsyncIterator[results_pb2_grpc.ResultServiceAsyncStub]:
    async with grpc.aio.insecure_channel(target) as channel:
        yield results_pb2_grpc.ResultServiceStub(channel)


async def completed_job(target: str, keys: Keys, jobs_stub: jobs_pb2_grpc.JobServiceAsyncStub) -> str:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("m1", ["tiny"], max_concurrency=1)
        request = jobs_pb2.SubmitJobRequest(prompt="hi", model="tiny")
        job_id = (await jobs_stub.SubmitJob(request, metadata=key(keys.client))).job.job_id
        await miner.expect("assign")
        await miner.done(job_id, 1, "hello there", completion_tokens=2)
        await until_event(
            jobs_stub,
            keys.client,
            job_id,
            lambda event: event.state_change.status == jobs_pb2.JOB_STATE_COMPLETED,
        )
    return job_id


async def test_the_shared_result_needs_no_key_and_everything_else_does(
    target: str,
    keys: Keys,
    jobs_stub: jobs_pb2_grpc.JobServiceAsyncStub,
    results_stub: results_pb2_grpc.ResultServiceAsyncStub,
) -> None:
    job_id = await completed_job(target, keys, jobs_stub)
    call = results_stub.DownloadJobResult(
        results_pb2.DownloadJobResultRequest(job_id=job_id, format="txt"), metadata=key(keys.client)
    )
    body = await call
    assert (body.content_type, body.data) == ("text/plain; charset=utf-8", b"hello there")
    disposition = dict(await call.initial_metadata())["content-disposition"]
    assert disposition == f'attachment; filename="job_{job_id.removeprefix("job_")}.txt"'

    created = await results_stub.CreateShareLink(
        results_pb2.CreateShareLinkRequest(job_id=job_id), metadata=key(keys.client)
    )
    shared = await results_stub.GetSharedResult(results_pb2.GetSharedResultRequest(token=created.token))
    assert (shared.job_id, shared.status, shared.result) == (job_id, "completed", "hello there")
    # A key sent along changes nothing, even one that is no key at all.
    again = await results_stub.GetSharedResult(
        results_pb2.GetSharedResultRequest(token=created.token), metadata=key("not-a-key")
    )
    assert again == shared
    await expect_error(
        results_stub.GetSharedResult(results_pb2.GetSharedResultRequest(token="share_nope")),
        grpc.StatusCode.NOT_FOUND,
        "SHARE_LINK_NOT_FOUND",
    )
    await expect_error(
        results_stub.ListShareLinks(results_pb2.ListShareLinksRequest(job_id=job_id)),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )
    await expect_error(
        results_stub.DownloadJobResult(results_pb2.DownloadJobResultRequest(job_id=""), metadata=key(keys.client)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    await expect_error(
        results_stub.DeleteJobResult(results_pb2.DeleteJobResultRequest(job_id=job_id), metadata=key(keys.miner)),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    deleted = await results_stub.DeleteJobResult(
        results_pb2.DeleteJobResultRequest(job_id=job_id), metadata=key(keys.client)
    )
    assert deleted.deleted_at.seconds > 0
    await expect_error(
        results_stub.GetSharedResult(results_pb2.GetSharedResultRequest(token=created.token)),
        grpc.StatusCode.NOT_FOUND,
        "RESULT_DELETED",
    )
