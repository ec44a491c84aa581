"""The account feed without gRPC: a real SQLite file, a ManualClock, miners as sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aitbc.coordinator.account_feed import AccountFeed, FeedStarted, FeedUpdate, JobProgress
from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.live_job import LiveJob
from aitbc.domain.catalog import ModelEntry
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.routing import RouteRequest
from aitbc.domain.states import JobState
from aitbc.store.urls import open_store

from .test_parts import ADMIN, CLIENT, MINER, OTHER_CLIENT, assigned, attached, spec, started

RECEIVE_TIMEOUT = 5.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def coordinator(store_target: Path | str, clock: ManualClock) -> AsyncIterator[Coordinator]:
    """On both stores: `store_target` is parametrised over SQLite and PostgreSQL (tests/conftest.py)."""
    store = await open_store(store_target)
    try:
        async with started(store, clock) as coordinator:
            yield coordinator
    finally:
        await store.close()


class Reader:
    """Reads a subscription; can also tell that nothing is queued, without ending it as a cancelled read would."""

    def __init__(self, updates: AsyncIterator[FeedUpdate]) -> None:
        self._updates = updates
        self._next: asyncio.Future[FeedUpdate] | None = None

    async def receive(self) -> FeedUpdate:
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self._updates))
        try:
            return await asyncio.wait_for(asyncio.shield(self._next), RECEIVE_TIMEOUT)
        finally:
            self._next = None

    async def describe_next(self) -> str:
        return describe(await self.receive())

    async def stop(self) -> None:
        """End a read left waiting (by `nothing_queued`), so that the subscription can close."""
        if self._next is not None:
            self._next.cancel()
            await asyncio.wait([self._next])

    async def nothing_queued(self) -> None:
        self._next = asyncio.ensure_future(anext(self._updates))
        # One turn of the loop runs the read up to its wait for the next update, or to an update queued.
        await asyncio.sleep(0)
        assert not self._next.done(), self._next.result()


@asynccontextmanager
async def subscribed(updates: AsyncGenerator[FeedUpdate, None]) -> AsyncIterator[Reader]:
    """A reader of `updates` once its first update, FeedStarted, said it is live."""
    async with aclosing(updates):
        reader = Reader(updates)
        assert isinstance(await reader.receive(), FeedStarted)
        try:
            yield reader
        finally:
            await reader.stop()


def describe(update: FeedUpdate) -> str:
    if isinstance(update, JobProgress):
        return f"{update.job_id}: progress {update.completion_tokens} tokens at seq {update.seq}"
    assert isinstance(update, JobEvent)
    assert update.state is not None, "token events are never passed on one by one"
    return f"{update.job_id}: {update.state}"


async def test_a_subscriber_sees_every_state_change_of_its_account_and_no_other(coordinator: Coordinator) -> None:
    async with (
        subscribed(coordinator.watch_account(CLIENT)) as mine,
        subscribed(coordinator.watch_account(ADMIN)) as everyone,
    ):
        session = await attached(coordinator)
        job = await coordinator.submit(CLIENT, spec())
        # A model no miner serves: it stays pending, so the slot the first job frees stays empty.
        other = await coordinator.submit(OTHER_CLIENT, spec(model="m"), queue_if_unavailable=True)
        await assigned(coordinator, session)
        assert await coordinator.reports.done(
            session, job.job_id, 1, output="", prompt_tokens=1, completion_tokens=0, finish_reason="stop"
        )
        expected = [f"{job.job_id}: {state}" for state in ("pending", "assigned", "running", "completed")]
        assert [await mine.describe_next() for _ in expected] == expected
        seen_by_admin = [await everyone.describe_next() for _ in range(5)]
        assert seen_by_admin == [*expected[:2], f"{other.job_id}: pending", *expected[2:]]
        await coordinator.cancel(OTHER_CLIENT, other.job_id)
        assert await everyone.describe_next() == f"{other.job_id}: canceled"
        await mine.nothing_queued()


async def test_progress_is_coalesced_and_never_follows_the_next_state(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    async with subscribed(coordinator.watch_account(CLIENT)) as feed:
        session = await attached(coordinator)
        job = await coordinator.submit(CLIENT, spec())
        await assigned(coordinator, session)
        for _ in range(5):
            await coordinator.reports.tokens(session, job.job_id, 1, "x", 1)
        # pending, assigned, running (the first token marks it), then the first token's progress at once.
        assert [await feed.describe_next() for _ in range(4)] == [
            f"{job.job_id}: pending",
            f"{job.job_id}: assigned",
            f"{job.job_id}: running",
            f"{job.job_id}: progress 1 tokens at seq 4",
        ]
        await feed.nothing_queued()  # the other four tokens wait for the interval
        await clock.advance(0.25)
        latest = await feed.receive()
        assert isinstance(latest, JobProgress)
        assert (latest.seq, latest.completion_tokens, latest.progress) == (8, 5, 5 * 100 // 8)
        await coordinator.reports.tokens(session, job.job_id, 1, "y", 1)
        await coordinator.reports.tokens(session, job.job_id, 1, "z", 1)
        # Within the interval: held back, then superseded by the completion, which carries the usage.
        await coordinator.reports.done(
            session, job.job_id, 1, output="xxxxxyz", prompt_tokens=1, completion_tokens=7, finish_reason="stop"
        )
        completed = await feed.receive()
        assert isinstance(completed, JobEvent)
        assert (completed.state, completed.completion_tokens) == (JobState.COMPLETED, 7)
        await clock.advance(1)
        await feed.nothing_queued()


async def test_a_subscriber_that_falls_behind_is_dropped_without_slowing_the_others() -> None:
    feed = AccountFeed(ManualClock(), max_queued=2)
    async with (
        subscribed(feed.subscribe(CLIENT.owner_id)) as slow,
        subscribed(feed.subscribe(CLIENT.owner_id)) as keeping_up,
    ):
        live = live_job()
        for seq, state in enumerate((JobState.ASSIGNED, JobState.RUNNING, JobState.PENDING), start=2):
            feed.publish(live, state_event(seq, state))
            assert isinstance(await keeping_up.receive(), JobEvent)
        # The slow one gets what was queued before it fell behind, then the error.
        assert [await slow.describe_next() for _ in range(2)] == ["job_1: assigned", "job_1: running"]
        with pytest.raises(AitbcError) as dropped:
            await slow.receive()
        assert dropped.value.reason is Reason.WATCH_TOO_SLOW
        feed.publish(live, state_event(5, JobState.ASSIGNED))
        assert await keeping_up.describe_next() == "job_1: assigned"


async def test_leaving_unsubscribes_and_a_miner_key_is_refused(coordinator: Coordinator) -> None:
    feed = AccountFeed(ManualClock())
    async with subscribed(feed.subscribe("someone")):
        assert feed.watched("someone")
    assert not feed.watched("someone")
    with pytest.raises(AitbcError) as refused:
        await anext(coordinator.watch_account(MINER))
    assert refused.value.reason is Reason.PERMISSION_DENIED


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def live_job() -> LiveJob:
    record = JobRecord("job_1", CLIENT.owner_id, JobState.PENDING, spec(), T0, T0)
    first = state_event(1, JobState.PENDING)
    return LiveJob(record, [first], RouteRequest(ModelEntry(id="tiny"), 1, 8, None))


def state_event(seq: int, state: JobState) -> JobEvent:
    return JobEvent(job_id="job_1", seq=seq, time=T0, kind=EventKind.STATE, state=state)
