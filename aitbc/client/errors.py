"""The SDK's exception: every failed gRPC call surfaces as an `AitbcApiError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class AitbcApiError(Exception):
    """The coordinator refused a call, or could not be reached.

    `reason` is the machine-readable `google.rpc.ErrorInfo` reason (`JOB_NOT_FOUND`, `INVALID_ARGUMENT`,
    `JOB_NOT_CANCELABLE`, ...) or, where the status carries none (e.g. an unreachable coordinator), the
    gRPC code's name (`UNAVAILABLE`). `field` names the offending request field where there is one.
    """

    def __init__(self, code: grpc.StatusCode, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(code, reason, detail, field)
        self.code = code
        self.reason = reason
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AitbcApiError:
        """Decode a failed call (sync or grpc.aio), preferring the rich status in its trailing metadata."""
        code = error.code()
        reason, field = code.name, None
        try:
            status = rpc_status.from_call(error)
        except ValueError:
            # The rich status contradicts the call's own code or message (something in between rewrote
            # one of them), so its reason may not belong to this failure.
            status = None
        for any_detail in status.details if status is not None else ():
            info = error_details_pb2.ErrorInfo()
            if any_detail.Unpack(info):
                reason, field = info.reason, info.metadata.get("field")
                break
        return cls(code, reason, error.details() or "", field)


@contextmanager
def translate_rpc_errors() -> Iterator[None]:
    """Re-raise any `grpc.RpcError` (sync or grpc.aio) in the block as an `AitbcApiError`."""
    try:
        yield
    except grpc.RpcError as error:
        raise AitbcApiError.from_rpc_error(error) from error


@contextmanager
def deadline_as_timeout(job_id: str, timeout: float) -> Iterator[None]:
    """Turn the deadline of a `wait_for_job` watch into the `TimeoutError` its callers expect."""
    try:
        yield
    except AitbcApiError as error:
        if error.code != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        raise TimeoutError(f"job {job_id} did not reach a final state within {timeout:g}s") from error
