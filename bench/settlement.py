"""Settlement benchmark: completed jobs/s through the coordinator with and without money moving.

Drives the Coordinator in process over a SQLite file (WAL, synchronous=NORMAL) with an in-process
miner of `--slots` slots that completes each job as soon as it is assigned, `--jobs` jobs per model:

* `free`: a model priced 0 holds nothing and writes no ledger rows (the path every job took before
  settlement existed, plus one indexed lookup of the job's hold in its terminal transaction);
* `priced`: each job holds its maximum cost in the transaction that stores it, and settles (a settle
  transaction, four balance updates, the hold row, a signed receipt) in the transaction that completes it.

Prints jobs/s per model and their ratio; asserts nothing. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/settlement.py [--jobs 2000] [--models free priced]

The script sticks to APIs that predate settlement when only `free` is asked for, so the same command runs
on the commit before it (`git archive <commit> | tar -x -C DIR`) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.coordinator.miners import MinerInfo
from aitbc.domain.catalog import DEFAULT_CATALOG, ModelEntry
from aitbc.domain.jobs import JobSpec, SamplingParams
from aitbc.domain.keys import Principal, Role
from aitbc.store.sqlite import SqliteStore

CLIENT = Principal("bench-client", Role.CLIENT, "bench-client")
MINER = Principal("bench-miner", Role.MINER, "bench-miner")
ADMIN = Principal("bench-admin", Role.ADMIN, "bench-admin")
MODELS = {
    "free": ModelEntry("free"),
    "priced": ModelEntry("priced", price_input_per_1k=1_000, price_output_per_1k=2_000),
}


async def jobs_per_second(model: str, jobs: int, slots: int, directory: Path) -> float:
    store = await SqliteStore.open(directory / f"{model}.db")
    config = CoordinatorConfig(catalog=DEFAULT_CATALOG.merged(MODELS.values()))
    coordinator = Coordinator(store, config)
    await coordinator.start()
    try:
        if model != "free":
            await coordinator.credit(ADMIN, CLIENT.owner_id, 10**12)
        info = MinerInfo(miner_id="bench", models=frozenset({model}), max_concurrency=slots)
        session = await coordinator.attach_miner(MINER, info)
        spec = JobSpec.build(prompt="benchmark prompt", model=model, params=SamplingParams.build(max_tokens=16))
        started = time.perf_counter()
        for _ in range(jobs):
            await coordinator.submit(CLIENT, spec, queue_if_unavailable=True)
            coordinator.touch(session)  # a sign of life, so that the miner keeps its leases
            while not session._outbox.empty():  # what a miner would have read
                session._outbox.get_nowait()
            for job_id, lease in list(session.assignments.items()):
                await coordinator.reports.done(
                    session, job_id, lease.attempt, output="x" * 16, prompt_tokens=4, completion_tokens=16,
                    finish_reason="length",
                )  # fmt: skip
        return jobs / (time.perf_counter() - started)
    finally:
        await coordinator.shutdown(0)
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["free", "priced"])
    args = parser.parse_args()
    rates = {}
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as directory:
        for model in args.models:
            rates[model] = await jobs_per_second(model, args.jobs, args.slots, Path(directory))
            print(f"{model:<7} {rates[model]:8.1f} jobs/s ({args.jobs} jobs)")
    if len(rates) == 2:
        print(f"priced / free: {rates['priced'] / rates['free']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
