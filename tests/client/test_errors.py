"""Decoding failed calls into `AitbcApiError`, rich status or not."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import status_pb2

from aitbc.client import AitbcApiError, Client

from .fake_coordinator import API_KEY, free_address, rich_status


@pytest.fixture
def client(thread_address: str) -> Iterator[Client]:
    with Client(thread_address, API_KEY, timeout=10) as client:
        yield client


def test_rich_status_gives_reason_and_field(client: Client) -> None:
    with pytest.raises(AitbcApiError) as caught:
        client.get_job("job_123")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert (caught.value.reason, caught.value.detail, caught.value.field) == (
        "JOB_NOT_FOUND",
        "job job_123 not found",
        "job_id",
    )


def test_plain_status_falls_back_to_the_code_name(client: Client) -> None:
    with pytest.raises(AitbcApiError) as caught:
        client.get_job("job_plain_error")
    assert (caught.value.reason, caught.value.detail, caught.value.field) == ("INTERNAL", "boom", None)
    assert str(caught.value) == "INTERNAL: boom"


def test_unreachable_coordinator_is_unavailable() -> None:
    with Client(free_address(), API_KEY, timeout=10) as client, pytest.raises(AitbcApiError) as caught:
        client.get_job("job_done")
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")


def failed_call(code: grpc.StatusCode, details: str, *trailing_metadata: tuple[str, str | bytes]) -> grpc.RpcError:
    """The error grpc.aio raises for a call that ended with `code`, `details` and `trailing_metadata`."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing_metadata), details)


def test_rich_status_that_contradicts_the_call_is_ignored() -> None:
    rich = rich_status(grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "job x not found", "job_id")
    error = AitbcApiError.from_rpc_error(failed_call(grpc.StatusCode.INTERNAL, "proxy error", *rich.trailing_metadata))
    assert (error.code, error.reason, error.detail, error.field) == (
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        "proxy error",
        None,
    )


def test_rich_status_without_error_info_keeps_its_message() -> None:
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="bad prompt")
    call = failed_call(
        grpc.StatusCode.INVALID_ARGUMENT, "bad prompt", ("grpc-status-details-bin", status.SerializeToString())
    )
    error = AitbcApiError.from_rpc_error(call)
    assert (error.reason, error.detail) == ("INVALID_ARGUMENT", "bad prompt")


def test_errors_pickle_with_their_fields() -> None:
    error = AitbcApiError(grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "job x not found", "job_id")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.detail, copy.field) == (error.code, error.reason, error.detail, error.field)
