"""Domain errors: a machine-readable reason, a human message, the field at fault.

Services map each reason to a transport status in one place
(`aitbc.services.errors`); nothing here knows about gRPC or HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    JOB_NOT_CANCELABLE = "JOB_NOT_CANCELABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    MINER_PROTOCOL_ERROR = "MINER_PROTOCOL_ERROR"
    MINER_NOT_FOUND = "MINER_NOT_FOUND"
    MINER_AT_CAPACITY = "MINER_AT_CAPACITY"
    JOB_NOT_CLAIMABLE = "JOB_NOT_CLAIMABLE"
    LEASE_LOST = "LEASE_LOST"
    QUEUE_FULL = "QUEUE_FULL"
    NO_ELIGIBLE_MINER = "NO_ELIGIBLE_MINER"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    WATCH_TOO_SLOW = "WATCH_TOO_SLOW"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    # A job's hold (its maximum cost) exceeds the account's available credits; the message says how much is missing.
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    RECEIPT_NOT_FOUND = "RECEIPT_NOT_FOUND"
    BLOCK_NOT_FOUND = "BLOCK_NOT_FOUND"
    # Results (docs/results.md): a job that must have finished first; a result, or a share link, that is gone.
    JOB_NOT_FINISHED = "JOB_NOT_FINISHED"
    RESULT_DELETED = "RESULT_DELETED"
    SHARE_LINK_NOT_FOUND = "SHARE_LINK_NOT_FOUND"
    SHARE_LINK_EXPIRED = "SHARE_LINK_EXPIRED"
    SHARE_LINK_REVOKED = "SHARE_LINK_REVOKED"
    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"
    # A model the catalog does not know (404, as OpenAI, vLLM and Ollama answer it).
    MODEL_NOT_FOUND = "MODEL_NOT_FOUND"


class AitbcError(Exception):
    """A request the system refuses, with the reason a client can act on.

    `message` says what is wrong. `advice`, where there is one, says what to change in API terms ("set
    queue_if_unavailable to wait for one"); it is kept apart because other surfaces say it their own way (the
    CLI names its `--queue` flag, the OpenAI routes have no such field).
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        field: str | None = None,
        advice: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field
        self.advice = advice
        # Set where retrying later can succeed: a full queue, a failing store.
        self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        return f"{self.reason}: {self.full_message}"

    @property
    def full_message(self) -> str:
        """The message and the advice, as the API reports them."""
        return f"{self.message}; {self.advice}" if self.advice else self.message

    def with_field(self, field: str) -> AitbcError:
        """The same error naming the field as a transport spells it (`models` is `hello.models` on a stream)."""
        message = self.message
        if self.field and message.startswith(f"{self.field}: "):
            message = f"{field}: {message[len(self.field) + 2 :]}"
        return AitbcError(
            self.reason, message, field=field, advice=self.advice, retry_after_seconds=self.retry_after_seconds
        )


def invalid_argument(field: str, message: str) -> AitbcError:
    return AitbcError(Reason.INVALID_ARGUMENT, f"{field}: {message}", field=field)


def job_not_found(job_id: str) -> AitbcError:
    return AitbcError(Reason.JOB_NOT_FOUND, f"job {job_id!r} not found", field="job_id")
