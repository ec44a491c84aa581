"""Coordinator replicas as real processes: `aitbc coordinator --store postgresql://…` on one database.

Each replica is `python -m aitbc coordinator` on a free loopback port, with its log in a file (a pipe nobody
reads would stall it). All share one data directory, hence one signing key, as docs/scaling.md tells
operators to do. A test kills one with SIGKILL, or stops it with SIGTERM as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc.aio

from aitbc.store.postgres import PostgresStore
from tests.conftest import Keys, mint_keys
from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
# A priced model: settlement runs for every job (no catalog default is needed).
MODEL = "tiny"
CATALOG = {"models": [{"id": MODEL, "price_input_per_1k": 1000, "price_output_per_1k": 2000}]}


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given up; the others take its jobs over once the lease runs out."""
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), READY_TIMEOUT)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Replicas:
    def __init__(self, url: str, directory: Path, lease: float, options: tuple[str, ...] = ()) -> None:
        self.url = url
        self._directory = directory
        self._home = directory / "home"
        self._home.mkdir(parents=True, exist_ok=True)
        (self._home / "models.json").write_text(json.dumps(CATALOG))
        self._lease = lease
        self._options = options  # more `aitbc coordinator` flags, the same for every replica
        self.started: list[Replica] = []

    async def start(self, name: str) -> Replica:
        port = free_port()
        log = self._directory / f"{name}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "aitbc",
                "coordinator",
                "--listen",
                f"127.0.0.1:{port}",
                "--home",
                str(self._home),
                "--store",
                self.url,
                "--replica-lease",
                str(self._lease),
                "--grace",
                "1",
                *self._options,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        replica = Replica(name, port, process, log)
        self.started.append(replica)
        async with grpc.aio.insecure_channel(replica.target) as channel:
            ready = asyncio.ensure_future(channel.channel_ready())
            exited = asyncio.ensure_future(process.wait())
            done, _ = await asyncio.wait({ready, exited}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            for task in (ready, exited):
                task.cancel()
            if ready not in done or ready.cancelled():
                raise AssertionError(f"replica {name} did not start:\n{replica.log_text()}")
        return replica

    async def close(self) -> None:
        for replica in self.started:
            if replica.process.returncode is None:
                replica.process.send_signal(signal.SIGKILL)
                await replica.process.wait()


@contextlib.asynccontextmanager
async def replica_set(
    url: str, directory: Path, names: tuple[str, ...], *, lease: float = 2.0, options: tuple[str, ...] = ()
) -> AsyncIterator[tuple[Replicas, list[Replica]]]:
    replicas = Replicas(url, directory, lease, options)
    try:
        started = [await replicas.start(name) for name in names]
        yield replicas, started
    finally:
        await replicas.close()


async def make_keys(url: str) -> Keys:
    """API keys straight into the shared database, clients credited (as `aitbc keys create --store` would)."""
    store = await PostgresStore.open(url)
    try:
        return await mint_keys(store)
    finally:
        await store.close()
