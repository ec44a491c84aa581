"""examples/node against a loopback coordinator and gateway: the @grpc/grpc-js client and miner, the OpenAI client.

Skipped when node is missing, or when the examples' dependencies are: `make test` (through
`make node-examples`) installs them from the lockfile (`npm ci`) into examples/node/node_modules, which
git ignores; a test reaches no network, so it does not install them itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Keys
from tests.gateway.conftest import MODEL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "node"
STEP_TIMEOUT = 30.0
PAYOUT = "0x" + "cd" * 20


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed to run examples/node (Node 20 or later)")
    if not (EXAMPLES / "node_modules").is_dir():
        pytest.skip("examples/node's dependencies are not installed: run `make node-examples` (npm ci)")
    return node


async def run_example(node: str, script: str, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run one example to its end (on this event loop's own subprocess: the servers run on this loop)."""
    process = await asyncio.create_subprocess_exec(
        node,
        script,
        *args,
        cwd=EXAMPLES,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), STEP_TIMEOUT)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.fixture
async def node_miner(node: str, target: str, keys: Keys) -> AsyncIterator[None]:
    """miner.js serving MODEL, connected once it says so."""
    env = {**os.environ, "AITBC_COORDINATOR": target, "AITBC_API_KEY": keys.miner, "AITBC_MINER_ID": "node-miner"}
    process = await asyncio.create_subprocess_exec(
        node, "miner.js", MODEL, PAYOUT, cwd=EXAMPLES, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), STEP_TIMEOUT)
    assert line.decode().strip() == "connected as node-miner"
    try:
        yield
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), STEP_TIMEOUT)


@pytest.mark.usefixtures("node_miner")
async def test_the_node_grpc_client_runs_a_job_on_the_node_miner(node: str, target: str, keys: Keys) -> None:
    env = {"AITBC_COORDINATOR": target, "AITBC_API_KEY": keys.client}
    code, output = await run_example(node, "grpc_client.js", "hello from node", MODEL, env=env)
    assert code == 0, output
    assert output.startswith("job: job_")
    assert "Echo: hello from node" in output
    assert output.rstrip().endswith("status: JOB_STATE_COMPLETED tokens: 4")
    # A refused request: the client decodes the rich status's ErrorInfo from the trailers.
    code, output = await run_example(node, "grpc_client.js", "hi", "no-such-model", env=env)
    assert code == 1
    assert output.startswith("error: MODEL_NOT_FOUND field=model model: unknown model 'no-such-model'")


@pytest.mark.usefixtures("node_miner")
async def test_the_openai_node_client_streams_a_chat_through_the_gateway(node: str, gateway: str, keys: Keys) -> None:
    code, output = await run_example(node, "openai_client.js", f"http://{gateway}", env={"AITBC_API_KEY": keys.client})
    assert code == 0, output
    assert output.splitlines()[0] == "models: llama-3.2-1b-instruct"
    assert "Echo: Say hello from Node" in output
    # A wrong key: the OpenAI client shows the gateway's message, not "401 status code (no body)".
    code, output = await run_example(node, "openai_client.js", f"http://{gateway}", env={"AITBC_API_KEY": "aitbc_x"})
    assert code == 1
    assert output.startswith("error: 401 unauthenticated: 401 ")
    assert "no body" not in output
