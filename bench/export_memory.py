"""Export memory benchmark: what exporting a history of N jobs holds, for N = 10,000 and 100,000.

Writes N finished jobs straight into a fresh store file (a ~200-character prompt and a ~600-character
result each, a charge on every tenth), then runs the coordinator's export path — `JobHistory.export`
(keyset pages of 500 from the store) into `encode_export` (CSV or a JSON array, 64 KiB HttpBody chunks) —
and throws the chunks away, as a client that writes them to a file does. For each N it reports:

* `tracemalloc`: the peak of Python allocations during the export (the pipeline's working set);
* `rss`: the process's peak resident set growth during the export (a child process per run, so one run's
  memory never shows in the next), without tracemalloc's overhead;
* the bytes exported and the time taken.

Constant memory means the peaks stay flat while N and the bytes grow tenfold. Asserts nothing. Run from the
repository root:

    PYTHONPATH=. .venv/bin/python bench/export_memory.py [--sizes 10000 100000] [--format csv]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aitbc.coordinator.clock import SystemClock
from aitbc.coordinator.history import HistoryQuery, JobHistory
from aitbc.domain.catalog import DEFAULT_CATALOG
from aitbc.domain.keys import Principal, Role
from aitbc.services.export_format import encode_export
from aitbc.store.sqlite import SqliteStore
from aitbc.store.sqlite_rows import JOB_COLUMNS, micros, placeholders

OWNER = Principal(key_id="bench", role=Role.CLIENT, owner_id="bench")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROMPT = 'Summarise, in "plain" words:\n' + "the quick brown fox jumps over the lazy dog, " * 4
RESULT = "A fox, quick and brown, jumped over a dog that was lazy. " * 10


def fill(database: Path, jobs: int) -> None:
    """N completed jobs of OWNER, a second apart, written in one transaction."""

    def rows() -> object:
        for n in range(jobs):
            created = micros(T0 + timedelta(seconds=n))
            yield (
                *(f"job_{n:024x}", OWNER.owner_id, "completed", f"{PROMPT} #{n}", "tiny", 256, 0.7, 0.9, 0),
                *("[]", "[]", 0, "stop", RESULT, "miner-1", 1, 60, 140, "", created, created),
                *(created, created + 2_500_000, 2, None, None, None, 0, 0, 0, ""),
            )

    with sqlite3.connect(database) as db:
        db.executemany(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})", rows())  # type: ignore[arg-type]


async def export(database: Path, export_format: str) -> tuple[int, float]:
    store = await SqliteStore.open(database)
    try:
        history = JobHistory(store, DEFAULT_CATALOG, SystemClock())
        started = time.perf_counter()
        size = 0
        async for chunk in encode_export(history.export(OWNER, HistoryQuery()), export_format):
            size += len(chunk.data)
        return size, time.perf_counter() - started
    finally:
        await store.close()


def measure(database: Path, export_format: str, mode: str) -> dict[str, float]:
    """One export in this process; its peak as `mode` measures it."""
    if mode == "tracemalloc":
        tracemalloc.start()
        size, seconds = asyncio.run(export(database, export_format))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"bytes": size, "seconds": seconds, "peak_mib": peak / 2**20}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size, seconds = asyncio.run(export(database, export_format))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bytes": size, "seconds": seconds, "peak_mib": (after - before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--child", nargs=2, metavar=("DATABASE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), args.format, args.child[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in args.sizes:
            database = Path(tmp) / f"history-{jobs}.db"
            asyncio.run(_migrate(database))
            fill(database, jobs)
            for mode in ("tracemalloc", "rss"):
                command = [sys.executable, __file__, "--format", args.format, "--child", str(database), mode]
                result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                print(
                    f"{jobs:>7} jobs {args.format}: {mode:<11} peak {result['peak_mib']:6.1f} MiB"
                    f"  exported {result['bytes'] / 2**20:7.1f} MiB in {result['seconds']:5.1f} s"
                )


async def _migrate(database: Path) -> None:
    await (await SqliteStore.open(database)).close()


if __name__ == "__main__":
    main()
