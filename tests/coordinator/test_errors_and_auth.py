"""Bad input and bad credentials get the right status and reason, and break nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest

from aitbc.v1 import jobs_pb2 as S
from aitbc.v1 import jobs_pb2_grpc, miner_pb2
from tests.conftest import Keys
from tests.support.rpc import expect_error, key
from tests.support.scripted_miner import ScriptedMiner


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


Stub: TypeAlias = "jobs_pb2_grpc.JobServiceAsyncStub"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (S.SubmitJobRequest(queue_if_unavailable=True, prompt="", model="m"), "prompt"),
        (S.SubmitJobRequest(queue_if_unavailable=True, prompt="   \n", model="m"), "prompt"),
        (S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", model="bad model!"), "model"),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(max_tokens=0)),
            "params.max_tokens",
        ),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(max_tokens=100_000)),
            "params.max_tokens",
        ),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(temperature=2.5)),
            "params.temperature",
        ),
        (
            S.SubmitJobRequest(
                queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(temperature=float("nan"))
            ),
            "params.temperature",
        ),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(top_p=0.0)),
            "params.top_p",
        ),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(top_p=1.5)),
            "params.top_p",
        ),
        (
            S.SubmitJobRequest(
                queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(stop=["a", "b", "c", "d", "e"])
            ),
            "params.stop",
        ),
        (S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", params=S.SamplingParams(stop=[""])), "params.stop"),
        (
            S.SubmitJobRequest(
                queue_if_unavailable=True, prompt="hi", messages=[S.ChatMessage(role="user", content="hi")]
            ),
            "prompt",
        ),
        (
            S.SubmitJobRequest(queue_if_unavailable=True, messages=[S.ChatMessage(role="robot", content="hi")]),
            "messages[0].role",
        ),
        (
            S.SubmitJobRequest(
                queue_if_unavailable=True,
                messages=[S.ChatMessage(role="user", content="q"), S.ChatMessage(role="assistant", content="a")],
            ),
            "messages",
        ),
        (
            S.SubmitJobRequest(
                queue_if_unavailable=True, messages=[S.ChatMessage(role="user", content="hi")], raw=True
            ),
            "raw",
        ),
    ],
)
async def test_invalid_submit_names_the_field(
    keys: Keys, jobs_stub: Stub, request_: S.SubmitJobRequest, field: str
) -> None:
    info = await expect_error(
        jobs_stub.SubmitJob(request_, metadata=key(keys.client)), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
    )
    assert info.metadata["field"] == field
    page = await jobs_stub.ListJobs(S.ListJobsRequest(), metadata=key(keys.client))
    assert list(page.jobs) == []  # nothing was stored


async def test_boundary_params_are_accepted(keys: Keys, jobs_stub: Stub) -> None:
    params = S.SamplingParams(max_tokens=1, temperature=0.0, top_p=1.0)
    job = (
        await jobs_stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="x", params=params), metadata=key(keys.client)
        )
    ).job
    assert (job.params.max_tokens, job.params.temperature, job.params.top_p) == (1, 0.0, 1.0)
    assert job.model == "llama-3.2-1b-instruct"  # the seed's default model, llama3.2, resolved


async def test_unknown_job_is_not_found(keys: Keys, jobs_stub: Stub) -> None:
    for call in (
        jobs_stub.GetJob(S.GetJobRequest(job_id="job_nope"), metadata=key(keys.client)),
        jobs_stub.CancelJob(S.CancelJobRequest(job_id="job_nope"), metadata=key(keys.client)),
    ):
        info = await expect_error(call, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
        assert info.metadata["field"] == "job_id"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in jobs_stub.WatchJob(S.WatchJobRequest(job_id="job_nope"), metadata=key(keys.client)):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_missing_job_id_is_invalid(keys: Keys, jobs_stub: Stub) -> None:
    info = await expect_error(
        jobs_stub.GetJob(S.GetJobRequest(), metadata=key(keys.client)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert info.metadata["field"] == "job_id"


async def test_another_clients_job_looks_missing(keys: Keys, jobs_stub: Stub) -> None:
    job = (
        await jobs_stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="mine"), metadata=key(keys.client)
        )
    ).job
    for call in (
        jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.other_client)),
        jobs_stub.CancelJob(S.CancelJobRequest(job_id=job.job_id), metadata=key(keys.other_client)),
    ):
        await expect_error(call, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    theirs = await jobs_stub.ListJobs(S.ListJobsRequest(), metadata=key(keys.other_client))
    assert list(theirs.jobs) == []
    # An admin sees every job.
    seen = await jobs_stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key(keys.admin))
    assert seen.job.job_id == job.job_id


@pytest.mark.parametrize("metadata", [(), (("x-api-key", "aitbc_client_wrong"),), (("x-api-key", ""),)])
async def test_bad_key_is_unauthenticated(jobs_stub: Stub, keys: Keys, metadata: tuple[tuple[str, str], ...]) -> None:
    await expect_error(
        jobs_stub.SubmitJob(S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi"), metadata=metadata),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )


async def test_the_standard_bearer_metadata_carries_the_key(jobs_stub: Stub, keys: Keys) -> None:
    request = S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi")
    submitted = await jobs_stub.SubmitJob(request, metadata=(("authorization", f"Bearer {keys.client}"),))
    assert submitted.job.status == S.JOB_STATE_PENDING
    for wrong in (f"Basic {keys.client}", "Bearer ", f"Bearer{keys.client}"):
        refused = jobs_stub.SubmitJob(request, metadata=(("authorization", wrong),))
        await expect_error(refused, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_miner_key_cannot_submit(keys: Keys, jobs_stub: Stub) -> None:
    await expect_error(
        jobs_stub.SubmitJob(S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi"), metadata=key(keys.miner)),
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )


async def test_client_key_cannot_mine(target: str, keys: Keys) -> None:
    async with ScriptedMiner(target, keys.client) as miner:
        await miner.send(
            miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="m", models=["x"], max_concurrency=1))
        )
        assert await miner.status() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "first",
    [
        miner_pb2.ConnectRequest(heartbeat=miner_pb2.Heartbeat()),
        miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="m", models=[], max_concurrency=1)),
        miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="m", models=["x"], max_concurrency=0)),
        miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="bad id!", models=["x"], max_concurrency=1)),
    ],
)
async def test_bad_miner_hello_is_rejected(target: str, keys: Keys, first: miner_pb2.ConnectRequest) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.send(first)
        assert await miner.status() == grpc.StatusCode.INVALID_ARGUMENT


def _hello(**changes: object) -> miner_pb2.MinerHello:
    hello = miner_pb2.MinerHello(miner_id="m", models=["x"], max_concurrency=1)
    for name, value in changes.items():
        if isinstance(value, list):
            getattr(hello, name).extend(value)
        else:
            setattr(hello, name, value)
    return hello


@pytest.mark.parametrize(
    ("hello", "field"),
    [
        (_hello(prices=[miner_pb2.ModelPrice(model="x", input_per_1k=-1000, output_per_1k=1)]), "hello.prices"),
        (_hello(prices=[miner_pb2.ModelPrice(model="x", input_per_1k=1, output_per_1k=1 << 62)]), "hello.prices"),
        (_hello(prices=[miner_pb2.ModelPrice(model="x", input_per_1k=-1)]), "hello.prices"),
        (_hello(gpus=[miner_pb2.GpuInfo(name="g", vram_bytes=-1, count=1)]), "hello.gpus"),
        (_hello(gpus=[miner_pb2.GpuInfo(name="g", vram_bytes=1 << 60, count=1)]), "hello.gpus"),
        (_hello(gpus=[miner_pb2.GpuInfo(name="g", vram_bytes=1 << 30, count=0)]), "hello.gpus"),
        (_hello(max_concurrency=-5), "hello.max_concurrency"),
        (_hello(backend="b" * 1000), "hello.backend"),
        (_hello(public_key=b"not 32 bytes"), "hello.public_key"),
    ],
)
async def test_numbers_a_miner_sends_must_be_finite_and_in_range(
    target: str, keys: Keys, hello: miner_pb2.MinerHello, field: str
) -> None:
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.send(miner_pb2.ConnectRequest(hello=hello))
        assert await miner.status() == grpc.StatusCode.INVALID_ARGUMENT
        assert await miner.error_field() == field


async def test_protocol_error_mid_stream_requeues_the_job(target: str, keys: Keys, jobs_stub: Stub) -> None:
    job = (
        await jobs_stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", model="x"), metadata=key(keys.client)
        )
    ).job
    async with ScriptedMiner(target, keys.miner) as bad:
        await bad.hello("bad", ["x"])
        await bad.expect("assign")
        await bad.send(
            miner_pb2.ConnectRequest(hello=miner_pb2.MinerHello(miner_id="bad", models=["x"], max_concurrency=1))
        )
        assert await bad.status() == grpc.StatusCode.INVALID_ARGUMENT
    async with ScriptedMiner(target, keys.miner) as good:
        await good.hello("good", ["x"])
        assign = (await good.expect("assign")).assign
        assert (assign.job_id, assign.attempt) == (job.job_id, 2)


async def test_list_rejects_bad_arguments(keys: Keys, jobs_stub: Stub) -> None:
    for request, field in (
        (S.ListJobsRequest(limit=5000), "limit"),
        (S.ListJobsRequest(limit=-1), "limit"),
        (S.ListJobsRequest(page_token="%%%not-a-token"), "page_token"),
    ):
        info = await expect_error(
            jobs_stub.ListJobs(request, metadata=key(keys.client)), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
        )
        assert info.metadata["field"] == field


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (miner_pb2.ConnectRequest(started=miner_pb2.JobStarted(attempt=1, prompt_tokens=-1)), "started.prompt_tokens"),
        (miner_pb2.ConnectRequest(done=miner_pb2.JobDone(attempt=1, completion_tokens=-5)), "done.completion_tokens"),
        (miner_pb2.ConnectRequest(done=miner_pb2.JobDone(attempt=1, prompt_tokens=1 << 30)), "done.prompt_tokens"),
    ],
)
async def test_token_counts_a_miner_reports_must_be_in_range(
    target: str, keys: Keys, jobs_stub: Stub, report: miner_pb2.ConnectRequest, field: str
) -> None:
    job = (
        await jobs_stub.SubmitJob(
            S.SubmitJobRequest(queue_if_unavailable=True, prompt="hi", model="x"), metadata=key(keys.client)
        )
    ).job
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("counting", ["x"])
        await miner.expect("assign")
        which = report.WhichOneof("msg")
        getattr(report, which).job_id = job.job_id
        await miner.send(report)
        assert await miner.status() == grpc.StatusCode.INVALID_ARGUMENT
        assert await miner.error_field() == field
