"""`AsyncClient` against the fake coordinator served in the test's loop, over both transports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from aitbc.client import AitbcApiError, AsyncClient, JobStatus, StatusCode
from aitbc.v1 import jobs_pb2

from .fake_coordinator import API_KEY, SUBMITTED_JOB_ID, FakeJobService


@pytest.fixture
async def client(aio_target: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(aio_target, API_KEY, timeout=10) as client:
        yield client


async def test_submit_sends_prompt_model_and_params(client: AsyncClient, fake: FakeJobService) -> None:
    job = await client.submit_job("Explain ML", "codellama", {"max_tokens": 50}, temperature=0.5, stream=True)
    assert (job.job_id, job.status, job.model) == (SUBMITTED_JOB_ID, JobStatus.PENDING, "codellama")
    request = fake.requests[-1]
    assert isinstance(request, jobs_pb2.SubmitJobRequest)
    assert request.prompt == "Explain ML"
    assert (request.params.max_tokens, request.params.temperature, request.params.stream) == (50, 0.5, True)
    assert not request.params.HasField("top_p")


async def test_unknown_param_is_rejected_before_any_call(client: AsyncClient, fake: FakeJobService) -> None:
    with pytest.raises(ValueError, match="top_k"):
        await client.submit_job("hi", top_k=5)  # type: ignore[call-arg]
    assert fake.requests == []


async def test_get_job(client: AsyncClient) -> None:
    job = await client.get_job("job_done")
    assert (job.status, job.output, job.miner_id) == ("completed", "Hello", "miner_1")


async def test_list_jobs_pages_and_filters(client: AsyncClient) -> None:
    first = await client.list_jobs(limit=2)
    assert [job.job_id for job in first.jobs] == ["job_done", "job_running"]
    assert first.next_page_token is not None
    second = await client.list_jobs(limit=2, page_token=first.next_page_token)
    assert [job.job_id for job in second.jobs] == ["job_failed"]
    assert second.next_page_token is None
    failed = await client.list_jobs(status="failed")
    assert [job.job_id for job in failed.jobs] == ["job_failed"]


async def test_iter_jobs_follows_pages(client: AsyncClient, fake: FakeJobService) -> None:
    fake.jobs["job_done"].status = jobs_pb2.JOB_STATE_CANCELED
    jobs = [job.job_id async for job in client.iter_jobs(status="cancelled")]
    assert jobs == ["job_done"]
    request = fake.requests[-1]
    assert isinstance(request, jobs_pb2.ListJobsRequest)
    assert request.status == jobs_pb2.JOB_STATE_CANCELED


async def test_cancel_job(client: AsyncClient) -> None:
    job = await client.cancel_job("job_running")
    assert (job.status, job.usage.completion_tokens) == ("canceled", 1)


async def test_stream_yields_events_in_order_and_ends_on_the_final_state(client: AsyncClient) -> None:
    events = [event async for event in client.stream("job_done")]
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    assert events[-1].status == "completed"
    assert "".join(event.text for event in events) == "Hello"


async def test_stream_resumes_from_seq(client: AsyncClient) -> None:
    events = [event async for event in client.stream("job_done", from_seq=5)]
    assert [(event.seq, event.text) for event in events] == [(5, "lo"), (6, "")]


async def test_stream_stops_at_the_final_event_even_if_the_server_keeps_it_open(
    client: AsyncClient, fake: FakeJobService
) -> None:
    fake.held_open.add("job_done")
    async with asyncio.timeout(10):
        events = [event async for event in client.stream("job_done")]
        assert events[-1].is_final
        # The client ended the call instead of leaving it to run on the server.
        await asyncio.to_thread(fake.watch_cancelled.wait, 10)
    assert fake.watch_cancelled.is_set()


async def test_leaving_a_stream_early_cancels_the_call(client: AsyncClient, fake: FakeJobService) -> None:
    events = client.stream("job_running")
    async for event in events:
        assert event.seq == 1
        break
    await events.aclose()
    assert await asyncio.to_thread(fake.watch_cancelled.wait, 10)


async def test_wait_for_job_returns_the_final_job(client: AsyncClient) -> None:
    job = await client.wait_for_job("job_done", timeout=10)
    assert (job.status, job.result) == ("completed", "Hello")


async def test_wait_for_job_raises_timeout_error_naming_the_job(client: AsyncClient) -> None:
    with pytest.raises(TimeoutError, match="job_running"):
        await client.wait_for_job("job_running", timeout=0.2)


async def test_errors_carry_reason_detail_and_field(client: AsyncClient, transport: str) -> None:
    with pytest.raises(AitbcApiError) as caught:
        await client.get_job("job_123")
    error = caught.value
    assert (error.code, error.reason, error.field) == (StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "job_id")
    assert str(error) == "JOB_NOT_FOUND: job job_123 not found"
    if transport == "grpc":
        assert isinstance(error.__cause__, grpc.RpcError)
    else:
        # Decoded from the gateway's error response: nothing below it failed.
        assert error.__cause__ is None


async def test_stream_errors_are_translated_too(client: AsyncClient) -> None:
    with pytest.raises(AitbcApiError, match="JOB_NOT_FOUND"):
        async for _ in client.stream("job_123"):
            pass


async def test_wrong_api_key_is_unauthenticated(aio_target: str) -> None:
    async with AsyncClient(aio_target, "wrong-key") as client:
        with pytest.raises(AitbcApiError) as caught:
            await client.get_job("job_done")
    assert (caught.value.code, caught.value.reason) == (StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
