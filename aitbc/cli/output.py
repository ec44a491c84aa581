"""What the `aitbc` CLI prints: JSON in the REST API's shape, and plain tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aitbc.client import Job

_PROMPT_COLUMN_WIDTH = 40

# Fields a REST response always carries, as "" or 0, where the SDK's dataclasses say None ("not set").
_EMPTY_AS_REST = {"miner_id": "", "error": "", "queue_position": 0, "receipt_id": ""}


def rest_shape(data: dict[str, Any]) -> dict[str, Any]:
    """`Job.to_dict()` as the REST API prints the same job: unset strings are "", other unset fields absent.

    The gateway prints fields without presence as their zero value and leaves out message fields that are
    unset (a job that has not started has no `started_at`); `aitbc status` and `aitbc get` print the same.
    """
    shaped: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            shaped[key] = rest_shape(value)
        elif value is not None:
            shaped[key] = value
        elif key in _EMPTY_AS_REST:
            shaped[key] = _EMPTY_AS_REST[key]
    return shaped


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_listing(
    items: list[dict[str, Any]],
    header: tuple[str, ...],
    row: Callable[[dict[str, Any]], tuple[str, ...]],
    *,
    as_json: bool,
) -> None:
    """Print `items` as they came (JSON), or as a table: `header`, then one `row` per item."""
    if as_json:
        print_json(items)
    else:
        print(render_table(header, [row(item) for item in items]))


def jobs_table(jobs: Iterable[Job]) -> str:
    header = ("JOB ID", "STATUS", "MODEL", "TOKENS", "CREATED (UTC)", "PROMPT")
    return render_table(
        header,
        [
            (
                job.job_id,
                job.status.value,
                job.model,
                str(job.usage.completion_tokens),
                short_time(job.created_at),
                _one_line(job.prompt, _PROMPT_COLUMN_WIDTH),
            )
            for job in jobs
        ],
    )


def render_table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    rows = [header, *body]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def short_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def short_rfc3339(text: str | None) -> str:
    """An RFC 3339 time from a listing (`2026-02-13T10:00:00.123Z`) as a table shows it, "-" when unset."""
    return text[:19].replace("T", " ") if text else "-"


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr so that stdout stays the command's output."""
    print(message, file=sys.stderr, flush=True)
