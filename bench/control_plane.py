"""Control-plane benchmark: coordinator and synthetic miners in their own processes, the client here.

Prints medians and p99s; asserts nothing. The synthetic backend is unpaced with no
first-token delay, so every millisecond measured is the control plane's:

* submit -> assigned: the coordinator's own timestamps (job stored -> pushed to a miner);
* time to first token: from calling SubmitJob to the first token chunk arriving at the
  watching client (the backend's own TTFT is 0 by construction);
* 16-token round trip: from calling SubmitJob to the final event at the client;
* completed jobs/s with N clients each running submit -> watch-to-completion in a loop.

    .venv/bin/python bench/control_plane.py [--jobs 300] [--concurrency 1 4 16 64] [--miners 2]
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
from collections.abc import Iterator
from pathlib import Path

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aitbc.client import AsyncClient

MODEL = "synthetic"
TOKENS = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def aitbc(*args: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "aitbc", "--log-level", "WARNING", *args, "--home", str(home)]


@contextlib.contextmanager
def processes(commands: list[list[str]], env: dict[str, str]) -> Iterator[None]:
    started = [subprocess.Popen(command, env=env) for command in commands]
    try:
        yield
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


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(1000 * s for s in seconds)
    p99 = statistics.quantiles(ms, n=100)[98] if len(ms) >= 2 else ms[0]
    return f"  {name:<34} median {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ms)})"


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


async def measure(target: str, api_key: str, args: argparse.Namespace) -> None:
    async with AsyncClient(target, api_key) as client:
        await wait_for_miners(client, args.miners)
        samples = [await one_job(client) for _ in range(args.jobs)]
        print(f"latency, one job at a time, {TOKENS}-token jobs, {args.miners} synthetic miner(s):")
        print(summary("submit -> assigned (coordinator)", [s[0] for s in samples]))
        print(summary("SubmitJob call (client)", [s[1] for s in samples]))
        print(summary("time to first token (client)", [s[2] for s in samples]))
        print(summary(f"{TOKENS}-token job round trip (client)", [s[3] for s in samples]))
        print("throughput, completed jobs/s:")
        for concurrency in args.concurrency:
            rate = await throughput(client, concurrency, max(args.jobs, concurrency * 10))
            print(f"  {concurrency:>3} concurrent clients   {rate:8.1f} jobs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300, help="jobs per latency sample and per throughput level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--miners", type=int, default=2)
    args = parser.parse_args()

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
        miners = [
            [
                sys.executable, "-m", "aitbc", "--log-level", "WARNING", "miner",
                "--coordinator", target, "--api-key", miner_key, "--backend", "synthetic",
                "--tokens-per-second", "0", "--max-concurrency", "64",
                "--miner-id", f"bench-{n}",
            ]
            for n in range(args.miners)
        ]  # fmt: skip
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; coordinator and miners in separate processes")
        with processes([coordinator], env):
            asyncio.run(wait_until_serving(target))
            with processes(miners, env):
                asyncio.run(measure(target, client_key, args))


if __name__ == "__main__":
    main()
