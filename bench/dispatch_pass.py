"""A dispatch pass with many miners connected: what scoring them costs, per pass.

Attaches N idle stream miners to an in-process coordinator (no gRPC), then in one run times, per pass:

* scoring every connected miner (what every pass did before, even with an empty queue);
* scoring only those that could take a job now (`MinerRegistry.takers`: a free slot, not draining), as a
  pass does now when the queue holds a job;
* a whole pass with an empty queue (now: nothing scored).

Prints medians in ms; asserts nothing. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/dispatch_pass.py [--miners 100 1000 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.coordinator.miners import MinerInfo
from aitbc.domain.catalog import DEFAULT_CATALOG, ModelEntry
from aitbc.domain.keys import Principal, Role
from aitbc.store.sqlite import SqliteStore

MINER = Principal("bench-miner", Role.MINER, "bench-miner")
MODEL = "free"
PASSES = 20


async def median_ms(step: Callable[[], Awaitable[object] | object]) -> float:
    times = []
    for _ in range(PASSES):
        began = time.perf_counter()
        result = step()
        if asyncio.iscoroutine(result):
            await result
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, nargs="+", default=[100, 1000, 3000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as directory:
        store = await SqliteStore.open(Path(directory) / "aitbc.db")
        # Leases and heartbeats far off: the miners stay connected without a stream reading them.
        config = CoordinatorConfig(
            catalog=DEFAULT_CATALOG.merged([ModelEntry(MODEL)]), lease_timeout=1e9, heartbeat_interval=1e9
        )
        coordinator = Coordinator(store, config)
        await coordinator.start()
        registry, dispatcher = coordinator._miners, coordinator._dispatcher
        print(f"{'miners':>7} {'score all':>11} {'takers':>9} {'empty-queue pass':>17}")
        try:
            for count in sorted(args.miners):
                while len(registry) < count:
                    info = MinerInfo(miner_id=f"m{len(registry)}", models=frozenset({MODEL}), max_concurrency=1)
                    await coordinator.attach_miner(MINER, info)
                every = await median_ms(lambda: registry.candidates(pushed_only=True))
                takers = await median_ms(registry.takers)
                empty = await median_ms(dispatcher._pass)
                print(f"{count:>7} {every:>9.3f}ms {takers:>7.3f}ms {empty:>15.3f}ms")
        finally:
            await coordinator.shutdown(0)
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
