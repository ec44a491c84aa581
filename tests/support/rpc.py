"""Helpers for asserting on gRPC results."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2

from aitbc.v1 import jobs_pb2, jobs_pb2_grpc


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of a rich status; fails the test when there is none."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info
    pytest.fail(f"no ErrorInfo in {error!r}")


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> error_details_pb2.ErrorInfo:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    info = error_info(caught.value)
    assert info.reason == reason
    return info


async def collect(stream: AsyncIterable[Any]) -> list[Any]:
    return [item async for item in stream]


def key(raw: str) -> tuple[tuple[str, str]]:
    return (("x-api-key", raw),)


async def until_event(
    stub: jobs_pb2_grpc.JobServiceAsyncStub,
    api_key: str,
    job_id: str,
    matches: Callable[[jobs_pb2.WatchJobResponse], bool],
) -> jobs_pb2.WatchJobResponse:
    """Watch a job until an event matches: a test's way to know the coordinator has stored it."""
    async for event in stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=key(api_key)):
        if matches(event):
            return event
    pytest.fail(f"job {job_id} ended without the event the test waited for")
