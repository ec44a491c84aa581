"""Decoding failed calls into `AitbcApiError`, rich status or not."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from aitbc.client import AitbcApiError, Client, StatusCode

from .fake_coordinator import API_KEY, free_address, rich_status


@pytest.fixture
def client(thread_target: str) -> Iterator[Client]:
    with Client(thread_target, API_KEY, timeout=10) as client:
        yield client


def test_rich_status_gives_reason_and_field(client: Client) -> None:
    with pytest.raises(AitbcApiError) as caught:
        client.get_job("job_123")
    assert caught.value.code == StatusCode.NOT_FOUND
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


@pytest.mark.parametrize("scheme", ["", "http://"], ids=["grpc", "http"])
def test_unreachable_coordinator_is_unavailable(scheme: str) -> None:
    with Client(scheme + free_address(), API_KEY, timeout=10) as client, pytest.raises(AitbcApiError) as caught:
        client.get_job("job_done")
    assert (caught.value.code, caught.value.reason) == (StatusCode.UNAVAILABLE, "UNAVAILABLE")


def failed_call(code: grpc.StatusCode, details: str, *trailing_metadata: tuple[str, str | bytes]) -> grpc.RpcError:
    """The error grpc.aio raises for a call that ended with `code`, `details` and `trailing_metadata`."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing_metadata), details)


def test_rich_status_that_contradicts_the_call_is_ignored() -> None:
    rich = rich_status(grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND", "job x not found", "job_id")
    error = AitbcApiError.from_rpc_error(failed_call(grpc.StatusCode.INTERNAL, "proxy error", *rich.trailing_metadata))
    assert (error.code, error.reason, error.detail, error.field) == (
        StatusCode.INTERNAL,
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
    error = AitbcApiError(StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL", "the queue is full", "model", 2.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.detail, copy.field, copy.retry_after) == (
        StatusCode.RESOURCE_EXHAUSTED,
        "QUEUE_FULL",
        "the queue is full",
        "model",
        2.5,
    )


def test_status_code_mirrors_grpc_by_name_and_number() -> None:
    assert [(code.name, code.value) for code in StatusCode] == [(code.name, code.value[0]) for code in grpc.StatusCode]


def rich_call(code: grpc.StatusCode, message: str, *details: Message) -> grpc.RpcError:
    """A failed call whose rich status has `code`, `message` and `details`, as the coordinator sends them."""
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    status = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return failed_call(code, message, ("grpc-status-details-bin", status.SerializeToString()))


def test_retry_info_gives_retry_after_in_seconds() -> None:
    info = error_details_pb2.ErrorInfo(reason="QUEUE_FULL")
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000))
    error = AitbcApiError.from_rpc_error(rich_call(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", info, retry))
    assert (error.code, error.reason, error.retry_after) == (StatusCode.RESOURCE_EXHAUSTED, "QUEUE_FULL", 2.5)


def test_no_retry_info_means_no_retry_after() -> None:
    info = error_details_pb2.ErrorInfo(reason="JOB_NOT_FOUND", metadata={"field": "job_id"})
    assert AitbcApiError.from_rpc_error(rich_call(grpc.StatusCode.NOT_FOUND, "no job", info)).retry_after is None


def test_bad_request_field_violation_names_the_field_error_info_leaves_out() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="params.max_tokens", description="too small")
    bad_request = error_details_pb2.BadRequest(field_violations=[violation])
    info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT")
    error = AitbcApiError.from_rpc_error(rich_call(grpc.StatusCode.INVALID_ARGUMENT, "bad", info, bad_request))
    assert (error.reason, error.field) == ("INVALID_ARGUMENT", "params.max_tokens")


def test_error_info_field_wins_over_the_field_violation() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="params", description="bad")
    bad_request = error_details_pb2.BadRequest(field_violations=[violation])
    info = error_details_pb2.ErrorInfo(reason="INVALID_ARGUMENT", metadata={"field": "params.top_p"})
    error = AitbcApiError.from_rpc_error(rich_call(grpc.StatusCode.INVALID_ARGUMENT, "bad", bad_request, info))
    assert error.field == "params.top_p"
