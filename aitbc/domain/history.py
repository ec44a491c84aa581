"""Job history: the filters ListJobs, ExportJobs and GetJobStats share, the export's columns, the stats' shape.

Pure: the store turns a `JobFilter` into SQL, the services turn requests into one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aitbc.domain.errors import invalid_argument
from aitbc.domain.jobs import JobRecord
from aitbc.domain.states import JobState

MAX_DAYS = 3650
EXPORT_FORMATS = ("json", "csv")


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs: an owner (None: every owner, for admins), a state, a model, creation in [after, before)."""

    owner_id: str | None = None
    state: JobState | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def period(
    now: datetime, *, created_after: datetime | None, created_before: datetime | None, days: int
) -> tuple[datetime | None, datetime | None]:
    """The creation-time window a request asks for; `days` counts back from `now`.

    Refused, naming the field: `days` out of range, `days` with `created_after` (two starts), and a window
    whose end is not after its start (an inverted range would silently match nothing).
    """
    if days:
        if not 1 <= days <= MAX_DAYS:
            raise invalid_argument("days", f"must be between 1 and {MAX_DAYS}, got {days}")
        if created_after is not None:
            raise invalid_argument("days", "give days or created_after, not both")
        created_after = now - timedelta(days=days)
    # An equal pair is an empty window, not an error: only an inverted range is refused.
    if created_after is not None and created_before is not None and created_before < created_after:
        raise invalid_argument(
            "created_before",
            f"must not be before created_after ({rfc3339(created_after)}), got {rfc3339(created_before)}",
        )
    return created_after, created_before


def export_format(text: str) -> str:
    normalized = text.strip().lower() or "json"
    if normalized not in EXPORT_FORMATS:
        raise invalid_argument("format", f"unknown format {text!r}; expected json or csv")
    return normalized


def rfc3339(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# One row per job in an export, CSV and JSON alike. Money in µcr, times RFC 3339 UTC ("" while unset).
EXPORT_COLUMNS = (
    "job_id",
    "status",
    "model",
    "prompt",
    "messages",
    "result",
    "error",
    "finish_reason",
    "miner_id",
    "attempt",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "receipt_id",
    "created_at",
    "started_at",
    "completed_at",
)


def export_row(job: JobRecord, cost: int) -> dict[str, Any]:
    """A job as an export row: `messages` is the conversation as JSON text ("" for a plain prompt)."""
    messages = json.dumps([asdict(m) for m in job.spec.messages], ensure_ascii=False) if job.spec.messages else ""
    return {
        "job_id": job.job_id,
        "status": job.state.value,
        "model": job.spec.model,
        "prompt": job.spec.prompt,
        "messages": messages,
        "result": job.result,
        "error": job.error,
        "finish_reason": job.finish_reason,
        "miner_id": job.miner_id,
        "attempt": job.attempt,
        "prompt_tokens": job.prompt_tokens,
        "completion_tokens": job.completion_tokens,
        "cost": cost,
        "receipt_id": job.receipt_id,
        "created_at": rfc3339(job.created_at),
        "started_at": rfc3339(job.started_at),
        "completed_at": rfc3339(job.completed_at),
    }


@dataclass(frozen=True, slots=True)
class JobStatsRecord:
    """Totals over the jobs a filter matches; times in seconds, money in µcr."""

    counts: dict[JobState, int]
    prompt_tokens: int
    completion_tokens: int
    total_spent: int
    mean_completion_seconds: float
    p50_completion_seconds: float
    p95_completion_seconds: float

    @property
    def total_jobs(self) -> int:
        return sum(self.counts.values())

    @property
    def finished_jobs(self) -> int:
        return sum(count for state, count in self.counts.items() if state.is_terminal)

    @property
    def success_rate(self) -> float:
        finished = self.finished_jobs
        return self.counts.get(JobState.COMPLETED, 0) / finished if finished else 0.0


def nearest_rank(fraction: float, count: int) -> int:
    """The 0-based index of the `fraction` percentile among `count` sorted values (nearest-rank method)."""
    return max(0, math.ceil(fraction * count) - 1)
