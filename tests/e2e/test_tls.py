"""TLS and mutual TLS on every hop, with throwaway certificates: client and miner to coordinator, browser to
gateway, gateway to coordinator. Callers without the CA, or without a client certificate where one is
required, are refused."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest

from aitbc.client import AsyncClient
from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.tls import ClientTls, channel_credentials, client_tls, server_credentials
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc
from gateway.main import EmbeddedGateway, GatewaySettings
from miner.agent import MinerAgent
from miner.backends.synthetic import SyntheticBackend
from miner.config import MinerConfig
from tests.conftest import Keys
from tests.support.certs import Certs, make_certs
from tests.support.rpc import key

TIMEOUT = 20.0


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


@pytest.fixture
async def coordinator(
    database: Path, coordinator_config: CoordinatorConfig, certs: Certs
) -> AsyncIterator[RunningCoordinator]:
    """A coordinator that serves TLS only (no client certificates asked for)."""
    credentials = server_credentials(certs.server_cert, certs.server_key)
    running = await start_coordinator(database, "127.0.0.1:0", coordinator_config, credentials=credentials)
    try:
        yield running
    finally:
        await running.stop(grace=0.5)


async def run_miner(target: str, api_key: str, tls: ClientTls | None) -> tuple[MinerAgent, asyncio.Task[None]]:
    config = MinerConfig(coordinator=target, api_key=api_key, miner_id="tls-miner", tls=tls)
    agent = MinerAgent(config, SyntheticBackend(tokens_per_second=0))
    return agent, asyncio.create_task(agent.run())


async def stop_miner(agent: MinerAgent, task: asyncio.Task[None]) -> None:
    agent.stop()
    await asyncio.wait_for(task, TIMEOUT)


async def test_a_client_and_a_miner_with_the_ca_run_a_job(
    coordinator: RunningCoordinator, keys: Keys, certs: Certs
) -> None:
    target, tls = client_tls(f"grpcs://localhost:{coordinator.port}", ca=certs.ca)
    assert tls is not None
    agent, task = await run_miner(target, keys.miner, tls)
    try:
        assert await coordinator.coordinator.wait_for_miner("tls-miner", TIMEOUT)
        async with AsyncClient(target, keys.client, credentials=tls.credentials()) as client:
            job = await client.submit_job(prompt="Hello over TLS", model="synthetic", params={"max_tokens": 4})
            done = await client.wait_for_job(job.id, timeout=TIMEOUT)
        assert done.status.value == "completed"
        assert done.output
    finally:
        await stop_miner(agent, task)


async def submit(channel: grpc.aio.Channel, api_key: str) -> jobs_pb2.SubmitJobResponse:
    request = jobs_pb2.SubmitJobRequest(prompt="hi", model="synthetic", queue_if_unavailable=True)
    response: jobs_pb2.SubmitJobResponse = await jobs_pb2_grpc.JobServiceStub(channel).SubmitJob(
        request, metadata=key(api_key), timeout=TIMEOUT
    )
    return response


async def test_a_client_without_the_ca_is_refused(coordinator: RunningCoordinator, keys: Keys, tmp_path: Path) -> None:
    target = f"localhost:{coordinator.port}"
    # The system's roots do not know the test CA, and another CA does not vouch for the coordinator either.
    other = make_certs(tmp_path / "other", name="other")
    for credentials in (grpc.ssl_channel_credentials(), channel_credentials(other.ca)):
        async with grpc.aio.secure_channel(target, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await submit(channel, keys.client)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    # Nor does plaintext reach a TLS port.
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await submit(channel, keys.client)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_with_mutual_tls_a_miner_needs_a_client_certificate(
    database: Path, coordinator_config: CoordinatorConfig, certs: Certs
) -> None:
    credentials = server_credentials(certs.server_cert, certs.server_key, client_ca=certs.ca)
    running = await start_coordinator(database, "127.0.0.1:0", coordinator_config, credentials=credentials)
    try:
        miner_key, _ = await create_api_key(running.store, Role.MINER, datetime.now(UTC))
        target = f"localhost:{running.port}"
        # With the CA alone (no client certificate) the handshake fails: the miner never gets in.
        async with grpc.aio.secure_channel(target, channel_credentials(certs.ca)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await submit(channel, miner_key)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert not await running.coordinator.wait_for_miner("tls-miner", 0.0)
        # With a certificate the CA signed, the real agent connects.
        tls = ClientTls(ca=certs.ca, cert=certs.client_cert, key=certs.client_key)
        agent, task = await run_miner(target, miner_key, tls)
        try:
            assert await running.coordinator.wait_for_miner("tls-miner", TIMEOUT)
        finally:
            await stop_miner(agent, task)
    finally:
        await running.stop(grace=0.5)


async def test_the_gateway_serves_https_and_reaches_the_coordinator_over_tls(
    coordinator: RunningCoordinator, keys: Keys, certs: Certs, unused_tcp_port: int
) -> None:
    _, tls = client_tls(f"https://localhost:{coordinator.port}", ca=certs.ca)
    settings = GatewaySettings(
        coordinator_tls=tls, https_cert=certs.server_cert, https_key=certs.server_key, ready_min_miners=0
    )
    gateway = EmbeddedGateway(f"localhost:{coordinator.port}", f"127.0.0.1:{unused_tcp_port}", settings=settings)
    await gateway.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"https://localhost:{unused_tcp_port}", verify=ssl.create_default_context(cafile=certs.ca)
        ) as http:
            assert (await http.get("/readyz")).json()["status"] == "ready"
            submitted = await http.post(
                "/v1/jobs",
                headers={"X-Api-Key": keys.client},
                json={"prompt": "hi", "model": "synthetic", "queue_if_unavailable": True},
            )
            assert submitted.status_code == 201, submitted.text
        # A client that does not trust the CA is refused at the handshake.
        async with httpx.AsyncClient(base_url=f"https://localhost:{unused_tcp_port}") as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get("/livez")
    finally:
        await gateway.stop()
