"""Many idle miner streams on one coordinator: its memory, and whether their heartbeats are still on time.

`aitbc coordinator` runs in its own process. The fakes are not MinerAgents (one agent per stream would need a
process, or at least a channel, each): `--processes` client processes each open their share of `--streams`
bidirectional `MinerService.Connect` streams, multiplexed over `--channels` grpc.aio channels per process, one
asyncio task per stream (plus one that reads the stream, to see it end). Each stream sends a real MinerHello
(its own miner id `idle-N`, model `smollm2-135m-instruct`, one slot), waits for the Welcome (a failed handshake
is retried with exponential backoff and jitter, `--retries` times, as a MinerAgent would), then writes a
Heartbeat on the schedule the Welcome names, and nothing else. Stream N's heartbeats are due at `epoch +
interval * N / streams + k * interval`, so the due times spread evenly and the parent knows each one without
being told.

The Connect stream has no heartbeat acknowledgement; what the coordinator shows is when it last heard from each
miner: ListMiners' `last_seen`, the time it handled the stream's last message. Once every stream is connected,
for `--hold` seconds the parent takes a ListMiners snapshot every `--sample` seconds and computes, per online
fake, heartbeat lag = last_seen - the due time of the heartbeat last_seen belongs to (the latest due time at or
before it). A heartbeat a whole interval late would alias to a small lag, so a miner the coordinator has not
heard from for more than interval + 1 s at a snapshot counts as stale instead. The fakes report how late they
themselves sent (their own event loop's lag: part of the heartbeat lag, not the coordinator's), the Welcome
latency, and any stream the coordinator ended (a lease that expired closes it). A health check every 0.5 s, from
a process of its own, measures the coordinator's responsiveness meanwhile, and a round with no streams first
gives its baseline.

`--submits` SubmitJob calls, before the streams connect and again after the hold, time a submit of a
`synthetic` job that no fake serves (it stays queued and is canceled at once): a submit runs one dispatch pass.

Prints coordinator RSS (idle and with the streams), per-stream memory, heartbeat lag p50/p99, stale and ended
streams, the fakes' own lateness, health-check latency with and without the streams. Asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/idle_miners.py [--streams 10000] [--processes 4] [--channels 8] [--hold 60]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from aitbc.config import API_KEY_METADATA
from aitbc.v1 import miner_pb2, miner_pb2_grpc, network_pb2, network_pb2_grpc
from bench.backlog import rss_bytes
from bench.control_plane import aitbc, free_port, wait_until_serving
from tests.support.postgres import PostgresCluster

PREFIX = "idle-"
# What the fakes advertise. The SubmitJob probe asks for `synthetic`, which no fake serves, so that its jobs stay
# queued (and are canceled) instead of going to a fake that would never run them.
FAKE_MODEL = "smollm2-135m-instruct"
PROBE_MODEL = "synthetic"


def percentile(values: list[float], q: int) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100)[q - 1]


# The fakes, in their own processes.


class Fakes:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config: dict[str, Any] = config
        self.connected = 0
        self.failed: list[str] = []
        self.failures: list[str] = []
        self.welcome_ms: list[float] = []
        self.late_ms: list[float] = []
        self.heartbeats = 0
        self.ended: list[str] = []
        self.interval = 0.0
        self.stopping = asyncio.Event()
        self.all_in = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, self.reset)
        config = self.config
        channels = [grpc.aio.insecure_channel(config["target"]) for _ in range(config["channels"])]
        stubs = [miner_pb2_grpc.MinerServiceStub(channel) for channel in channels]
        opening = asyncio.Semaphore(config["opening"])
        began = time.perf_counter()
        tasks = [
            asyncio.create_task(self.stream(stubs[n % len(stubs)], config["first"] + n, opening))
            for n in range(config["count"])
        ]
        await self.all_in.wait()
        self.emit(connected=self.connected, failed=len(self.failed), interval=self.interval,
                  seconds=time.perf_counter() - began, errors=self.failed[:3], retried=len(self.failures),
                  retry_reasons=sorted(set(self.failures))[:5])  # fmt: skip
        await self.stopping.wait()
        self.emit(
            heartbeats=self.heartbeats,
            late_p50_ms=percentile(self.late_ms, 50), late_p99_ms=percentile(self.late_ms, 99),
            late_max_ms=max(self.late_ms, default=math.nan),
            welcome_p50_ms=percentile(self.welcome_ms, 50), welcome_p99_ms=percentile(self.welcome_ms, 99),
            ended=len(self.ended), ended_reasons=sorted(set(self.ended))[:3],
        )  # fmt: skip
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(channel.close() for channel in channels))

    def emit(self, **fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    def reset(self) -> None:
        self.late_ms.clear()
        self.heartbeats = 0

    def settled(self) -> None:
        if self.connected + len(self.failed) == self.config["count"]:
            self.all_in.set()

    async def stream(self, stub: Any, index: int, opening: asyncio.Semaphore) -> None:
        config = self.config
        metadata = ((API_KEY_METADATA, config["key"]),)
        hello = miner_pb2.MinerHello(
            miner_id=f"{PREFIX}{index}", models=[FAKE_MODEL], max_concurrency=1, backend="fake", version="0"
        )
        for attempt in range(config["retries"] + 1):
            async with opening:
                try:
                    call: Any = stub.Connect(metadata=metadata)
                    sent = time.perf_counter()
                    await call.write(miner_pb2.ConnectRequest(hello=hello))
                    welcome = await call.read()
                    assert isinstance(welcome, miner_pb2.ConnectResponse), "the stream ended before its Welcome"
                    break
                except (grpc.aio.AioRpcError, AssertionError) as error:
                    code = error.code().name if isinstance(error, grpc.aio.AioRpcError) else "EOF"
                    self.failures.append(f"{code} after {time.perf_counter() - sent:.1f}s")
            if attempt == config["retries"]:
                self.failed.append(self.failures[-1])
                self.settled()
                return
            # As a MinerAgent would: back off (with jitter) and connect again.
            await asyncio.sleep(min(10.0, 0.5 * 2**attempt) * (0.5 + random.random()))
        self.welcome_ms.append(1000 * (time.perf_counter() - sent))
        self.interval = welcome.welcome.heartbeat_interval.ToNanoseconds() / 1e9
        self.connected += 1
        self.settled()
        reader = asyncio.create_task(self.read(call))
        phase = config["epoch"] + self.interval * index / config["total"]
        beat = math.ceil((time.time() - phase) / self.interval)
        try:
            while not reader.done():
                due = phase + beat * self.interval
                await asyncio.sleep(max(0.0, due - time.time()))
                self.late_ms.append(1000 * (time.time() - due))
                await call.write(miner_pb2.ConnectRequest(heartbeat=miner_pb2.Heartbeat()))
                self.heartbeats += 1
                beat += 1
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        finally:
            reader.cancel()
            call.cancel()

    async def read(self, call: Any) -> None:
        try:
            while (message := await call.read()) is not grpc.aio.EOF:
                del message
            reason = "ended with OK"
        except grpc.aio.AioRpcError as error:
            reason = f"{error.code().name}: {error.details()}"
        if not self.stopping.is_set():
            self.ended.append(reason)


# The parent.


async def snapshot(channel: grpc.aio.Channel, key: str, epoch: float, interval: float, total: int) -> dict[str, Any]:
    stub = network_pb2_grpc.NetworkServiceStub(channel)
    began = time.perf_counter()
    reply = await stub.ListMiners(network_pb2.ListMinersRequest(), metadata=((API_KEY_METADATA, key),), timeout=60)
    call_s = time.perf_counter() - began
    fakes = [m for m in reply.miners if m.miner_id.startswith(PREFIX) and m.online]
    # The coordinator's "now" when it built the listing (the reply may take a while to arrive): its latest last_seen.
    taken = max((m.last_seen.ToNanoseconds() / 1e9 for m in fakes), default=time.time())
    lags: list[float] = []
    stale = 0
    online = len(fakes)
    for miner in fakes:
        seen = miner.last_seen.ToNanoseconds() / 1e9
        if taken - seen > interval + 1.0:
            stale += 1
            continue
        phase = epoch + interval * int(miner.miner_id[len(PREFIX) :]) / total
        due = phase + math.floor((seen - phase) / interval) * interval
        lags.append(1000 * (seen - due))
    return {"online": online, "stale": stale, "lags": lags, "list_ms": 1000 * call_s}


async def health_probe(target: str, seconds: float) -> list[float]:
    """Health-check latencies, measured from a process of their own (`probe_process`): the parent's loop is busy
    reading ListMiners snapshots of 10,000 miners, which would otherwise count against the coordinator."""
    loop = asyncio.get_running_loop()
    # spawn, not fork: a forked child of a process using gRPC hangs.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await loop.run_in_executor(pool, probe_process, target, seconds)


def probe_process(target: str, seconds: float) -> list[float]:
    async def probe() -> list[float]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=30)  # connects: not a latency of the check
            latencies = []
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                began = time.perf_counter()
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
                latencies.append(1000 * (time.perf_counter() - began))
                await asyncio.sleep(0.5)
            return latencies

    return asyncio.run(probe())


async def submit_probe(client: AsyncClient, jobs: int) -> list[float]:
    """ms per SubmitJob of a job no miner serves (it stays queued; canceled at once): one dispatch pass each."""
    latencies = []
    for _ in range(jobs):
        began = time.perf_counter()
        job = await client.submit_job("probe", model=PROBE_MODEL, max_tokens=16, queue_if_unavailable=True)
        latencies.append(1000 * (time.perf_counter() - began))
        await client.cancel_job(job.job_id)
    return latencies


async def read_line(process: asyncio.subprocess.Process, seconds: float) -> dict[str, Any]:
    assert process.stdout is not None
    async with asyncio.timeout(seconds):
        line = await process.stdout.readline()
    if not line:
        raise RuntimeError(f"fake process {process.pid} exited ({await process.wait()})")
    result: dict[str, Any] = json.loads(line)
    return result


async def parent(args: argparse.Namespace, target: str, miner_key: str, client_key: str, pid: int) -> None:
    idle_rss = rss_bytes(pid)
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 << 20)]) as channel:
        baseline = await health_probe(target, min(10.0, args.hold))
        client = AsyncClient(target, client_key)
        submits_idle = await submit_probe(client, args.submits)
        epoch = time.time() + 1.0
        per = [args.streams // args.processes + (n < args.streams % args.processes) for n in range(args.processes)]
        fakes = []
        for n, count in enumerate(per):
            config = {
                "target": target, "key": miner_key, "first": sum(per[:n]), "count": count, "total": args.streams,
                "channels": args.channels, "epoch": epoch, "opening": args.opening, "retries": args.retries,
            }  # fmt: skip
            fakes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--fake", json.dumps(config), stdout=asyncio.subprocess.PIPE
                )
            )
        began = time.perf_counter()
        ready = [await read_line(fake, args.ramp_timeout) for fake in fakes]
        ramp = time.perf_counter() - began
        connected = sum(r["connected"] for r in ready)
        interval = max(r["interval"] for r in ready)
        print(f"{connected:,} of {args.streams:,} streams connected in {ramp:.1f}s; heartbeat every {interval:g}s")
        for r in ready:
            if r["retried"]:
                print(f"  {r['retried']} handshakes retried, {r['failed']} gave up; e.g. {r['retry_reasons']}")
        for fake in fakes:
            fake.send_signal(signal.SIGUSR1)
        try:
            import psutil

            coordinator: Any = psutil.Process(pid)
            coordinator.cpu_percent()
        except ImportError:
            coordinator = None
        until = time.monotonic() + args.hold
        probe = asyncio.create_task(health_probe(target, args.hold))
        snapshots = []
        rss = [rss_bytes(pid)]
        while time.monotonic() + args.sample < until:
            await asyncio.sleep(args.sample)
            snapshots.append(await snapshot(channel, client_key, epoch, interval, args.streams))
            rss.append(rss_bytes(pid))
            last = snapshots[-1]
            print(
                f"  online {last['online']:,}, stale {last['stale']}, lag p50 {percentile(last['lags'], 50):.1f} ms "
                f"p99 {percentile(last['lags'], 99):.1f} ms, ListMiners {last['list_ms']:.0f} ms, "
                f"RSS {rss[-1] / 2**20:,.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
        loaded = await probe
        submits_loaded = await submit_probe(client, args.submits)
        await client.close()
        cpu = coordinator.cpu_percent() if coordinator is not None else math.nan
        for fake in fakes:
            fake.send_signal(signal.SIGTERM)
        finals = [await read_line(fake, 120) for fake in fakes]
        for fake in fakes:
            await fake.wait()
    lags = [lag for s in snapshots for lag in s["lags"]]
    heartbeats = sum(f["heartbeats"] for f in finals)
    print(f"\n{args.streams:,} idle fake miner streams, {args.processes} processes x {args.channels} channels, "
          f"{args.hold:g}s held, {len(snapshots)} ListMiners snapshots")  # fmt: skip

    def worst(name: str) -> str:
        return f"{max(float(f[name]) for f in finals):.1f}"

    ended = sum(f["ended"] for f in finals)
    submit_idle, submit_loaded = percentile(submits_idle, 50), percentile(submits_loaded, 50)
    reasons = sorted({r for f in finals for r in f["ended_reasons"]})[:2]
    rows = [
        ("streams connected / asked", f"{connected:,} / {args.streams:,} (in {ramp:.1f}s)"),
        ("coordinator RSS idle / with streams (max)", f"{idle_rss / 2**20:,.0f} / {max(rss) / 2**20:,.0f} MiB"),
        ("RSS per stream", f"{(max(rss) - idle_rss) / max(connected, 1) / 1024:,.1f} KiB"),
        ("coordinator CPU while holding", f"{cpu:.0f}% of one core"),
        ("heartbeats sent while holding", f"{heartbeats:,} ({heartbeats / args.hold:,.0f}/s)"),
        (
            "heartbeat lag (due -> coordinator's last_seen) p50 / p99",
            f"{percentile(lags, 50):.1f} / {percentile(lags, 99):.1f} ms (n={len(lags):,})",
        ),
        ("stale at a snapshot (not heard for > interval + 1 s)", str(sum(s["stale"] for s in snapshots))),
        ("streams the coordinator ended", f"{ended} {reasons if ended else ''}"),
        (
            "fakes' own send lateness p50 / p99 (worst process)",
            f"{worst('late_p50_ms')} / {worst('late_p99_ms')} ms",
        ),
        (
            "hello -> Welcome p50 / p99 (worst process)",
            f"{worst('welcome_p50_ms')} / {worst('welcome_p99_ms')} ms",
        ),
        ("health check p50 / p99, no streams", f"{percentile(baseline, 50):.2f} / {percentile(baseline, 99):.2f} ms"),
        ("health check p50 / p99, with streams", f"{percentile(loaded, 50):.2f} / {percentile(loaded, 99):.2f} ms"),
        ("health check p50, with / without streams", f"{percentile(loaded, 50) / percentile(baseline, 50):.2f}x"),
        (
            "SubmitJob p50, no streams / with streams",
            f"{submit_idle:.1f} / {submit_loaded:.1f} ms",
        ),
        (
            "SubmitJob p50, with / without streams",
            f"{submit_loaded / submit_idle:.1f}x",
        ),
        ("ListMiners of all streams (median)", f"{statistics.median(s['list_ms'] for s in snapshots):.0f} ms"),
    ]
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="fake-miner client processes")
    parser.add_argument("--channels", type=int, default=8, help="grpc.aio channels (connections) per process")
    parser.add_argument("--opening", type=int, default=100, help="handshakes in progress at once per process")
    parser.add_argument("--retries", type=int, default=5, help="handshake retries per stream, with backoff")
    parser.add_argument("--submits", type=int, default=20, help="SubmitJob probes without and with the streams")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds measured once all are connected")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between ListMiners snapshots")
    parser.add_argument("--ramp-timeout", type=float, default=900.0)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="run the coordinator on a throwaway PostgreSQL cluster, as a replica (its lease loop publishes the"
        " miners' profiles and roster at every renewal)",
    )
    parser.add_argument("--fake", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake:
        asyncio.run(Fakes(json.loads(args.fake)).run())
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, grpcio {grpc.__version__}")
    with contextlib.ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aitbc-bench-")))
        env = dict(os.environ)
        store: list[str] = []
        if args.postgres:
            cluster = PostgresCluster.create()
            stack.callback(cluster.destroy)
            cluster.start()
            asyncio.run(cluster.prepare_template())
            store = ["--store", asyncio.run(cluster.new_database())]
            print(f"store: PostgreSQL from {cluster.bindir}, the coordinator as a replica")

        def mint(*options: str) -> str:
            command = [*aitbc("keys", "create", *options, home=home), *store]
            return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.strip()

        miner_key, client_key = mint("--role", "miner"), mint()
        target = f"127.0.0.1:{free_port()}"
        coordinator = subprocess.Popen(aitbc("coordinator", "--listen", target, *store, home=home), env=env)
        try:
            with asyncio.Runner() as runner:
                runner.run(wait_until_serving(target))
                runner.run(parent(args, target, miner_key, client_key, coordinator.pid))
        finally:
            coordinator.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                coordinator.wait(timeout=60)
            if coordinator.poll() is None:
                coordinator.kill()


if __name__ == "__main__":
    main()
