"""Start-up with a backlog: how long a coordinator takes to reload N queued jobs, and the store reads it makes.

Writes N pending jobs (one event each) straight into a migrated SQLite file, then, in one run:

* the events of every job read one store call per job (how start-up read them before) against one call for
  all (`Store.unfinished_events`, how it reads them now);
* `Coordinator.start()` on that file, end to end.

Prints seconds and the ratio; asserts nothing. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/startup.py [--jobs 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.domain.catalog import DEFAULT_CATALOG, ModelEntry
from aitbc.store.sqlite import SqliteStore
from aitbc.store.sqlite_rows import EVENT_COLUMNS, JOB_COLUMNS, placeholders

MODEL = "free"


def write_backlog(path: Path, jobs: int) -> None:
    # The columns of JOB_COLUMNS, in order: a pending job with the defaults, created at `n` µs.
    job_values = [
        (
            *(f"job_{n:08d}", f"owner{n % 1000}", "pending", "p", MODEL, 16, 0.7, 0.9, 0, "[]", "[]", 0, "", "", ""),
            *(0, 0, 0, "", n, n, None, None, 2, None, None, None, 0, 0, 0, "", None),
        )
        for n in range(jobs)
    ]
    event_values = [(f"job_{n:08d}", 1, n, "state", "pending", "", 0, "", 0, "", 0, 0, "") for n in range(jobs)]
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders(JOB_COLUMNS)})", job_values)
        db.executemany(f"INSERT INTO job_events ({EVENT_COLUMNS}) VALUES ({placeholders(EVENT_COLUMNS)})", event_values)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as directory:
        path = Path(directory) / "aitbc.db"
        await (await SqliteStore.open(path)).close()
        write_backlog(path, args.jobs)
        store = await SqliteStore.open(path)
        try:
            records = await store.unfinished_jobs()
            began = time.perf_counter()
            for record in records:
                await store.events(record.job_id)
            per_job = time.perf_counter() - began
            began = time.perf_counter()
            await store.unfinished_events()
            one_read = time.perf_counter() - began
            print(f"{len(records)} queued jobs; their events read:")
            print(f"  one store call per job   {per_job:7.2f} s")
            print(f"  one call for all         {one_read:7.2f} s   ({per_job / one_read:.1f}x faster)")
            limits = {"max_queued_total": 10 * args.jobs, "max_queued_per_client": 10 * args.jobs}
            config = CoordinatorConfig(catalog=DEFAULT_CATALOG.merged([ModelEntry(MODEL)]), **limits)
            coordinator = Coordinator(store, config)
            began = time.perf_counter()
            await coordinator.start()
            print(f"Coordinator.start() with them: {time.perf_counter() - began:.2f} s")
            await coordinator.shutdown(0)
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
