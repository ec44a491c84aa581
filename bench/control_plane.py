"""Control-plane benchmark: coordinator and synthetic miners in their own processes, the client here.

Prints medians and p99s; asserts nothing. The synthetic backend is unpaced with no
first-token delay, so every millisecond measured is the control plane's:

* submit -> assigned: the coordinator's own timestamps (job stored -> pushed to a miner);
* time to first token: from calling SubmitJob to the first token chunk arriving at the
  watching client (the backend's own TTFT is 0 by construction);
* 16-token round trip: from calling SubmitJob to the final event at the client;
* completed jobs/s with N clients each running submit -> watch-to-completion in a loop;
* tokens/s to one watcher: one unpaced job of `--stream-tokens` tokens, from its first token
  to its last at the client.

With `--peer celery` it also starts Redis and a 2-process Celery worker (bench/peers/celery_peer.py)
and runs the same 16-token job there, the two systems alternating measurement by measurement for
`--rounds` rounds (the order flips every round), then prints both side by side with their ratio.
Without redis-server it says how to get it and runs this project's side only.

    PYTHONPATH=. .venv/bin/python bench/control_plane.py [--peer celery] [--rounds 3] [--jobs 300]
        [--concurrency 1 4 16 64 256] [--miners 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from bench.peers import peer_missing

if TYPE_CHECKING:
    from bench.peers.celery_peer import CeleryPeer

MODEL = "synthetic"
TOKENS = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def aitbc(*args: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "aitbc", "--log-level", "WARNING", *args, "--home", str(home)]


def miner_command(target: str, api_key: str, miner_id: str) -> list[str]:
    """An unpaced synthetic miner process with 64 slots: what every control-plane benchmark runs."""
    return [
        sys.executable, "-m", "aitbc", "--log-level", "WARNING", "miner", "--coordinator", target,
        "--api-key", api_key, "--backend", "synthetic", "--tokens-per-second", "0", "--max-concurrency", "64",
        "--miner-id", miner_id,
    ]  # fmt: skip


@contextlib.contextmanager
def processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [subprocess.Popen(command, env=env) for command in commands]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_until_serving(target: str, deadline: float = 30.0) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if loop.time() > give_up:
                raise TimeoutError(f"coordinator at {target} not serving after {deadline}s")
            await asyncio.sleep(0.05)


async def wait_for_miners(client: AsyncClient, count: int) -> None:
    # One warm-up job per miner slot proves the miners are connected and warms every path.
    await asyncio.gather(*(one_job(client) for _ in range(count * 2)))


async def one_job(client: AsyncClient) -> tuple[float, float, float, float]:
    """(submit->assigned by the coordinator's clock, submit call, TTFT at the client, round trip at the client)."""
    began = time.perf_counter()
    # Queued if need be: the warm-up may run before the miners have connected.
    job = await client.submit_job("benchmark prompt", model=MODEL, max_tokens=TOKENS, queue_if_unavailable=True)
    submitted = time.perf_counter()
    first_token = 0.0
    pending_at = assigned_at = None
    async for event in client.stream(job.job_id):
        if event.kind == "tokens" and not first_token:
            first_token = time.perf_counter()
        elif event.status == "pending" and pending_at is None:
            pending_at = event.time
        elif event.status == "assigned" and assigned_at is None:
            assigned_at = event.time
    finished = time.perf_counter()
    assert pending_at is not None
    assert assigned_at is not None
    dispatch = (assigned_at - pending_at).total_seconds()
    return dispatch, submitted - began, first_token - began, finished - began


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    return f"  {name:<34} median {statistics.median(ms):7.2f} ms   p99 {p99(ms):7.2f} ms   (n={len(ms)})"


async def throughput(client: AsyncClient, concurrency: int, jobs: int) -> float:
    remaining = jobs

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one_job(client)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return jobs / (time.perf_counter() - began)


async def stream_rate(client: AsyncClient, tokens: int) -> float:
    """Tokens/s reaching one watcher of one unpaced job, first token to last."""
    job = await client.submit_job("benchmark prompt", model=MODEL, max_tokens=tokens, queue_if_unavailable=True)
    first = last = 0.0
    received = 0
    async for event in client.stream(job.job_id):
        if event.kind == "tokens":
            last = time.perf_counter()
            first = first or last
            received += event.token_count
    return received / (last - first) if last > first else float("nan")


@dataclass
class Side:
    """What one system measured, pooled over the rounds."""

    samples: list[tuple[float, ...]] = field(default_factory=list)
    rates: dict[int, list[float]] = field(default_factory=dict)
    stream: list[float] = field(default_factory=list)

    def round_trips(self) -> list[float]:
        return [1000 * s[-1] for s in self.samples]

    def rate(self, concurrency: int) -> float:
        return statistics.median(self.rates[concurrency])


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:5.2f}x" if theirs else "    -"


def print_ours(side: Side, args: argparse.Namespace) -> None:
    print(f"latency, one job at a time, {TOKENS}-token jobs, {args.miners} synthetic miner(s):")
    print(summary("submit -> assigned (coordinator)", [s[0] for s in side.samples]))
    print(summary("SubmitJob call (client)", [s[1] for s in side.samples]))
    print(summary("time to first token (client)", [s[2] for s in side.samples]))
    print(summary(f"{TOKENS}-token job round trip (client)", [s[3] for s in side.samples]))
    print(f"throughput, completed jobs/s (median of {args.rounds} round(s)):")
    for concurrency in args.concurrency:
        rates = " ".join(f"{r:.0f}" for r in side.rates[concurrency])
        print(f"  {concurrency:>3} concurrent clients   {side.rate(concurrency):8.1f} jobs/s   (rounds: {rates})")
    print(f"tokens/s to one watcher, unpaced, {args.stream_tokens}-token job: {statistics.median(side.stream):,.0f}")


def print_table(ours: Side, peer: Side, args: argparse.Namespace) -> None:
    mine, theirs = ours.round_trips(), peer.round_trips()
    rows = [
        ("round trip, one job at a time, p50", statistics.median(mine), statistics.median(theirs), "ms"),
        ("round trip p99", p99(sorted(mine)), p99(sorted(theirs)), "ms"),
    ]
    rows += [(f"completed jobs/s, {c} in flight", ours.rate(c), peer.rate(c), "") for c in args.concurrency]
    print()
    print(f"{TOKENS}-token synthetic job, {args.rounds} alternating rounds; this / Celery: above 1 is slower for")
    print("times, faster for jobs/s")
    print("| figure | this project | Celery + Redis | this / Celery |\n|---|---|---|---|")
    for name, a, b, unit in rows:
        print(f"| {name} | {a:.2f}{' ' + unit if unit else ''} | {b:.2f}{' ' + unit if unit else ''} | {ratio(a, b)} |")
    print(f"| tokens/s to one watcher, unpaced | {statistics.median(ours.stream):,.0f} | no streaming | - |")


def alternate(runs: list[Callable[[], None]], round_index: int) -> None:
    """Run each side's measurement, the order flipped every other round."""
    for run in runs if round_index % 2 == 0 else reversed(runs):
        run()


def measure(target: str, api_key: str, args: argparse.Namespace, peer: CeleryPeer | None) -> None:
    ours, theirs = Side(), Side()
    with asyncio.Runner() as runner:
        client = AsyncClient(target, api_key)
        runner.run(client.__aenter__())
        try:
            runner.run(wait_for_miners(client, args.miners))

            def latency_ours() -> None:
                ours.samples += [runner.run(one_job(client)) for _ in range(args.jobs)]

            def latency_peer() -> None:
                assert peer is not None
                theirs.samples += [(t,) for t in peer.round_trips(args.jobs)]

            def rate_ours(concurrency: int) -> None:
                jobs = max(args.jobs, concurrency * 4)
                ours.rates.setdefault(concurrency, []).append(runner.run(throughput(client, concurrency, jobs)))

            def rate_peer(concurrency: int) -> None:
                assert peer is not None
                jobs = max(args.jobs, concurrency * 4)
                theirs.rates.setdefault(concurrency, []).append(peer.throughput(concurrency, jobs))

            for index in range(args.rounds):
                steps: list[list[Callable[[], None]]] = [[latency_ours, latency_peer]]
                steps += [[partial(rate_ours, c), partial(rate_peer, c)] for c in args.concurrency]
                for step in steps:
                    alternate(step if peer else step[:1], index)
                ours.stream.append(runner.run(stream_rate(client, args.stream_tokens)))
                print(f"round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            runner.run(client.close())
    print_ours(ours, args)
    if peer is not None:
        print_table(ours, theirs, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300, help="jobs per latency sample and per throughput level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--miners", type=int, default=2)
    parser.add_argument("--peer", choices=["celery"], help="also run the same workload on this peer, alternating")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default: 3 with --peer, else 1)")
    parser.add_argument("--stream-tokens", type=int, default=8000, help="tokens of the one-watcher stream job")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.peer else 1)

    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "AITBC_HOME": str(home)}
        mint = [*aitbc("keys", "create", home=home)]
        client_key = subprocess.run(mint, env=env, check=True, capture_output=True, text=True).stdout.strip()
        miner_key = subprocess.run(
            [*mint, "--role", "miner"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        port = free_port()
        target = f"127.0.0.1:{port}"
        coordinator = aitbc("coordinator", "--listen", target, home=home)
        miners = [miner_command(target, miner_key, f"bench-{n}") for n in range(args.miners)]
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; coordinator and miners in separate processes")
        peer_context: contextlib.AbstractContextManager[CeleryPeer | None] = contextlib.nullcontext()
        if args.peer == "celery":
            if missing := peer_missing():
                print(f"{missing}; running this project's side only")
            else:
                from bench.peers.celery_peer import CeleryPeer, versions

                peer_context = CeleryPeer()
                print(f"peer: {versions()}; Redis without persistence, worker --pool prefork --concurrency 2")
        with peer_context as peer, processes([coordinator], env):
            asyncio.run(wait_until_serving(target))
            with processes(miners, env):
                measure(target, client_key, args, peer)


if __name__ == "__main__":
    main()
