"""Cancellation as the seed describes it: `canceling` until the miner acknowledges, then `canceled`, and
`canceled` with the reason recorded when it never does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import Cancel
from aitbc.domain.states import JobState
from aitbc.services.convert import job_to_proto
from aitbc.v1 import jobs_pb2
from tests.coordinator.test_parts import CLIENT, CONFIG, assigned, attached, coordinator, next_command, spec
from tests.coordinator.test_parts import clock as clock  # the ManualClock fixture, over tests/conftest.py's

__all__ = ["clock", "coordinator"]  # the fixtures, shared with test_parts


@pytest.fixture
def database(store_target: Path | str) -> Path | str:
    """Every test here runs on both stores: `store_target` is parametrised over SQLite and PostgreSQL."""
    return store_target


async def test_a_running_job_shows_canceling_until_the_miner_acknowledges(coordinator: Coordinator) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    await coordinator.reports.tokens(session, job.job_id, 1, "so far", 2)
    cancel = asyncio.create_task(coordinator.cancel(CLIENT, job.job_id))
    assert isinstance(await next_command(session), Cancel)
    shown = job_to_proto(await coordinator.get(CLIENT, job.job_id))
    assert (shown.status, shown.cancel_requested) == (jobs_pb2.JOB_STATE_CANCELING, True)
    coordinator.reports.cancel_acknowledged(session, job.job_id, 1, 2)
    canceled = await cancel
    assert (canceled.state, canceled.error) == (JobState.CANCELED, "canceled by the client")
    shown = job_to_proto(await coordinator.get(CLIENT, job.job_id))
    assert (shown.status, shown.cancel_requested) == (jobs_pb2.JOB_STATE_CANCELED, False)


async def test_without_an_ack_the_job_ends_canceled_with_the_reason(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    cancel = asyncio.create_task(coordinator.cancel(CLIENT, job.job_id))
    assert isinstance(await next_command(session), Cancel)
    assert job_to_proto(await coordinator.get(CLIENT, job.job_id)).status == jobs_pb2.JOB_STATE_CANCELING
    await clock.advance(CONFIG.cancel_ack_timeout)
    canceled = await cancel
    assert canceled.state is JobState.CANCELED
    assert canceled.error == (
        f"canceled by the client; miner miner-1 did not acknowledge the cancel within {CONFIG.cancel_ack_timeout:g}s"
    )
    assert (await coordinator.get(CLIENT, job.job_id)).error == canceled.error


async def test_a_queued_job_is_canceled_at_once(coordinator: Coordinator) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    canceled = await coordinator.cancel(CLIENT, job.job_id)
    assert (canceled.state, canceled.error) == (JobState.CANCELED, "canceled by the client")
