"""The coordinator's Prometheus endpoint (`--metrics-listen`), scraped over real HTTP while a job runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.services.metrics import CoordinatorMetrics
from aitbc.services.server import RunningCoordinator, start_coordinator
from aitbc.store.sqlite import SqliteStore
from aitbc.v1 import jobs_pb2, jobs_pb2_grpc
from tests.conftest import Keys
from tests.coordinator.test_parts import CLIENT, CONFIG, assigned, attached, spec
from tests.support.rpc import key, until_event
from tests.support.scripted_miner import ScriptedMiner

S = jobs_pb2


@pytest.fixture
async def coordinator(database: Path, coordinator_config: CoordinatorConfig) -> AsyncIterator[RunningCoordinator]:
    running = await start_coordinator(database, "127.0.0.1:0", coordinator_config, metrics_listen="127.0.0.1:0")
    try:
        yield running
    finally:
        await running.stop(grace=0.5)


async def scrape(running: RunningCoordinator) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the coordinator's /metrics, by name and labels."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{running.metrics_port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_the_numbers_move_with_a_job(coordinator: RunningCoordinator, target: str, keys: Keys) -> None:
    before = await scrape(coordinator)
    assert value(before, "aitbc_jobs_submitted_total", model="tiny") == 0
    async with grpc.aio.insecure_channel(target) as channel, ScriptedMiner(target, keys.miner) as miner:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        await miner.hello("m1", ["tiny"], max_concurrency=2)
        online = await scrape(coordinator)
        assert value(online, "aitbc_miners_online", model="tiny") == 1
        assert value(online, "aitbc_miner_free_slots", model="tiny") == 2
        assert value(online, "aitbc_miner_connections_total") == 1

        request = S.SubmitJobRequest(prompt="Hello", model="tiny", params=S.SamplingParams(max_tokens=8))
        job = (await stub.SubmitJob(request, metadata=key(keys.client))).job
        await miner.expect("assign")
        await miner.started(job.job_id, 1)
        await until_event(stub, keys.client, job.job_id, lambda e: e.state_change.status == S.JOB_STATE_RUNNING)
        running = await scrape(coordinator)
        assert value(running, "aitbc_jobs", model="tiny", state="running") == 1
        assert value(running, "aitbc_jobs", model="tiny", state="pending") == 0
        assert value(running, "aitbc_miner_free_slots", model="tiny") == 1
        assert value(running, "aitbc_job_queue_wait_seconds_count", model="tiny") == 1

        await miner.tokens(job.job_id, 1, "Hi", " there")
        await miner.done(job.job_id, 1, "Hi there", completion_tokens=2)
        await until_event(stub, keys.client, job.job_id, lambda e: e.state_change.status == S.JOB_STATE_COMPLETED)
        # A refused call is counted with its code.
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetJob(S.GetJobRequest(job_id=job.job_id), metadata=key("aitbc_client_wrong"))

    after = await scrape(coordinator)
    assert value(after, "aitbc_jobs_submitted_total", model="tiny") == 1
    assert value(after, "aitbc_jobs_finished_total", model="tiny", state="completed") == 1
    assert value(after, "aitbc_jobs", model="tiny", state="running") == 0
    assert value(after, "aitbc_tokens_generated_total", model="tiny") == 2
    assert value(after, "aitbc_job_time_to_first_token_seconds_count", model="tiny") == 1
    assert value(after, "aitbc_job_duration_seconds_count", model="tiny", state="completed") == 1
    submit_ok = value(after, "aitbc_rpc_duration_seconds_count", method="/aitbc.v1.JobService/SubmitJob", code="OK")
    assert submit_ok == 1
    refused = value(
        after, "aitbc_rpc_duration_seconds_count", method="/aitbc.v1.JobService/GetJob", code="UNAUTHENTICATED"
    )
    assert refused == 1
    assert value(after, "aitbc_store_operation_seconds_count", operation="create_job", outcome="ok") == 1
    assert value(after, "aitbc_store_operation_seconds_count", operation="transition", outcome="ok") >= 3


async def test_a_reconnecting_miner_and_a_lost_lease_are_counted(
    coordinator: RunningCoordinator, target: str, keys: Keys
) -> None:
    async with ScriptedMiner(target, keys.miner) as first:
        await first.hello("m1", ["tiny"])
    async with ScriptedMiner(target, keys.miner) as second:
        await second.hello("m1", ["tiny"])
        samples = await scrape(coordinator)
    assert value(samples, "aitbc_miner_connections_total") == 2
    assert value(samples, "aitbc_miner_reconnects_total") == 1


async def test_metrics_are_off_unless_asked_for(database: Path) -> None:
    running = await start_coordinator(database, "127.0.0.1:0")
    try:
        assert running.metrics is None
        assert running.metrics_port is None
    finally:
        await running.stop(grace=0)


async def test_other_paths_get_404(coordinator: RunningCoordinator) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{coordinator.metrics_port}/other")
    assert response.status_code == 404


async def test_a_lost_lease_counts_an_expiry_and_a_requeue(tmp_path: Path) -> None:
    clock, metrics = ManualClock(), CoordinatorMetrics()
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    coordinator = Coordinator(store, CONFIG, clock=clock, observer=metrics)
    metrics.bind(coordinator.load)
    await coordinator.start()
    try:
        session = await attached(coordinator)
        job = await coordinator.submit(CLIENT, spec())
        await assigned(coordinator, session)
        await clock.advance(CONFIG.lease_timeout + 1)
        await coordinator.reports.wait_detached()
        assert (await coordinator.get(CLIENT, job.job_id)).attempt == 1
        assert metrics.registry.get_sample_value("aitbc_miner_lease_expiries_total") == 1
        assert metrics.registry.get_sample_value("aitbc_job_requeues_total", {"model": "tiny"}) == 1
        assert metrics.registry.get_sample_value("aitbc_jobs", {"model": "tiny", "state": "pending"}) == 1
        assert metrics.registry.get_sample_value("aitbc_miners_ready") == 0
    finally:
        await coordinator.shutdown(0)
        await store.close()
