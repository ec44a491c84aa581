"""A replica's copy of a job another replica changes (JobTable.mirror): the row and the events always agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aitbc.coordinator.clock import SystemClock
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.store_health import StoreHealth
from aitbc.domain.catalog import ModelEntry
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams
from aitbc.domain.routing import RouteRequest
from aitbc.domain.states import JobState
from aitbc.store.base import JobChanges, Store

ROUTE = RouteRequest(ModelEntry(id="m"), 1, 16, None)


class CommitsBetweenReads:
    """The store as a replica reads it while another commits: right after its first read of events,
    the other replica's next change lands, before the copy reads the job's row."""

    def __init__(self, store: Store, other_change: Any) -> None:
        self._store = store
        self._other_change = other_change

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]:
        events = await self._store.events(job_id, from_seq=from_seq)
        if self._other_change is not None:
            change, self._other_change = self._other_change, None
            await change()
        return events


async def test_a_copy_reads_on_until_its_events_reach_the_rows_state(store: Store) -> None:
    clock = SystemClock()
    other = JobTable(store, clock, StoreHealth(store, clock))
    now = datetime.now(UTC)
    spec = JobSpec(prompt="p", model="m", params=SamplingParams())
    created, theirs = await other.create(JobRecord("job_1", "owner", JobState.PENDING, spec, now, now), ROUTE)
    assert theirs is not None
    await other.transition(theirs, JobState.ASSIGNED, JobChanges(miner_id="m", attempt=1), expected_attempt=0)

    async def start_running() -> None:
        await other.transition(theirs, JobState.RUNNING, JobChanges(), expected_attempt=1)

    racing = CommitsBetweenReads(store, start_running)
    mine = JobTable(racing, clock, StoreHealth(racing, clock))
    copy = mine.adopt(created, (await store.events("job_1"))[:1], ROUTE)

    changed = await mine.mirror(copy)

    assert changed is not None
    before, record = changed
    assert (before.state, record.state) == (JobState.PENDING, JobState.RUNNING)
    assert [event.state for event in copy.since(1)] == [JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING]
    assert copy.next_seq == 4


async def test_a_copy_that_missed_nothing_reports_no_change(store: Store) -> None:
    clock = SystemClock()
    jobs = JobTable(store, clock, StoreHealth(store, clock))
    now = datetime.now(UTC)
    spec = JobSpec(prompt="p", model="m", params=SamplingParams())
    _, live = await jobs.create(JobRecord("job_1", "owner", JobState.PENDING, spec, now, now), ROUTE)
    assert live is not None
    await jobs.transition(live, JobState.ASSIGNED, JobChanges(miner_id="m", attempt=1), expected_attempt=0)
    assert await jobs.mirror(live) is None  # its own writes: memory has them, nothing to act on
