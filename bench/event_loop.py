"""The coordinator on asyncio's own event loop vs on uvloop's (a C event loop), alternating in one run.

Starts two stacks side by side, each an `aitbc coordinator` process with `--miners` synthetic miners (16-token
jobs, unpaced) as bench/control_plane.py does; one coordinator runs as it ships, the other with
`uvloop.install()` before the same CLI. Each round, the order flipping every round, measures on each: the
round trip of `--jobs` jobs one at a time, and completed jobs/s with `--concurrency` clients. Prints medians
and this / that ratios; asserts nothing. Needs the bench extra (uvloop). Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/event_loop.py [--rounds 5] [--jobs 300] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from bench.control_plane import (
    aitbc,
    free_port,
    miner_command,
    one_job,
    processes,
    throughput,
    wait_for_miners,
    wait_until_serving,
)

UVLOOP = "import sys, uvloop; uvloop.install(); from aitbc.cli import main; sys.exit(main(sys.argv[1:]))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=300, help="one-at-a-time jobs per round and side")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate-jobs", type=int, default=1500, help="jobs per throughput measurement")
    parser.add_argument("--miners", type=int, default=2)
    args = parser.parse_args()
    try:
        uvloop_version = version("uvloop")
    except PackageNotFoundError:
        print("uvloop is not installed: pip install -e '.[bench]'")
        return
    print(f"python {sys.version.split()[0]}, uvloop {uvloop_version}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp, contextlib.ExitStack() as stack:
        sides: dict[str, str] = {}
        keys: dict[str, str] = {}
        for name in ("asyncio", "uvloop"):
            home = Path(tmp) / name
            home.mkdir()
            env = {**os.environ, "AITBC_HOME": str(home)}
            mint = aitbc("keys", "create", home=home)
            keys[name] = subprocess.run(mint, env=env, check=True, capture_output=True, text=True).stdout.strip()
            miner_key = subprocess.run(
                [*mint, "--role", "miner"], env=env, check=True, capture_output=True, text=True
            ).stdout.strip()
            target = f"127.0.0.1:{free_port()}"
            plain = aitbc("coordinator", "--listen", target, home=home)
            coordinator = plain if name == "asyncio" else [sys.executable, "-c", UVLOOP, *plain[3:]]
            stack.enter_context(processes([coordinator], env))
            asyncio.run(wait_until_serving(target))
            miners = [miner_command(target, miner_key, f"{name}-{n}") for n in range(args.miners)]
            stack.enter_context(processes(miners, env))
            sides[name] = target
        trips: dict[str, list[float]] = {name: [] for name in sides}
        rates: dict[str, list[float]] = {name: [] for name in sides}

        async def measure(name: str) -> None:
            async with AsyncClient(sides[name], keys[name]) as client:
                await wait_for_miners(client, args.miners)
                trips[name] += [(await one_job(client))[3] for _ in range(args.jobs)]
                rates[name].append(await throughput(client, args.concurrency, args.rate_jobs))

        for index in range(args.rounds):
            order = list(sides) if index % 2 == 0 else list(sides)[::-1]
            for name in order:
                asyncio.run(measure(name))
            print(f"round {index + 1}: " + ", ".join(f"{n} {rates[n][-1]:.0f} jobs/s" for n in order), flush=True)
    a, b = "asyncio", "uvloop"
    trip = {n: 1000 * statistics.median(trips[n]) for n in sides}
    rate = {n: statistics.median(rates[n]) for n in sides}
    print(f"\n{args.rounds} alternating rounds, {args.miners} synthetic miners, 16-token jobs")
    print(f"| figure | {a} | {b} | {b} / {a} |\n|---|---|---|---|")
    print(f"| round trip, one at a time, p50 | {trip[a]:.2f} ms | {trip[b]:.2f} ms | {trip[b] / trip[a]:.2f} |")
    print(
        f"| completed jobs/s, {args.concurrency} in flight | {rate[a]:.1f} | {rate[b]:.1f} | {rate[b] / rate[a]:.2f} |"
    )


if __name__ == "__main__":
    main()
