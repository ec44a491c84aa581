"""A coordinator whose store fails: submits get 503 STORE_UNAVAILABLE with Retry-After, over HTTP and gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest

from aitbc.coordinator.auth import create_api_key
from aitbc.coordinator.engine import CoordinatorConfig
from aitbc.domain.keys import Role
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.store.sqlite import SqliteStore
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc
from tests.conftest import TEST_CATALOG
from tests.coordinator.test_store_faults import FlakyStore
from tests.gateway.conftest import running_gateway
from tests.support.rpc import expect_error, key


@pytest.fixture
async def flaky_coordinator(tmp_path: Path) -> AsyncIterator[tuple[RunningCoordinator, FlakyStore]]:
    flaky = FlakyStore(await SqliteStore.open(tmp_path / "aitbc.db"))
    running = await start_coordinator(flaky, "127.0.0.1:0", CoordinatorConfig(catalog=TEST_CATALOG))
    try:
        yield running, flaky
    finally:
        flaky.failing = False
        await running.stop(grace=0)


async def test_submits_while_the_store_fails_get_503_with_retry_after(
    flaky_coordinator: tuple[RunningCoordinator, FlakyStore],
) -> None:
    running, flaky = flaky_coordinator
    client_key, _ = await create_api_key(running.store, Role.CLIENT, datetime.now(UTC))
    target = f"127.0.0.1:{running.port}"
    request = jobs_pb2.SubmitJobRequest(prompt="hello", model="tiny", queue_if_unavailable=True)
    flaky.failing = True
    async with grpc.aio.insecure_channel(target) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        submit = stub.SubmitJob(request, metadata=key(client_key))
        await expect_error(submit, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
    async with running_gateway(target) as gateway, httpx.AsyncClient(base_url=f"http://{gateway}") as http:
        body = {"prompt": "hello", "model": "tiny", "queue_if_unavailable": True}
        response = await http.post("/v1/jobs", json=body, headers={"X-Api-Key": client_key})
        assert response.status_code == 503
        assert response.json()["error_code"] == "STORE_UNAVAILABLE"
        assert int(response.headers["Retry-After"]) >= 1
        flaky.failing = False
        await running.coordinator.store_recovered()
        response = await http.post("/v1/jobs", json=body, headers={"X-Api-Key": client_key})
        assert response.status_code == 201, response.text
