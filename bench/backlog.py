"""A deep backlog: dispatch rate with N queued jobs vs a short queue, and coordinator memory per queued job.

Two coordinators run side by side, each `aitbc coordinator` in its own process over its own SQLite file:

* `backlog`: a store holding `--jobs` pending jobs (1,000,000 by default), spread over `--owners` clients;
* `short`: a store holding only the jobs the rounds will take (`--drain` per round), so its queue stays short,
  which is as close to the empty-queue rate as a drain gets (with no queue at all the rate would be the
  client's submit rate, a different measurement: bench/control_plane.py).

The jobs are inserted through the store API (`SqliteStore.create_job`, one transaction each, as SubmitJob
stores them) before the coordinators start, so the coordinator loads the backlog the way it reloads unfinished
jobs after a restart: the time to serving is printed too. Inserting is timed on the first `--probe` jobs; if
all `--jobs` would take longer than `--insert-budget` seconds, the benchmark inserts `--fallback` jobs instead
and says so, with the per-job memory and dispatch rate to extrapolate from.

Then each round, alternating which coordinator goes first, connects `--miners` MinerAgents (synthetic backend,
unpaced, 16 tokens, `--slots` jobs at once each) in this process to one coordinator, times `--drain` completed
jobs after `--warm` warm-up ones, and disconnects them. Prints the median dispatch rate of each, their ratio,
and the RSS of each coordinator process (psutil, else /proc/PID/status) with the backlog loaded; memory per
queued job is (RSS backlog - RSS short) / (jobs backlog - jobs short). Asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/backlog.py [--jobs 1000000] [--rounds 5] [--drain 2000]
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
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.config import DATABASE_FILE
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams, new_job_id
from aitbc.domain.states import JobState
from aitbc.store.sqlite import SqliteStore
from bench.control_plane import aitbc, free_port, wait_until_serving
from miner.agent import MinerAgent
from miner.backends.base import GenerationRequest, TokenChunk
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig

MODEL = "synthetic"
TOKENS = 16


def rss_bytes(pid: int) -> int:
    try:
        import psutil

        rss: int = psutil.Process(pid).memory_info().rss
        return rss
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {pid}") from None


async def insert(database: Path, jobs: int, owners: int, *, budget: float | None = None) -> tuple[int, float]:
    """Insert pending jobs through the store API; (inserted, seconds). Stops early past `budget` seconds."""
    store = await SqliteStore.open(database)
    try:
        spec = JobSpec.build(
            prompt="benchmark prompt", model=MODEL, params=SamplingParams.build(max_tokens=TOKENS),
            ttl=timedelta(days=7),
        )  # fmt: skip
        began = time.perf_counter()
        for index in range(jobs):
            now = datetime.now(UTC)
            record = JobRecord(
                job_id=new_job_id(), owner_id=f"bench-client-{index % owners}", state=JobState.PENDING, spec=spec,
                created_at=now, updated_at=now, expires_at=now + spec.ttl,
            )  # fmt: skip
            event = JobEvent(job_id=record.job_id, seq=1, time=now, kind=EventKind.STATE, state=JobState.PENDING)
            await store.create_job(record, event)
            if budget is not None and time.perf_counter() - began > budget:
                return index + 1, time.perf_counter() - began
        return jobs, time.perf_counter() - began
    finally:
        await store.close()


class CountingBackend(SyntheticBackend):
    """The synthetic backend, unpaced, noting when each generation ends."""

    def __init__(self, finished: list[float], wanted: int, enough: asyncio.Event) -> None:
        super().__init__(tokens_per_second=0)
        self._finished = finished
        self._wanted = wanted
        self._enough = enough

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenChunk, None]:
        async for chunk in super().generate(request):
            yield chunk
        self._finished.append(time.perf_counter())
        if len(self._finished) >= self._wanted:
            self._enough.set()


async def drain_rate(target: str, miner_key: str, args: argparse.Namespace, tag: str) -> float:
    """Connect the miners, time `drain` completions after `warm`, disconnect; completed jobs/s."""
    finished: list[float] = []
    enough = asyncio.Event()
    agents = [
        MinerAgent(
            MinerConfig(coordinator=target, api_key=miner_key, miner_id=f"bench-{tag}-{n}", max_concurrency=args.slots),
            CountingBackend(finished, args.warm + args.drain, enough),
        )
        for n in range(args.miners)
    ]
    tasks = [asyncio.create_task(agent.run()) for agent in agents]
    try:
        await enough.wait()
    finally:
        for agent in agents:
            agent.stop()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
    window = finished[args.warm : args.warm + args.drain]
    return (len(window) - 1) / (window[-1] - window[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the backlog")
    parser.add_argument("--fallback", type=int, default=100_000, help="backlog when --jobs would take too long")
    parser.add_argument("--insert-budget", type=float, default=900.0, help="seconds allowed for inserting")
    parser.add_argument("--probe", type=int, default=5000, help="jobs timed before deciding")
    parser.add_argument("--owners", type=int, default=1000, help="clients the backlog is spread over")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drain", type=int, default=2000, help="completions timed per round")
    parser.add_argument("--warm", type=int, default=200, help="completions before timing, per round")
    parser.add_argument("--miners", type=int, default=2)
    parser.add_argument("--slots", type=int, default=64, help="jobs at once per miner")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; coordinators in their own processes")
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp:
        homes = {name: Path(tmp) / name for name in ("backlog", "short")}
        short_jobs = (args.warm + args.drain) * (args.rounds + 1)
        probed, seconds = asyncio.run(insert(homes["backlog"] / DATABASE_FILE, args.probe, args.owners))
        per_job = seconds / probed
        wanted = args.jobs
        print(f"insert through SqliteStore.create_job: {probed / seconds:,.0f} jobs/s ({1e6 * per_job:.0f} µs/job)")
        if per_job * (wanted - probed) > args.insert_budget:
            print(
                f"  {wanted:,} jobs would take {per_job * wanted / 60:.0f} min (> --insert-budget "
                f"{args.insert_budget:g}s): using {args.fallback:,} and extrapolating"
            )
            wanted = args.fallback
        inserted, seconds = asyncio.run(
            insert(homes["backlog"] / DATABASE_FILE, wanted - probed, args.owners, budget=args.insert_budget)
        )
        backlog_jobs = probed + inserted
        print(f"  backlog: {backlog_jobs:,} jobs inserted in {seconds + probed * per_job:.0f}s")
        asyncio.run(insert(homes["short"] / DATABASE_FILE, short_jobs, args.owners))
        env = dict(os.environ)
        keys = {}
        for name, home in homes.items():
            mint = aitbc("keys", "create", "--role", "miner", home=home)
            keys[name] = subprocess.run(mint, env=env, check=True, capture_output=True, text=True).stdout.strip()
        targets = {name: f"127.0.0.1:{free_port()}" for name in homes}
        started: dict[str, subprocess.Popen[bytes]] = {}
        rss: dict[str, int] = {}
        rates: dict[str, list[float]] = {name: [] for name in homes}
        runner = asyncio.Runner()  # one event loop for every gRPC call: grpc.aio binds to the first it sees
        try:
            for name, home in homes.items():
                began = time.perf_counter()
                started[name] = subprocess.Popen(aitbc("coordinator", "--listen", targets[name], home=home), env=env)
                runner.run(wait_until_serving(targets[name], deadline=3600))
                rss[name] = rss_bytes(started[name].pid)
                queued = backlog_jobs if name == "backlog" else short_jobs
                print(
                    f"{name}: {queued:,} queued, serving after {time.perf_counter() - began:.1f}s, "
                    f"coordinator RSS {rss[name] / 2**20:,.0f} MiB"
                )
            for index in range(args.rounds):
                order = list(homes) if index % 2 == 0 else list(reversed(homes))
                for name in order:
                    rates[name].append(runner.run(drain_rate(targets[name], keys[name], args, f"{name}{index}")))
                print(f"round {index + 1}/{args.rounds}: " + ", ".join(f"{n} {rates[n][-1]:.0f}/s" for n in order))
            for name in homes:
                rss[name] = max(rss[name], rss_bytes(started[name].pid))
        finally:
            runner.close()
            for process in started.values():
                process.terminate()
            for process in started.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    backlog, short = statistics.median(rates["backlog"]), statistics.median(rates["short"])
    per_queued = (rss["backlog"] - rss["short"]) / (backlog_jobs - short_jobs)
    print(
        f"\n{args.miners} synthetic miners x {args.slots} slots, {TOKENS}-token jobs, {args.rounds} alternating rounds"
    )
    print("| figure | value |\n|---|---|")
    print(f"| completed jobs/s, {backlog_jobs:,}-job backlog (median) | {backlog:.1f} |")
    print(f"| completed jobs/s, short queue ({short_jobs:,} jobs at most) | {short:.1f} |")
    print(f"| backlog / short | {backlog / short:.3f} |")
    print(f"| coordinator RSS, backlog / short | {rss['backlog'] / 2**20:,.0f} / {rss['short'] / 2**20:,.0f} MiB |")
    print(f"| memory per queued job | {per_queued:,.0f} bytes |")
    if backlog_jobs < args.jobs:
        print(
            f"| extrapolated RSS for {args.jobs:,} queued | {(rss['short'] + per_queued * args.jobs) / 2**30:.2f} GiB |"
        )


if __name__ == "__main__":
    main()
