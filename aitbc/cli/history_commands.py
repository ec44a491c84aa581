"""The `aitbc` CLI's history verbs: list filters, export, stats; and confirming a cancel.

`register_history_verbs` adds `export` and `stats` next to the other job verbs, in both the short form
(`aitbc export --format csv --output jobs.csv`) and the seed's long form (`aitbc client export ...`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aitbc.cli.connection import open_client
from aitbc.cli.output import note, print_json, render_table
from aitbc.cli.reporting import CommandError, Handler, reports_errors
from aitbc.client import JobStatus
from aitbc.domain.money import format_credits

# Adds a verb with the connection options and returns its parser (client_commands' `add`).
AddVerb = Callable[[str, str, Handler], argparse.ArgumentParser]


def _day_or_time(text: str) -> datetime:
    """`2026-01-31` (a UTC day) or an ISO 8601 time with a zone (`2026-01-31T12:00:00Z`)."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (2026-01-31) or a time with a zone (2026-01-31T12:00:00Z), got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z for UTC")
    return moment


def _until(text: str) -> datetime:
    """The end of `--to`: a whole day counts (`--to 2026-01-31` is before February 1st); a time is itself."""
    moment = _day_or_time(text)
    return moment + timedelta(days=1) if len(text) == 10 else moment


def add_filter_options(parser: argparse.ArgumentParser, *, with_status: bool = False) -> None:
    if with_status:
        states = [status for status in JobStatus if status is not JobStatus.CANCELING]
        parser.add_argument("--status", type=JobStatus, choices=states, help="only jobs in this state (default: all)")
    parser.add_argument("--days", type=int, metavar="N", help="only jobs created in the last N days")
    parser.add_argument(
        "--from",
        dest="date_from",
        type=_day_or_time,
        metavar="DATE",
        help="only jobs created on or after DATE (YYYY-MM-DD, UTC; or an ISO time with a zone)",
    )
    parser.add_argument(
        "--to",
        dest="date_to",
        type=_until,
        metavar="DATE",
        help="only jobs created on or before DATE (a whole day, UTC: --to 2026-01-31 includes the 31st)",
    )
    parser.add_argument("--model", dest="filter_model", metavar="MODEL", help="only jobs of this model")


def filters(ns: argparse.Namespace) -> dict[str, Any]:
    """The SDK's filter arguments from `add_filter_options`' flags."""
    if ns.days is not None and ns.date_from is not None:
        raise CommandError("pass --days or --from, not both")
    return {
        "model": ns.filter_model,
        "created_after": ns.date_from,
        "created_before": ns.date_to,
        "days": ns.days,
    }


def register_history_verbs(add: AddVerb) -> None:
    export = add("export", "write every matching job to a JSON or CSV file", _export)
    export.add_argument("--format", choices=["json", "csv"], default="json", help="(default: %(default)s)")
    export.add_argument("--output", "-o", metavar="FILE", help="where to write it; - for stdout (default: stdout)")
    add_filter_options(export, with_status=True)
    stats = add("stats", "totals over your jobs: states, success rate, completion times, tokens, spending", _stats)
    add_filter_options(stats)
    stats.add_argument("--json", action="store_true", help="print JSON instead of text")


def confirm_cancel(job_id: str, *, force: bool) -> bool:
    """Ask on a terminal (unless --force); scripts and pipes are not asked."""
    if force or not sys.stdin.isatty():
        return True
    try:
        answer = input(f"Cancel job {job_id}? Tokens produced so far are charged. [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


@reports_errors
def _export(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        chunks = client.export_jobs(ns.format, status=ns.status, **filters(ns))
        if ns.output in (None, "-"):
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return 0
        written = _write_atomically(Path(ns.output), chunks)
    note(f"wrote {written} bytes to {ns.output}")
    return 0


def _write_atomically(path: Path, chunks: Any) -> int:
    """Write to a temporary file beside `path` and rename it: a broken export never leaves a partial file."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    written = 0
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return written


@reports_errors
def _stats(ns: argparse.Namespace) -> int:
    with open_client(ns) as client:
        stats = client.job_stats(**filters(ns))
    if ns.json:
        print_json(stats)
        return 0
    counts = stats.get("counts", {})
    period = f"{stats.get('created_after', 'the start')} to {stats.get('created_before', 'now')}"
    rows: list[tuple[str, ...]] = [
        ("Period", period),
        ("Total jobs", str(stats["total_jobs"])),
        *((f"  {state}", str(count)) for state, count in counts.items() if count),
        ("Success rate", f"{stats['success_rate'] * 100:.1f}% of {stats['finished_jobs']} finished"),
        ("Completion time", _times(stats)),
        ("Tokens in / out", f"{stats['prompt_tokens']} / {stats['completion_tokens']}"),
        ("Total spent", f"{format_credits(int(stats['total_spent']))} AIT"),
    ]
    print(render_table(("", ""), rows).split("\n", 1)[1])
    return 0


def _times(stats: dict[str, Any]) -> str:
    if not stats["counts"].get("completed"):
        return "- (no completed jobs)"
    mean, p50, p95 = (
        stats["mean_completion_seconds"],
        stats["p50_completion_seconds"],
        stats["p95_completion_seconds"],
    )
    return f"mean {mean:.1f}s, p50 {p50:.1f}s, p95 {p95:.1f}s"
