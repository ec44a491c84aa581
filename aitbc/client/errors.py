"""The SDK's exception: every failed call, over gRPC or HTTP, surfaces as an `AitbcApiError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from aitbc.client._status import StatusCode, status_details, without_advice


class AitbcApiError(Exception):
    """The coordinator refused a call, or could not be reached.

    `code` is the call's gRPC status as a `StatusCode`. `reason` is the machine-readable `google.rpc.ErrorInfo`
    reason (`JOB_NOT_FOUND`, `INVALID_ARGUMENT`, `JOB_NOT_CANCELABLE`, ...) or, where the status carries none
    (e.g. an unreachable coordinator), the code's name (`UNAVAILABLE`). `field` names the offending request
    field where there is one. `retry_after` is how many seconds the coordinator asks to wait before trying
    again (`google.rpc.RetryInfo`, e.g. with `QUEUE_FULL`), or None. `advice` is the advice that ends
    `detail`, where there is one ("set queue_if_unavailable to wait for one"); `problem` is `detail` without it.
    """

    def __init__(
        self,
        code: StatusCode,
        reason: str,
        detail: str,
        field: str | None = None,
        retry_after: float | None = None,
        advice: str | None = None,
    ) -> None:
        # Every field goes to Exception's args, which is what pickling rebuilds the error from.
        super().__init__(code, reason, detail, field, retry_after, advice)
        self.code = code
        self.reason = reason
        self.detail = detail
        self.field = field
        self.retry_after = retry_after
        self.advice = advice

    @property
    def problem(self) -> str:
        """`detail` without its advice: what is wrong, for a caller that says what to do its own way."""
        return without_advice(self.detail, self.advice)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AitbcApiError:
        """Decode a failed call (sync or grpc.aio), preferring the rich status in its trailing metadata."""
        code = StatusCode.from_grpc(error.code())
        details = status_details(error)
        detail = error.details() or ""
        return cls(code, details.reason or code.name, detail, details.field, details.retry_delay, details.advice)


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
        if error.code != StatusCode.DEADLINE_EXCEEDED:
            raise
        raise TimeoutError(f"job {job_id} did not reach a final state within {timeout:g}s") from error
