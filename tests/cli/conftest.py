"""The `aitbc` command through its real entry point, against a loopback stack.

`aitbc(...)` runs `aitbc.cli.main` in a worker thread (the blocking client must not stall the coordinator,
which serves on the test's event loop); `spawn_aitbc(...)` runs `python -m aitbc` as a process of its own,
for what needs one: signals (Ctrl-C), stdin, and `aitbc up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aitbc import config
from aitbc.cli import main
from aitbc.client import AsyncClient
from aitbc.coordinator.engine import CoordinatorConfig
from miner import MinerAgent, MinerConfig
from miner.backends.synthetic import SyntheticBackend
from tests.conftest import TEST_CATALOG, Keys

REPO = Path(__file__).resolve().parents[2]
# Deadline for one step of a spawned command (a line of output, its exit): generous, steps take milliseconds.
STEP_TIMEOUT = 30.0
# The default model of the test coordinator: what the synthetic miner serves, as `aitbc up` would set it.
DEFAULT_MODEL = "synthetic"


@pytest.fixture
def coordinator_config() -> CoordinatorConfig:
    return CoordinatorConfig(catalog=TEST_CATALOG, default_model=DEFAULT_MODEL, max_queued_per_client=2)


@pytest.fixture
def cli_env(target: str, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The coordinator and the client key, found the way a user's are: through the environment."""
    values = {
        config.ENV_COORDINATOR: target,
        config.ENV_API_KEY: keys.client,
        config.ENV_HOME: str(tmp_path / "home"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


Aitbc = Callable[..., Coroutine[Any, Any, int]]


@pytest.fixture
def aitbc(cli_env: dict[str, str]) -> Aitbc:
    async def run(*args: str) -> int:
        exit_code: int = await asyncio.to_thread(main, list(args))
        return exit_code

    return run


@pytest.fixture
async def synthetic_miner(target: str, keys: Keys) -> AsyncIterator[MinerAgent]:
    """A real miner agent serving the synthetic model (and llama3.2 as a CPU miner), 50 tokens a second."""
    backend = SyntheticBackend(models=(DEFAULT_MODEL, "llama3.2"), tokens_per_second=50)
    agent = MinerAgent(MinerConfig(coordinator=target, api_key=keys.miner, miner_id="cpu-1"), backend)
    task = asyncio.create_task(agent.run())
    try:
        # Connected once it has run a job: tests may then submit without --queue.
        async with AsyncClient(target, keys.client) as client:
            warm_up = await client.submit_job("warm up", DEFAULT_MODEL, max_tokens=1, queue_if_unavailable=True)
            await client.wait_for_job(warm_up.job_id, timeout=STEP_TIMEOUT)
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def free_port() -> int:
    """A local port free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Spawned:
    """A running `python -m aitbc ...`, with its stdout and stderr as pipes."""

    process: asyncio.subprocess.Process

    async def read_until(self, text: str, *, stream: str = "stdout") -> str:
        """Everything the stream says up to and including the first line that contains `text`."""
        reader = self.process.stdout if stream == "stdout" else self.process.stderr
        assert reader is not None
        seen: list[str] = []
        while True:
            line = (await asyncio.wait_for(reader.readline(), STEP_TIMEOUT)).decode()
            assert line, f"{stream} ended before {text!r}; it said: {''.join(seen)!r}"
            seen.append(line)
            if text in line:
                return "".join(seen)

    async def read_some(self, stream: str = "stdout") -> str:
        reader = self.process.stdout if stream == "stdout" else self.process.stderr
        assert reader is not None
        return (await asyncio.wait_for(reader.read(1024), STEP_TIMEOUT)).decode()

    def interrupt(self) -> None:
        """Ctrl-C."""
        self.process.send_signal(signal.SIGINT)

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the exit; its status and the rest of its stdout and stderr."""
        out, err = await asyncio.wait_for(self.process.communicate(), STEP_TIMEOUT)
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def spawn_aitbc(*args: str, env: dict[str, str], stdin: bytes | None = None) -> AsyncIterator[Spawned]:
    """`python -m aitbc ARGS` on this checkout; killed on the way out if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aitbc",
        *args,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
    try:
        yield Spawned(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
