"""A job another replica stored whose notification has not reached this replica yet (PostgreSQL only).

A client that submits on A and at once watches or cancels on B races A's NOTIFY to B. B must copy the job
from the store then, not answer from its stored events alone (a watch that ended after `pending`) or refuse
a cancel of a pending job. Two in-process coordinators share one database; B's notifications are held back
while the test says so, which stands for a notification still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import Assign
from aitbc.domain.events import JobEvent
from aitbc.domain.states import JobState
from aitbc.store.postgres import PostgresStore
from tests.coordinator.test_parts import CLIENT, CONFIG, attached, next_command, spec
from tests.support.postgres import PostgresCluster


class Deafness:
    """Holds back a coordinator's job notifications while `on`; what it held back is dropped, as if late."""

    def __init__(self, coordinator: Coordinator) -> None:
        replicas: Any = coordinator._replicas
        assert replicas is not None, "the replica part runs on PostgreSQL"
        hear = replicas._heard_job
        self.on = False

        def heard(*args: Any) -> None:
            if not self.on:
                hear(*args)

        replicas._heard_job = heard  # before start(): the listener takes the bound callback then


@contextlib.asynccontextmanager
async def replica(url: str, clock: ManualClock, deafness: list[Deafness]) -> AsyncIterator[Coordinator]:
    store = await PostgresStore.open(url)
    coordinator = Coordinator(store, CONFIG, clock=clock)
    deafness.append(Deafness(coordinator))
    await coordinator.start()
    try:
        yield coordinator
    finally:
        await coordinator.shutdown(0)
        await store.close()


@pytest.fixture
async def url(postgres_cluster: PostgresCluster) -> str:
    return await postgres_cluster.new_database()


async def test_a_watch_right_after_a_submit_elsewhere_follows_the_job_to_its_end(url: str) -> None:
    clock = ManualClock()
    deafness: list[Deafness] = []
    async with replica(url, clock, deafness) as a, replica(url, clock, deafness) as b:
        deafness[1].on = True
        job = await a.submit(CLIENT, spec("hello"), queue_if_unavailable=True)
        events: list[JobEvent] = []
        first = asyncio.Event()

        async def follow() -> None:
            async for event in b.watch(CLIENT, job.job_id):
                events.append(event)
                first.set()

        watching = asyncio.create_task(follow())
        await asyncio.wait_for(first.wait(), 5)
        deafness[1].on = False  # b has its copy now; from here it hears a's changes as usual
        session = await attached(a)
        assign = await next_command(session)
        assert isinstance(assign, Assign)
        await a.reports.tokens(session, job.job_id, 1, "Hi", 1)
        await a.reports.done(
            session, job.job_id, 1, output="Hi", prompt_tokens=1, completion_tokens=1, finish_reason="stop"
        )
        await asyncio.wait_for(watching, 10)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert [event.state for event in events if event.state is not None][-1] is JobState.COMPLETED
    assert "".join(event.text for event in events) == "Hi"


async def test_a_cancel_right_after_a_submit_elsewhere_cancels_the_pending_job(url: str) -> None:
    clock = ManualClock()
    deafness: list[Deafness] = []
    async with replica(url, clock, deafness) as a, replica(url, clock, deafness) as b:
        deafness[1].on = True
        job = await a.submit(CLIENT, spec("never mind"), queue_if_unavailable=True)
        canceled = await b.cancel(CLIENT, job.job_id)
        assert canceled.state is JobState.CANCELED
        deafness[1].on = False
        for _ in range(100):  # a hears b's cancel and drops the job from its queue
            if (await a.get(CLIENT, job.job_id)).state is JobState.CANCELED:
                break
            await asyncio.sleep(0.02)
        session = await attached(a)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(next_command(session), 0.3)  # nothing left to assign
