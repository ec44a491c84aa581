"""The SDK's public value types: plain frozen dataclasses, free of protobuf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict

# The seed's spellings of the states the API spells the American way.
_BRITISH = {"cancelled": "canceled", "cancelling": "canceling"}


class JobStatus(StrEnum):
    """A job's state, spelled in lower case as in the REST API and the seed documents.

    Being a `str`, a status compares equal to its spelling (`job.status == "completed"`).
    `JobStatus("cancelled")` is accepted as the seed's alternative spelling of `canceled`, and
    `JobStatus.CANCELLED` is the same member as `JobStatus.CANCELED` (`job.status is JobStatus.CANCELLED`),
    and a status also compares equal to its British spelling, so that the seed's poll loops end
    (`job.status in ("completed", "failed", "cancelled")`). Hashing stays the API spelling's: a set or dict
    keyed by "cancelled" does not find `CANCELED` (use `JobStatus(key)` for those).
    `canceling` is a running job whose cancel the miner has not acknowledged yet; it is not final.
    """

    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    CANCELING = "canceling"
    # British aliases (the same members): the seed's poll loops spell it so.
    CANCELLED = "canceled"
    CANCELLING = "canceling"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and not isinstance(other, JobStatus) and other in _BRITISH:
            return _BRITISH[other] == self.value
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    @property
    def is_final(self) -> bool:
        """Whether the job can no longer change: completed, failed or canceled."""
        return self in _FINAL_STATUSES

    @classmethod
    def _missing_(cls, value: object) -> JobStatus | None:
        if not isinstance(value, str):
            return None
        normalized = value.strip().lower()
        if normalized == "cancelled":
            return cls.CANCELED
        if normalized == "cancelling":
            return cls.CANCELING
        return next((status for status in cls if status.value == normalized), None)


_FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Sampling parameters; `None` means the coordinator's default (256 tokens, 0.7, 0.9)."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stream: bool = False


class SamplingOptions(TypedDict, total=False):
    """`SamplingParams` as keyword arguments or a dict, e.g. `submit_job(prompt, max_tokens=100)`."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stream: bool


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting for a job."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Routing:
    """How the coordinator routed the job: the miner it chose, or the job's place in the queue."""

    miner_id: str | None = None
    # The miner's reputation (0..10000) when it was chosen.
    miner_reputation: int = 0
    # Upper bound in µcr (1 credit = 1,000,000 µcr): what submitting the job held.
    estimated_cost: int = 0
    # sha256 of the canonical request.
    input_hash: str = ""
    # While pending.
    queue_position: int | None = None
    estimated_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the coordinator reports it.

    `result` is the text generated so far: the whole output once the job completed.
    Timestamps are timezone-aware (UTC), or `None` where the job has not got that far.
    """

    job_id: str
    status: JobStatus
    prompt: str
    model: str
    params: SamplingParams = field(default_factory=SamplingParams)
    result: str = ""
    progress: int = 0
    miner_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    estimated_completion: datetime | None = None
    attempt: int = 0
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    routing: Routing = field(default_factory=Routing)
    # The signed receipt of a job that was charged (`aitbc verify RECEIPT_ID`); None before it ends, or if free.
    receipt_id: str | None = None
    # When a finished job's result is deleted under the account's plan; after a delete, when it was deleted.
    result_expires_at: datetime | None = None

    @property
    def id(self) -> str:
        """The job id (the seed SDK's spelling of `job_id`)."""
        return self.job_id

    @property
    def output(self) -> str:
        """The generated text (the seed SDK's spelling of `result`)."""
        return self.result

    @property
    def is_final(self) -> bool:
        """Whether the job completed, failed or was canceled."""
        return self.status.is_final

    def to_dict(self) -> dict[str, Any]:
        """The job in the seed's JSON shape: snake_case keys, lowercase status, RFC 3339 UTC timestamps."""
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "prompt": self.prompt,
            "model": self.model,
            "params": {
                "max_tokens": self.params.max_tokens,
                "temperature": self.params.temperature,
                "top_p": self.params.top_p,
                "stream": self.params.stream,
            },
            "result": self.result,
            "progress": self.progress,
            "miner_id": self.miner_id,
            "created_at": format_timestamp(self.created_at),
            "started_at": format_timestamp(self.started_at),
            "completed_at": format_timestamp(self.completed_at),
            "estimated_completion": format_timestamp(self.estimated_completion),
            "attempt": self.attempt,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "error": self.error,
            "routing": {
                "miner_id": self.routing.miner_id,
                "miner_reputation": self.routing.miner_reputation,
                "estimated_cost": self.routing.estimated_cost,
                "input_hash": self.routing.input_hash,
                "queue_position": self.routing.queue_position,
                "estimated_start": format_timestamp(self.routing.estimated_start),
            },
            "receipt_id": self.receipt_id,
            "result_expires_at": format_timestamp(self.result_expires_at),
        }


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of `list_jobs`, newest job first; `next_page_token` is `None` on the last page."""

    jobs: tuple[Job, ...]
    next_page_token: str | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job's watch stream.

    A `"state"` event carries `status` (and `miner_id`, `attempt`, `usage`, `error`); a `"tokens"` event
    carries `text` and `token_count`. Sequence numbers start at 1 and have no gaps.
    """

    seq: int
    time: datetime | None
    kind: Literal["state", "tokens"]
    status: JobStatus | None = None
    text: str = ""
    token_count: int = 0
    usage: Usage | None = None
    error: str | None = None
    miner_id: str | None = None
    attempt: int = 0

    @property
    def is_final(self) -> bool:
        """Whether this event moved the job to a final state (the last event of a stream)."""
        return self.status is not None and self.status.is_final


def format_timestamp(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z` suffix, e.g. `2026-02-13T10:00:00.694Z`: spelled as protobuf's JSON mapping
    (the REST gateway's) spells it, with 0, 3 or 6 fractional digits, so the CLI prints what REST returns."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond % 1000:
        return f"{text}.{utc.microsecond:06d}Z"
    if utc.microsecond:
        return f"{text}.{utc.microsecond // 1000:03d}Z"
    return f"{text}Z"
