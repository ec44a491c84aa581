"""Replicas benchmark: one coordinator on SQLite against 1, 2 and 3 replicas on one PostgreSQL database.

Every configuration runs as `aitbc` processes (coordinators and synthetic, unpaced miners), the clients here,
with the 16-token job of bench/control_plane.py. For each: the round trip one job at a time (p50, p99) and
completed jobs/s with `--concurrency` jobs in flight, spread over the replicas (one client per replica, each
submitting and watching on its own replica; the miners hold the whole address list, so they spread too).
Then, with two replicas and one miner connected to B only: the round trip and time to first token for a
watcher on A (every token crosses replicas: stored by B, notified, read by A) against one on B.

PostgreSQL is a throwaway cluster in a temp dir (tests/support/postgres.py; its server binaries must be
installed: `apt-get install postgresql`). Configurations run in turn, `--rounds` times in alternating
order; medians over rounds. Prints numbers and ratios; asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/replicas.py [--rounds 2] [--jobs 200] [--concurrency 64] [--miners 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from bench.control_plane import (
    MODEL,
    aitbc,
    free_port,
    miner_command,
    one_job,
    p99,
    processes,
    wait_until_serving,
)
from tests.support.postgres import PostgresCluster, unavailable_reason


@dataclass
class Figures:
    round_trips: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


def mint(home: Path, env: dict[str, str], store: str | None, role: str) -> str:
    command = [*aitbc("keys", "create", "--role", role, home=home)] + (["--store", store] if store else [])
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def stack(
    home: Path, env: dict[str, str], store: str | None, replicas: int, miners: int, miner_targets: list[int] | None
) -> Iterator[tuple[list[str], str]]:
    """Coordinators (their targets) and miners; `miner_targets`: the replica each miner connects to, else all."""
    client_key = mint(home, env, store, "client")
    miner_key = mint(home, env, store, "miner")
    targets = [f"127.0.0.1:{free_port()}" for _ in range(replicas)]
    coordinators = [
        aitbc("coordinator", "--listen", target, *(["--store", store] if store else []), home=home)
        for target in targets
    ]
    with processes(coordinators, env):
        for target in targets:
            asyncio.run(wait_until_serving(target))
        listed = [targets[i] for i in miner_targets] if miner_targets else [",".join(targets)] * miners
        with processes([miner_command(t, miner_key, f"bench-{n}") for n, t in enumerate(listed)], env):
            yield targets, client_key


async def measure(targets: list[str], key: str, jobs: int, concurrency: int, figures: Figures) -> None:
    clients = [AsyncClient(target, key) for target in targets]
    try:
        for client in clients:
            await asyncio.gather(*(one_job(client) for _ in range(8)))  # warm-up; proves the miners are there
        figures.round_trips += [(await one_job(clients[n % len(clients)]))[3] for n in range(jobs)]
        remaining = max(jobs, concurrency * 4)
        total = remaining

        async def worker(client: AsyncClient) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one_job(client)

        began = time.perf_counter()
        await asyncio.gather(*(worker(clients[n % len(clients)]) for n in range(concurrency)))
        figures.rates.append(total / (time.perf_counter() - began))
    finally:
        for client in clients:
            await client.close()


async def cross(
    targets: list[str], key: str, jobs: int, near: Figures, far: Figures, ttft: dict[str, list[float]]
) -> None:
    """The miner is on targets[1]: a watcher there (near) against one on targets[0] (far), alternating."""
    a, b = AsyncClient(targets[0], key), AsyncClient(targets[1], key)
    try:
        await asyncio.gather(*(one_job(b) for _ in range(4)), *(one_job(a) for _ in range(4)))
        for n in range(jobs):
            for name, client, figures in (("far", a, far), ("near", b, near))[:: 1 if n % 2 else -1]:
                _, _, first, total = await one_job(client)
                figures.round_trips.append(total)
                ttft[name].append(first)
    finally:
        await a.close()
        await b.close()


def ms(values: list[float]) -> str:
    values = sorted(1000 * v for v in values)
    return f"{statistics.median(values):7.2f} / {p99(values):7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per latency sample")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--miners", type=int, default=2)
    args = parser.parse_args()
    if reason := unavailable_reason():
        sys.exit(f"no PostgreSQL here: {reason}")
    configs = ["sqlite", "pg-1", "pg-2", "pg-3"]
    results = {name: Figures() for name in configs}
    near, far = Figures(), Figures()
    ttft: dict[str, list[float]] = {"near": [], "far": []}
    cluster = PostgresCluster.create()
    cluster.start()
    asyncio.run(cluster.prepare_template())
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, PostgreSQL from {cluster.bindir}")
        for index in range(args.rounds):
            for name in [*configs[:: 1 if index % 2 == 0 else -1], "cross"]:
                with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp:
                    home = Path(tmp)
                    (home / "models.json").write_text(json.dumps({"models": [{"id": MODEL}]}))
                    env = {**os.environ, "AITBC_HOME": str(home)}
                    store = None if name == "sqlite" else asyncio.run(cluster.new_database())
                    replicas = 1 if name == "sqlite" else 2 if name == "cross" else int(name[-1])
                    pinned = [1] if name == "cross" else None
                    with stack(home, env, store, replicas, args.miners, pinned) as (targets, key):
                        if name == "cross":
                            asyncio.run(cross(targets, key, args.jobs // 2, near, far, ttft))
                        else:
                            asyncio.run(measure(targets, key, args.jobs, args.concurrency, results[name]))
                print(f"round {index + 1}: {name} done", file=sys.stderr, flush=True)
    finally:
        cluster.destroy()
    base = statistics.median(results["sqlite"].rates)
    pg1 = statistics.median(results["pg-1"].rates)
    print(f"\n16-token jobs, {args.miners} unpaced synthetic miners, {args.concurrency} in flight for jobs/s")
    print(f"{'store':<24} {'round trip p50 / p99 ms':>24} {'jobs/s':>8} {'/ SQLite':>9} {'/ 1 replica':>12}")
    for name in configs:
        rate = statistics.median(results[name].rates)
        label = "SQLite, one process" if name == "sqlite" else f"PostgreSQL, {name[-1]} replica(s)"
        print(f"{label:<24} {ms(results[name].round_trips):>24} {rate:8.1f} {rate / base:9.2f} {rate / pg1:12.2f}")
    print("\nTokens across replicas (2 replicas on PostgreSQL, the miner on B):")
    print(
        f"  watcher on B (same replica):  round trip {ms(near.round_trips)} ms, TTFT p50 "
        f"{1000 * statistics.median(ttft['near']):.2f} ms"
    )
    print(
        f"  watcher on A (other replica): round trip {ms(far.round_trips)} ms, TTFT p50 "
        f"{1000 * statistics.median(ttft['far']):.2f} ms"
    )
    added = statistics.median(ttft["far"]) - statistics.median(ttft["near"])
    print(f"  crossing replicas adds {1000 * added:.2f} ms to the first token (p50)")


if __name__ == "__main__":
    main()
