"""A dispatch pass with many idle miners connected: what choosing among them costs, per pass.

Attaches N idle stream miners (one slot each, one model) to an in-process coordinator (no gRPC), then in one
run, alternating, times the routing part of a pass that places one queued job:

* `score all`: what a pass did before the candidate index: build a `Candidate` (reputation score included)
  for every taker, then plan by scoring all of them (`routing.choose` over the list);
* `indexed`: what a pass does now: `MinerRegistry.takers()` (the candidate index, brought up to date with the
  miners that changed since the last pass) and `plan_assignments` on it; `alone`: the same, timed in a run of
  its own (ten times `--passes`), without the other planner's garbage for the collector to walk in between;

and, for the submit path, building every connected miner's candidate afresh (what `check_route` was given
before) vs `MinerRegistry.candidates()` (the cached ones), and a whole pass with an empty queue. Both
planners must pick the same miner for every job (it says so). Prints medians in ms and the ratio of the two
planners per miner count; asserts nothing. Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/dispatch_pass.py [--miners 100 1000 10000] [--passes 21]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.coordinator.miners import MinerInfo, MinerSession
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.catalog import DEFAULT_CATALOG, ModelEntry
from aitbc.domain.fair_queue import FairQueue
from aitbc.domain.keys import Principal, Role
from aitbc.domain.routing import Candidate, RouteRequest, choose
from aitbc.domain.scheduler import plan_assignments
from aitbc.store.sqlite import SqliteStore

MINER = Principal("bench-miner", Role.MINER, "bench-miner")
MODEL = "free"


def fresh(session: MinerSession, reputation: ReputationBook, coordinator: Coordinator) -> Candidate:
    """A candidate built from scratch, as `MinerRegistry.candidate` did for every miner on every pass."""
    stats = reputation.stats(session.miner_id)
    score = stats.score(coordinator.clock.now())
    return session.candidate(reputation=score, tokens_per_second=stats.tokens_per_second)


def score_all(
    registry: MinerRegistry, reputation: ReputationBook, coordinator: Coordinator, route: RouteRequest
) -> str:
    """The pass before the index: every taker's candidate, then `choose` over all of them (one queued job)."""
    takers = [
        fresh(s, reputation, coordinator)
        for s in registry
        if not s.polls and s.free_slots > 0 and not s.draining and not s.closed
    ]
    room = [m for m in takers if m.free_slots > 0 and not m.draining and MODEL in m.models]
    picked = choose(room, route)
    return picked.miner_id if picked else ""


def indexed(registry: MinerRegistry, route: RouteRequest) -> str:
    """The pass now: the index, and a plan for one queued job on it."""
    queue = FairQueue()
    queue.push("job", owner_id="client", model=MODEL)
    plan = plan_assignments(queue, registry.takers(), lambda _: route)
    return plan[0][1] if plan else ""


def timed(step: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    result = step()
    return time.perf_counter() - began, result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--passes", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as directory:
        store = await SqliteStore.open(Path(directory) / "aitbc.db")
        # Leases and heartbeats far off: the miners stay connected without a stream reading them.
        catalog = DEFAULT_CATALOG.merged([ModelEntry(MODEL)])
        config = CoordinatorConfig(catalog=catalog, lease_timeout=1e9, heartbeat_interval=1e9)
        coordinator = Coordinator(store, config)
        await coordinator.start()
        registry, dispatcher = coordinator._miners, coordinator._dispatcher
        reputation = registry._reputation
        route = RouteRequest(catalog.resolve(MODEL), prompt_tokens=4, max_tokens=16, max_price=None)
        header = ["miners", "score all", "indexed", "all/indexed", "same pick", "alone", "build all", "cached"]
        header.append("empty pass")
        print(" ".join(f"{h:>12}" for h in header))
        try:
            for count in sorted(args.miners):
                while len(registry) < count:
                    info = MinerInfo(miner_id=f"m{len(registry)}", models=frozenset({MODEL}), max_concurrency=1)
                    await coordinator.attach_miner(MINER, info)
                old: list[float] = []
                new: list[float] = []
                same = True
                for round_ in range(args.passes):
                    # Alternate which goes first, so neither always runs on a warmer cache.
                    steps = [("old", lambda: score_all(registry, reputation, coordinator, route))]
                    steps.append(("new", lambda: indexed(registry, route)))
                    picks: dict[str, object] = {}
                    for name, step in steps if round_ % 2 == 0 else steps[::-1]:
                        seconds, picks[name] = timed(step)
                        (old if name == "old" else new).append(seconds)
                    same = same and picks["old"] == picks["new"]
                # The indexed pass again, with no old-style pass making garbage between: its own cost.
                alone = [timed(lambda: indexed(registry, route))[0] for _ in range(10 * args.passes)]
                every = [timed(lambda: [fresh(s, reputation, coordinator) for s in registry])[0] for _ in range(5)]
                cached = [timed(registry.candidates)[0] for _ in range(args.passes)]
                empty = []
                for _ in range(args.passes):
                    began = time.perf_counter()
                    await dispatcher._pass()
                    empty.append(time.perf_counter() - began)
                row = [
                    f"{count}",
                    f"{1000 * statistics.median(old):.3f}ms",
                    f"{1000 * statistics.median(new):.3f}ms",
                    f"{statistics.median(old) / statistics.median(new):.0f}x",
                    "yes" if same else "NO",
                    f"{1000 * statistics.median(alone):.3f}ms",
                    f"{1000 * statistics.median(every):.3f}ms",
                    f"{1000 * statistics.median(cached):.3f}ms",
                    f"{1000 * statistics.median(empty):.3f}ms",
                ]
                print(" ".join(f"{cell:>12}" for cell in row))
        finally:
            await coordinator.shutdown(0)
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
