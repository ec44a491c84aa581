"""The real gateway app under uvicorn on a free port, in front of the real coordinator from tests/conftest.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from aitbc.v1 import miner_pb2
from gateway import create_app
from gateway.limits import GatewayLimits
from gateway.options import GatewayOptions
from tests.conftest import Keys
from tests.support.scripted_miner import ScriptedMiner

MODEL = "llama3.2"
START_TIMEOUT = 10.0
POLL_TIMEOUT = 10.0


@asynccontextmanager
async def running_gateway(
    coordinator_target: str, limits: GatewayLimits | None = None, options: GatewayOptions | None = None
) -> AsyncIterator[str]:
    """Serve the app on 127.0.0.1:0 in this event loop; yields its base URL.

    uvicorn keeps its own WebSocket message limit (16 MiB), so a smaller
    `limits.max_body_bytes` is enforced by the app's handlers alone.
    """
    config = uvicorn.Config(
        create_app(coordinator_target, limits, options),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while not server.started:
        assert not serving.done(), "uvicorn stopped while starting"
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def gateway(target: str) -> AsyncIterator[str]:
    """HOST:PORT of a gateway in front of the test coordinator."""
    async with running_gateway(target) as address:
        yield address


@pytest.fixture
async def http(gateway: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway that sends the client key, as the seed documents show."""
    async with httpx.AsyncClient(base_url=f"http://{gateway}", headers={"X-Api-Key": keys.client}) as client:
        yield client


@pytest.fixture
async def miner(target: str, keys: Keys) -> AsyncIterator[ScriptedMiner]:
    """A connected scripted miner serving MODEL, four jobs at a time."""
    async with ScriptedMiner(target, keys.miner) as scripted:
        await scripted.hello("m1", [MODEL], max_concurrency=4)
        yield scripted


async def job_in_state(http: httpx.AsyncClient, job_id: str, status: str, **conditions: Any) -> dict[str, Any]:
    """GET the job until it is in `status` (and its fields equal `conditions`); the miner's messages are async."""
    deadline = asyncio.get_running_loop().time() + POLL_TIMEOUT
    while True:
        job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] == status and all(job.get(key) == value for key, value in conditions.items()):
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job stayed {job}"
        await asyncio.sleep(0.01)


async def assigned(miner: ScriptedMiner) -> miner_pb2.AssignJob:
    return (await miner.expect("assign")).assign


async def run_to_completion(miner: ScriptedMiner, job_id: str, *texts: str) -> None:
    """Start the job's first attempt, stream `texts`, and finish it."""
    await miner.started(job_id, 1)
    await miner.tokens(job_id, 1, *texts)
    await miner.done(job_id, 1, "".join(texts), completion_tokens=len(texts))


async def cancel_acknowledged(miner: ScriptedMiner, job_id: str, completion_tokens: int) -> None:
    request = (await miner.expect("cancel")).cancel
    assert request.job_id == job_id
    await miner.send(
        miner_pb2.ConnectRequest(
            cancel_ack=miner_pb2.CancelAck(job_id=job_id, attempt=request.attempt, completion_tokens=completion_tokens)
        )
    )
