"""schemathesis `--checks all` against the live gateway and coordinator, from the gateway's own /openapi.json."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.options import GatewayOptions
from tests.conftest import Keys
from tests.gateway.conftest import MODEL, running_gateway
from tests.support.scripted_miner import ScriptedMiner

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("AITBC_SCHEMATHESIS_EXAMPLES", "5"))


@pytest.fixture
async def gateway_with_rate(target: str) -> AsyncIterator[str]:
    async with running_gateway(target, options=GatewayOptions(wei_per_credit=10**12)) as address:
        yield address


async def test_schemathesis_finds_nothing(gateway_with_rate: str, target: str, keys: Keys, tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    gateway = gateway_with_rate
    # One model served by a miner with a payout address; every other model gets the deliberate 503.
    async with ScriptedMiner(target, keys.miner) as miner:
        await miner.hello("paid", [MODEL], max_concurrency=64, payout_address="0x" + "ab" * 20)
        await _run(cli, gateway, keys, tmp_path)


async def _run(cli: str, gateway: str, keys: Keys, tmp_path: Path) -> None:
    # A subprocess of this event loop's own: the gateway and coordinator under test run on this loop.
    process = await asyncio.create_subprocess_exec(
        cli,
        "--config-file",
        str(CONFIG),
        "run",
        f"http://{gateway}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "1",
        "--generation-deterministic",
        "-H",
        f"X-Api-Key: {keys.client}",
        # A watch of a job the scripted miner never finishes would not end; the deadline ends it (in-band 504).
        "-H",
        "Grpc-Timeout: 5S",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        # Its cache (.schemathesis/) stays out of the work tree.
        cwd=tmp_path,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20000:]
