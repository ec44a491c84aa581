"""Where a job's time goes: store calls, commits and gRPC messages per job, and the coordinator's CPU by part.

Starts `aitbc coordinator` and `--miners` synthetic miners (16-token jobs, unpaced) in their own processes and
runs `--concurrency` clients in this one, as bench/control_plane.py does, in two phases:

* counting: the coordinator runs with counters wrapped around the store's thread (calls by function, commit
  groups), the miner stream (messages each way, by kind) and the job service (SubmitJob, WatchJob and the
  events it streams); `--jobs` jobs run, and each count is printed per submitted job;
* profiling (with py-spy installed, `pip install py-spy`): a plain coordinator, the same load, and
  `py-spy record --threads` on it for `--seconds`; every sample is charged to the part its innermost Python
  frame belongs to (grpc, protobuf conversion, the interceptor, asyncio, the coordinator's own code, the store
  thread...), and each thread's busy share is its samples over the samples it could have had.

Asserts nothing; the counting wrappers slow the coordinator, so its rate is not printed. Run from the root:

    PYTHONPATH=. .venv/bin/python bench/per_job.py [--jobs 2000] [--concurrency 64] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aitbc.client import AsyncClient
from bench.control_plane import (
    aitbc,
    free_port,
    miner_command,
    processes,
    throughput,
    wait_for_miners,
    wait_until_serving,
)

# Installed in the counted coordinator before the CLI runs; writes the counts to $AITBC_COUNTS every second.
_COUNTING = r"""
import collections, json, os, sys, threading, time
import aitbc.services.job_service as js, aitbc.services.miner_service as ms, aitbc.store.sqlite_thread as st
counts = collections.Counter()
def dump():
    while True:
        time.sleep(1.0)
        with open(os.environ["AITBC_COUNTS"] + ".tmp", "w") as f:
            json.dump(dict(counts), f)
        os.replace(os.environ["AITBC_COUNTS"] + ".tmp", os.environ["AITBC_COUNTS"])
threading.Thread(target=dump, daemon=True).start()
submit, commit, handle = st.SqliteThread._submit, st.SqliteThread._commit, ms.MinerService._handle
async def _submit(self, function, args, *, writes):
    counts["store write" if writes else "store read"] += 1
    counts[("  write " if writes else "  read ") + getattr(function, "__qualname__", "?").split(".<locals>")[0]] += 1
    return await submit(self, function, args, writes=writes)
def _commit(self, connection, group):
    counts["store commit (group)"] += 1
    return commit(self, connection, group)
async def _handle(self, session, request):
    counts["miner -> coordinator: " + str(request.WhichOneof("msg"))] += 1
    return await handle(self, session, request)
command, event = ms.command_to_proto, js.event_to_proto
def _command(c):
    counts["coordinator -> miner: " + type(c).__name__] += 1
    return command(c)
def _event(e):
    counts["coordinator -> client: WatchJob event"] += 1
    return event(e)
st.SqliteThread._submit, st.SqliteThread._commit, ms.MinerService._handle = _submit, _commit, _handle
ms.command_to_proto, js.event_to_proto = _command, _event
unary = js.JobService.SubmitJob
async def SubmitJob(self, request, context):
    counts["client -> coordinator: SubmitJob"] += 1
    return await unary(self, request, context)
js.JobService.SubmitJob = SubmitJob
from aitbc.cli import main
sys.exit(main(sys.argv[1:]))
"""

# A sample's part: the first of these that its innermost Python frame (then the next one out) matches.
PARTS = [
    ("protobuf (messages, conversion)", re.compile(r"_pb2\.py|google/protobuf|aitbc/services/convert")),
    ("signatures (Ed25519)", re.compile(r"cryptography|nacl|aitbc/domain/signing")),
    ("interceptor (auth, errors, stream pump)", re.compile(r"aitbc/services/interceptors")),
    ("coordinator, servicers and domain code", re.compile(r"aitbc/")),
    ("grpc (grpc.aio's Python side)", re.compile(r"grpc/")),
    ("asyncio (loop, tasks, futures, queues)", re.compile(r"asyncio/|selectors\.py|_weakrefset|contextlib")),
]
STORE = "store thread (SQLite calls, commits, answering the loop)"
HANDOVER = "store calls' hand-over, on the loop (SqliteThread._submit)"
# The loop running a callback with no Python frame below it: grpc's Cython completions, mostly (with
# --native they end in sendmsg/write on the sockets), and futures settled by the store thread.
CALLBACKS = "grpc (Cython callbacks the loop runs: Handle._run)"


async def load(target: str, key: str, concurrency: int, jobs: int, miners: int) -> None:
    async with AsyncClient(target, key) as client:
        await wait_for_miners(client, miners)
        await throughput(client, concurrency, jobs)


async def profiled(target: str, key: str, concurrency: int, miners: int, record: list[str]) -> None:
    """The load, running from before py-spy starts until it has finished recording."""
    async with AsyncClient(target, key) as client:
        await wait_for_miners(client, miners)
        work = asyncio.create_task(throughput(client, concurrency, 10**9))
        await asyncio.sleep(1.0)  # past the ramp
        spy = await asyncio.create_subprocess_exec(*record, stdout=subprocess.DEVNULL)
        await spy.wait()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work


def charge(raw: Path, rate: int, seconds: float) -> None:
    """Samples by part and each thread's busy share, from py-spy's raw (collapsed stacks) output."""
    by_part: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    idle = 0
    for line in raw.read_text().splitlines():
        stack, _, tail = line.rpartition(" ")
        samples = int(tail)
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread")), "?")
        python = [f for f in frames if ".py:" in f or ".pyx" in f]
        leaf = python[-1] if python else ""
        if any(f.startswith("SqliteThread._run ") for f in frames):
            if leaf.startswith("SqliteThread._run "):
                idle += samples  # the thread's own line is the wait for the next call
                continue
            part = STORE
        elif any("sqlite_thread.py" in f for f in python):
            part = HANDOVER
        elif "_poll_wrapper" in thread:
            by_thread["grpc poller thread (blocked in poll or working: py-spy cannot tell)"] += samples
            continue
        elif leaf.startswith("EpollSelector.select"):
            idle += samples  # the loop waiting for I/O: idle, which py-spy's heuristic does not see
            continue
        elif leaf.startswith("Handle._run"):
            part = CALLBACKS
        else:
            part = next((name for f in reversed(python) for name, rx in PARTS if rx.search(f)), "other")
        by_part[part] += samples
        by_thread["store thread" if part == STORE else thread] += samples
    total = sum(by_part.values())
    possible = rate * seconds
    print(f"\ncoordinator CPU by part (py-spy, {total:,} busy samples at {rate}/s over {seconds:g}s)")
    print("| part | share of busy samples |\n|---|---|")
    for name, part_samples in by_part.most_common():
        print(f"| {name} | {100 * part_samples / total:.1f}% |")
    print("\nbusy share of each thread (samples / samples possible):")
    for name, thread_samples in by_thread.most_common(4):
        print(f"  {name}: {100 * thread_samples / possible:.0f}%")
    print(f"  samples that were waits py-spy took for work (epoll, the store's queue): {idle:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs counted")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--miners", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds profiled")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--native",
        action="store_true",
        help="py-spy --native: see into Cython and C frames (pauses the process per sample)",
    )
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw (collapsed stacks) output here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aitbc-bench-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "AITBC_HOME": str(home), "AITBC_COUNTS": str(home / "counts.json")}
        mint = aitbc("keys", "create", home=home)
        client_key = subprocess.run(mint, env=env, check=True, capture_output=True, text=True).stdout.strip()
        miner_key = subprocess.run(
            [*mint, "--role", "miner"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

        def run(counting: bool, during: float | None) -> None:
            target = f"127.0.0.1:{free_port()}"
            plain = aitbc("coordinator", "--listen", target, home=home)
            coordinator = [sys.executable, "-c", _COUNTING, *plain[3:]] if counting else plain
            miners = [miner_command(target, miner_key, f"bench-{n}") for n in range(args.miners)]
            with processes([coordinator], env) as started:
                asyncio.run(wait_until_serving(target))
                with processes(miners, env):
                    if during is None:
                        asyncio.run(load(target, client_key, args.concurrency, args.jobs, args.miners))
                        time.sleep(1.5)  # the counts' last dump
                        return
                    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                    raw = home / "profile.txt"
                    record = [py_spy, "record", "--pid", str(started[0].pid), "--duration", f"{during:g}"]
                    record += ["--rate", str(args.rate), "--format", "raw", "--threads", "--output", str(raw)]
                    record += ["--native"] if args.native else []
                    asyncio.run(
                        profiled(
                            target,
                            client_key,
                            args.concurrency,
                            args.miners,
                            record if args.native else [*record, "--nonblocking"],
                        )
                    )
                    charge(raw, args.rate, during)
                    if args.raw:
                        shutil.copy(raw, args.raw)

        run(True, None)
        counts = json.loads((home / "counts.json").read_text())
        jobs = counts["client -> coordinator: SubmitJob"]
        print(f"{jobs:,} jobs ({args.concurrency} in flight, 16 tokens each, {args.miners} synthetic miners)")
        print("| per job | count |\n|---|---|")
        for name, count in sorted(counts.items(), key=lambda item: (not item[0].startswith("store"), -item[1])):
            if count / jobs >= 0.05:
                print(f"| {name} | {count / jobs:.2f} |")
        if shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists():
            run(False, args.seconds)
        else:
            print("py-spy is not installed (pip install py-spy): no profile")


if __name__ == "__main__":
    main()
