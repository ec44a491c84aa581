"""Protobuf messages to the SDK's dataclasses, and the one status <-> `JobState` mapping."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from aitbc.client.models import Job, JobEvent, JobPage, JobStatus, Routing, SamplingParams, Usage
from aitbc.v1 import jobs_pb2

_STATE_BY_STATUS: dict[JobStatus, jobs_pb2.JobState] = {
    JobStatus.PENDING: jobs_pb2.JOB_STATE_PENDING,
    JobStatus.ASSIGNED: jobs_pb2.JOB_STATE_ASSIGNED,
    JobStatus.RUNNING: jobs_pb2.JOB_STATE_RUNNING,
    JobStatus.COMPLETED: jobs_pb2.JOB_STATE_COMPLETED,
    JobStatus.FAILED: jobs_pb2.JOB_STATE_FAILED,
    JobStatus.CANCELED: jobs_pb2.JOB_STATE_CANCELED,
    JobStatus.CANCELING: jobs_pb2.JOB_STATE_CANCELING,
}
_STATUS_BY_STATE = {state: status for status, state in _STATE_BY_STATUS.items()}


def state_to_proto(status: JobStatus | str) -> jobs_pb2.JobState:
    """The wire enum for a status; accepts any spelling `JobStatus` does (`"cancelled"` too)."""
    try:
        return _STATE_BY_STATUS[JobStatus(status)]
    except ValueError:
        allowed = ", ".join(JobStatus)
        raise ValueError(f"unknown job status {status!r}; expected one of {allowed}") from None


def status_from_proto(state: jobs_pb2.JobState) -> JobStatus:
    """The status for a wire enum; UNSPECIFIED or a state this SDK does not know is a ValueError."""
    try:
        return _STATUS_BY_STATE[state]
    except KeyError:
        raise ValueError(f"coordinator sent an unknown job state {state}") from None


def job_from_proto(message: jobs_pb2.Job) -> Job:
    return Job(
        job_id=message.job_id,
        status=status_from_proto(message.status),
        prompt=message.prompt,
        model=message.model,
        params=_params_from_proto(message.params),
        result=message.result,
        progress=message.progress,
        miner_id=message.miner_id or None,
        created_at=_optional_time(message, "created_at"),
        started_at=_optional_time(message, "started_at"),
        completed_at=_optional_time(message, "completed_at"),
        estimated_completion=_optional_time(message, "estimated_completion"),
        attempt=message.attempt,
        usage=_usage_from_proto(message.usage),
        error=message.error or None,
        routing=_routing_from_proto(message.routing, pending=message.status == jobs_pb2.JOB_STATE_PENDING),
        receipt_id=message.receipt_id or None,
        result_expires_at=_optional_time(message, "result_expires_at"),
    )


def _routing_from_proto(message: jobs_pb2.RoutingDecision, *, pending: bool) -> Routing:
    return Routing(
        miner_id=message.miner_id or None,
        miner_reputation=message.miner_reputation,
        estimated_cost=message.estimated_cost,
        input_hash=message.input_hash,
        queue_position=message.queue_position if pending else None,
        estimated_start=_optional_time(message, "estimated_start"),
    )


def page_from_proto(message: jobs_pb2.ListJobsResponse) -> JobPage:
    return JobPage(
        jobs=tuple(job_from_proto(job) for job in message.jobs),
        next_page_token=message.next_page_token or None,
    )


def event_from_proto(message: jobs_pb2.WatchJobResponse) -> JobEvent:
    time = _optional_time(message, "time")
    if message.WhichOneof("event") == "tokens":
        return JobEvent(
            seq=message.seq,
            time=time,
            kind="tokens",
            text=message.tokens.text,
            token_count=message.tokens.token_count,
        )
    change = message.state_change
    return JobEvent(
        seq=message.seq,
        time=time,
        kind="state",
        status=status_from_proto(change.status),
        usage=_usage_from_proto(change.usage),
        error=change.error or None,
        miner_id=change.miner_id or None,
        attempt=change.attempt,
    )


def _params_from_proto(message: jobs_pb2.SamplingParams) -> SamplingParams:
    return SamplingParams(
        max_tokens=message.max_tokens if message.HasField("max_tokens") else None,
        temperature=_float32(message.temperature) if message.HasField("temperature") else None,
        top_p=_float32(message.top_p) if message.HasField("top_p") else None,
        stream=message.stream,
    )


def _usage_from_proto(message: jobs_pb2.Usage) -> Usage:
    return Usage(prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens)


def _optional_time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    timestamp: Timestamp = getattr(message, field)
    return timestamp.ToDatetime(tzinfo=UTC)


def _float32(value: float) -> float:
    # The wire type is float32: 0.7 arrives as 0.699999988. Seven significant
    # digits is float32's precision, so this restores the value that was sent.
    return float(f"{value:.7g}")


def as_dicts(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Listing entries as plain JSON-style dicts (snake_case keys, every field present).

    int64 fields (prices in µcr, byte counts) stay ints, as the gateway's JSON has them, not quoted strings.
    """
    return [
        json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
            unquote_int64_if_possible=True,
        )
        for message in messages
    ]
