"""gRPC status codes without grpc, and the one decoder of the coordinator's rich status.

The SDK (`AitbcApiError`) and the HTTP gateway both read the `google.rpc.Status` a failed call carries in
its `grpc-status-details-bin` trailer; they decode it here so that both read the same details the same way.
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
