"""gRPC status codes without grpc, their HTTP statuses, and the one decoder of the coordinator's rich status.

The SDK (`AitbcApiError`) and the HTTP gateway both read the `google.rpc.Status` a failed call carries in
its `grpc-status-details-bin` trailer; they decode it here so that both read the same details the same way.
The gateway answers each code with the HTTP status in `HTTP_STATUS`, and the SDK's HTTP transport reads
it back with `code_for_http`: one table for both directions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


class StatusCode(enum.Enum):
    """A gRPC status code: the same names as `grpc.StatusCode`, valued by their `google.rpc.Code` numbers.

    SDK users read `AitbcApiError.code` with this, without importing grpc.
    """

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @classmethod
    def from_grpc(cls, code: grpc.StatusCode) -> StatusCode:
        return cls[code.name]


# The HTTP status of each code, as the gateway answers it and the SDK reads it back: google.rpc.Code's
# table, except that FAILED_PRECONDITION is 409, not 400 (the coordinator uses it for state conflicts,
# such as cancelling a finished job, which HTTP calls 409). 499 is "client closed request".
HTTP_STATUS: dict[StatusCode, int] = {
    StatusCode.OK: 200,
    StatusCode.CANCELLED: 499,
    StatusCode.UNKNOWN: 500,
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.DEADLINE_EXCEEDED: 504,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.FAILED_PRECONDITION: 409,
    StatusCode.ABORTED: 409,
    StatusCode.OUT_OF_RANGE: 400,
    StatusCode.UNIMPLEMENTED: 501,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
    StatusCode.DATA_LOSS: 500,
    StatusCode.UNAUTHENTICATED: 401,
}

# Back from HTTP: where several codes share a status, the one the coordinator uses; and the statuses
# the gateway answers on its own (405 no such method, 413 too large) or a proxy does (502).
_CODE_FOR_HTTP: dict[int, StatusCode] = {
    **{status: code for code, status in HTTP_STATUS.items()},
    400: StatusCode.INVALID_ARGUMENT,
    409: StatusCode.FAILED_PRECONDITION,
    500: StatusCode.INTERNAL,
    405: StatusCode.UNIMPLEMENTED,
    410: StatusCode.NOT_FOUND,  # a deleted result or a dead share link (gateway.errors.HTTP_STATUS_FOR_REASON)
    413: StatusCode.RESOURCE_EXHAUSTED,
    502: StatusCode.UNAVAILABLE,
}


def code_for_http(status: int, error_code: str | None = None) -> StatusCode:
    """The code an HTTP error stands for. `error_code` (the body's) wins where it names a code that
    answers `status`: a reason-less ABORTED is still ABORTED, not the FAILED_PRECONDITION 409 usually is."""
    named = StatusCode.__members__.get(error_code or "")
    if named is not None and HTTP_STATUS[named] == status:
        return named
    return _CODE_FOR_HTTP.get(status, StatusCode.UNKNOWN)


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """What a failed call's rich status says beyond its code and message; all None where it says nothing.

    `reason` is the `ErrorInfo` reason; `field` the request field at fault (`ErrorInfo` metadata "field",
    else the first `BadRequest` field violation); `retry_delay` the `RetryInfo` delay in seconds; `advice`
    what the message advises in API terms.
    """

    reason: str | None = None
    field: str | None = None
    retry_delay: float | None = None
    # Advice in API terms that ends the message ("set queue_if_unavailable to wait for one"), `ErrorInfo`
    # metadata "advice"; surfaces that word it their own way remove it with `without_advice`.
    advice: str | None = None


def without_advice(message: str, advice: str | None) -> str:
    """`message` without the advice the coordinator appended to it (as "; " + advice)."""
    return message.removesuffix(f"; {advice}") if advice else message


def status_details(error: grpc.RpcError) -> StatusDetails:
    """Decode the rich status of a failed call, sync or grpc.aio."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        # The rich status contradicts the call's own code or message (something in between rewrote one of
        # them), so its details may not belong to this failure.
        return StatusDetails()
    return _decode(status) if status is not None else StatusDetails()


def _decode(status: status_pb2.Status) -> StatusDetails:
    reason: str | None = None
    info_field: str | None = None
    violation_field: str | None = None
    retry_delay: float | None = None
    advice: str | None = None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason = info.reason or None
            info_field = info.metadata.get("field") or None
            advice = info.metadata.get("advice") or None
        elif detail.Unpack(bad_request):
            violation_field = next((v.field for v in bad_request.field_violations if v.field), None)
        elif detail.Unpack(retry):
            retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    return StatusDetails(reason, info_field or violation_field, retry_delay, advice)
