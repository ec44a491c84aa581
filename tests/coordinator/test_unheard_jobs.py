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
from dataclasses import dataclass
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


@dataclass
class Replica:
    coordinator: Coordinator
    deafness: Deafness


@pytest.fixture
async def replicas(postgres_cluster: PostgresCluster) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two coordinators on one new database, one ManualClock, both hearing each other until told not to."""
    url = await postgres_cluster.new_database()
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        pair = []
        for _ in range(2):
            store = await PostgresStore.open(url)
            stack.push_async_callback(store.close)
            coordinator = Coordinator(store, CONFIG, clock=clock)
            pair.append(Replica(coordinator, Deafness(coordinator)))
            await coordinator.start()
            stack.push_async_callback(coordinator.shutdown, 0)
        yield pair[0], pair[1]


async def test_a_watch_right_after_a_submit_elsewhere_follows_the_job_to_its_end(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas[0].coordinator, replicas[1].coordinator
    b_deafness = replicas[1].deafness
    b_deafness.on = True
    job = await a.submit(CLIENT, spec("hello"), queue_if_unavailable=True)
    events: list[JobEvent] = []
    first = asyncio.Event()

    async def follow() -> None:
        async for event in b.watch(CLIENT, job.job_id):
            events.append(event)
            first.set()

    watching = asyncio.create_task(follow())
    await asyncio.wait_for(first.wait(), 5)
    b_deafness.on = False  # b has its copy now; from here it hears a's changes as usual
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


async def test_a_cancel_right_after_a_submit_elsewhere_cancels_the_pending_job(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas[0].coordinator, replicas[1].coordinator
    b_deafness = replicas[1].deafness
    b_deafness.on = True
    job = await a.submit(CLIENT, spec("never mind"), queue_if_unavailable=True)
    canceled = await b.cancel(CLIENT, job.job_id)
    assert canceled.state is JobState.CANCELED
    b_deafness.on = False
    # a hears b's cancel (its copy, which GetJob answers from, turns canceled) and drops the job from its queue.
    deadline = asyncio.get_running_loop().time() + 30
    while (await a.get(CLIENT, job.job_id)).state is not JobState.CANCELED:
        assert asyncio.get_running_loop().time() < deadline, "a never heard of b's cancel"
        await asyncio.sleep(0.02)
    session = await attached(a)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(next_command(session), 0.3)  # nothing left to assign
