"""Domain errors as rich gRPC statuses: one table, one place."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from aitbc.domain.errors import AitbcError, Reason

ERROR_DOMAIN = "aitbc.v1"

STATUS_FOR_REASON: dict[Reason, grpc.StatusCode] = {
    Reason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.JOB_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.JOB_NOT_CANCELABLE: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Reason.SHUTTING_DOWN: grpc.StatusCode.UNAVAILABLE,
    Reason.MINER_PROTOCOL_ERROR: grpc.StatusCode.INVALID_ARGUMENT,
    Reason.MINER_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.MINER_AT_CAPACITY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.JOB_NOT_CLAIMABLE: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.LEASE_LOST: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.QUEUE_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.NO_ELIGIBLE_MINER: grpc.StatusCode.UNAVAILABLE,
    Reason.STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Reason.WATCH_TOO_SLOW: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Reason.KEY_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.INSUFFICIENT_FUNDS: grpc.StatusCode.FAILED_PRECONDITION,
    Reason.RECEIPT_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.BLOCK_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.JOB_NOT_FINISHED: grpc.StatusCode.FAILED_PRECONDITION,
    # Gone for good: NOT_FOUND over gRPC, 410 Gone over HTTP (gateway.errors.HTTP_STATUS_FOR_REASON).
    Reason.RESULT_DELETED: grpc.StatusCode.NOT_FOUND,
    Reason.SHARE_LINK_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.SHARE_LINK_EXPIRED: grpc.StatusCode.NOT_FOUND,
    Reason.SHARE_LINK_REVOKED: grpc.StatusCode.NOT_FOUND,
    Reason.WEBHOOK_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Reason.MODEL_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
}


def rich_status(error: AitbcError) -> grpc.Status:
    code = STATUS_FOR_REASON[error.reason]
    info = error_details_pb2.ErrorInfo(reason=error.reason.value, domain=ERROR_DOMAIN)
    details = []
    if error.field:
        info.metadata["field"] = error.field
    if error.advice:
        # The message ends with "; " + the advice; clients that word it their own way strip it (aitbc.client).
        info.metadata["advice"] = error.advice
    packed = any_pb2.Any()
    packed.Pack(info)
    details.append(packed)
    if error.reason is Reason.INVALID_ARGUMENT and error.field:
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.full_message)
        bad_request = any_pb2.Any()
        bad_request.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        details.append(bad_request)
    if error.retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromTimedelta(timedelta(seconds=error.retry_after_seconds))
        retry_info = any_pb2.Any()
        retry_info.Pack(retry)
        details.append(retry_info)
    status = status_pb2.Status(code=code.value[0], message=error.full_message, details=details)
    rich: grpc.Status = rpc_status.to_status(status)
    return rich


def internal_status() -> grpc.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))
    status = status_pb2.Status(
        code=grpc.StatusCode.INTERNAL.value[0], message="internal error; see the coordinator log", details=[info]
    )
    rich: grpc.Status = rpc_status.to_status(status)
    return rich


@contextmanager
def wire_fields(names: Mapping[str, str]) -> Iterator[None]:
    """Name the request field at fault as this RPC spells it, where it differs from the coordinator's name."""
    try:
        yield
    except AitbcError as error:
        if error.field is None or error.field not in names:
            raise
        raise error.with_field(names[error.field]) from error
