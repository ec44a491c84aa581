"""Retries and resumed streams, over both transports: the waits are recorded instead of slept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from aitbc.client import AitbcApiError, AsyncClient, Client, StatusCode, _retry
from aitbc.v1 import jobs_pb2

from .fake_coordinator import API_KEY, FakeJobService, free_address, rich_status

QUEUE_FULL = rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL", "the queue is full", retry_after=2)
STORE_DOWN = rich_status(grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", "the store is failing")
NO_MINER = rich_status(grpc.StatusCode.UNAVAILABLE, "NO_ELIGIBLE_MINER", "no online miner serves tiny", "model")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds each retry waited, recorded instead of slept (blocking and asyncio alike)."""
    recorded: list[float] = []

    async def record_async(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(_retry, "sleep", recorded.append)
    monkeypatch.setattr(_retry, "async_sleep", record_async)
    return recorded


@pytest.fixture
def client(thread_target: str) -> Iterator[Client]:
    with Client(thread_target, API_KEY, timeout=10) as client:
        yield client


@pytest.fixture
async def async_client(aio_target: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(aio_target, API_KEY, timeout=10) as client:
        yield client


def test_a_429_is_retried_after_the_servers_retry_after(
    client: Client, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["GetJob"] = [QUEUE_FULL, QUEUE_FULL]
    assert client.get_job("job_done").status == "completed"
    # RetryInfo over gRPC, Retry-After over HTTP: the same two seconds.
    assert waits == [2.0, 2.0]


def test_a_503_is_retried_with_backoff_and_given_up_after_max_retries(
    client: Client, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["GetJob"] = [STORE_DOWN] * 4
    with pytest.raises(AitbcApiError) as caught:
        client.get_job("job_done")
    assert (caught.value.code, caught.value.reason) == (StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
    assert len(waits) == 3
    # Doubling from 0.1 s, each half fixed and half random.
    assert 0.05 <= waits[0] <= 0.1
    assert 0.1 <= waits[1] <= 0.2
    assert 0.2 <= waits[2] <= 0.4
    assert sum(isinstance(request, jobs_pb2.GetJobRequest) for request in fake.requests) == 4


def test_a_wait_longer_than_the_client_takes_is_left_to_the_caller(
    client: Client, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["GetJob"] = [
        rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL", "the queue is full", retry_after=60)
    ]
    with pytest.raises(AitbcApiError) as caught:
        client.get_job("job_done")
    assert (caught.value.reason, caught.value.retry_after, waits) == ("QUEUE_FULL", 60.0, [])


def test_a_submit_is_retried_with_the_key_the_sdk_gave_it(
    client: Client, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["SubmitJob"] = [STORE_DOWN]
    assert client.submit_job("Hello").job_id == "job_new"
    first, second = [request for request in fake.requests if isinstance(request, jobs_pb2.SubmitJobRequest)]
    assert first.idempotency_key.startswith("aitbc-sdk-")
    assert second.idempotency_key == first.idempotency_key
    assert len(waits) == 1


def test_a_submit_without_a_key_is_not_retried(thread_target: str, fake: FakeJobService, waits: list[float]) -> None:
    fake.failures["SubmitJob"] = [STORE_DOWN]
    with Client(thread_target, API_KEY, max_retries=0) as client, pytest.raises(AitbcApiError):
        client.submit_job("Hello")
    [request] = [request for request in fake.requests if isinstance(request, jobs_pb2.SubmitJobRequest)]
    assert (request.idempotency_key, waits) == ("", [])


def test_no_eligible_miner_and_cancels_are_not_retried(
    client: Client, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["SubmitJob"] = [NO_MINER]
    fake.failures["CancelJob"] = [STORE_DOWN]
    with pytest.raises(AitbcApiError) as refused:
        client.submit_job("Hello", "tiny")
    assert (refused.value.reason, refused.value.field) == ("NO_ELIGIBLE_MINER", "model")
    with pytest.raises(AitbcApiError) as cancel:
        client.cancel_job("job_running")
    assert cancel.value.reason == "STORE_UNAVAILABLE"
    assert waits == []


@pytest.mark.parametrize("scheme", ["", "http://"], ids=["grpc", "http"])
def test_a_connection_that_fails_is_retried(scheme: str, waits: list[float]) -> None:
    with Client(scheme + free_address(), API_KEY, timeout=10) as client, pytest.raises(AitbcApiError) as caught:
        client.list_jobs()
    assert (caught.value.code, caught.value.reason, len(waits)) == (StatusCode.UNAVAILABLE, "UNAVAILABLE", 3)


def test_a_broken_stream_resumes_after_the_last_event(client: Client, fake: FakeJobService, waits: list[float]) -> None:
    fake.breaks["job_done"] = 3
    events = list(client.stream("job_done"))
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    watches = [request for request in fake.requests if isinstance(request, jobs_pb2.WatchJobRequest)]
    assert [watch.from_seq for watch in watches] == [0, 4]
    assert len(waits) == 1


async def test_the_async_client_retries_and_resumes_alike(
    async_client: AsyncClient, fake: FakeJobService, waits: list[float]
) -> None:
    fake.failures["GetJob"] = [QUEUE_FULL]
    fake.breaks["job_done"] = 5
    assert (await async_client.get_job("job_done")).status == "completed"
    async with asyncio.timeout(10):
        done = await async_client.wait_for_job("job_done", timeout=10)
    assert done.status == "completed"
    watches = [request for request in fake.requests if isinstance(request, jobs_pb2.WatchJobRequest)]
    assert [watch.from_seq for watch in watches] == [0, 6]
    assert waits[0] == 2.0
    assert len(waits) == 2
