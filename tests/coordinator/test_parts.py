"""The coordinator's parts without gRPC: a real SQLite file, a ManualClock, miners as sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aitbc.coordinator.clock import Clock, ManualClock
from aitbc.coordinator.engine import Coordinator, CoordinatorConfig
from aitbc.coordinator.miners import Assign, Assignment, Cancel, MinerCommand, MinerInfo, MinerSession, Welcome
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobSpec, SamplingParams
from aitbc.domain.keys import Principal, Role
from aitbc.domain.states import JobState
from aitbc.store.base import Store
from aitbc.store.urls import open_store
from tests.conftest import TEST_CATALOG

CLIENT = Principal(key_id="c1", role=Role.CLIENT, owner_id="client-1")
OTHER_CLIENT = Principal(key_id="c2", role=Role.CLIENT, owner_id="client-2")
MINER = Principal(key_id="m1", role=Role.MINER, owner_id="miner-owner")
OTHER_MINER = Principal(key_id="m2", role=Role.MINER, owner_id="someone-else")
ADMIN = Principal(key_id="a1", role=Role.ADMIN, owner_id="admin")
CONFIG = CoordinatorConfig(catalog=TEST_CATALOG)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@contextlib.asynccontextmanager
async def started(store: Store, clock: Clock, config: CoordinatorConfig = CONFIG) -> AsyncIterator[Coordinator]:
    """A coordinator on `store`, started, and shut down on the way out; the store stays open."""
    coordinator = Coordinator(store, config, clock=clock)
    await coordinator.start()
    try:
        yield coordinator
    finally:
        await coordinator.shutdown(0)


@pytest.fixture
async def coordinator(store_target: Path | str, clock: ManualClock) -> AsyncIterator[Coordinator]:
    """On both stores: `store_target` is parametrised over SQLite and PostgreSQL (tests/conftest.py)."""
    store = await open_store(store_target)
    try:
        async with started(store, clock) as coordinator:
            yield coordinator
    finally:
        await store.close()


def spec(prompt: str = "hello", model: str = "tiny") -> JobSpec:
    return JobSpec.build(prompt=prompt, model=model, params=SamplingParams.build(max_tokens=8))


def info(miner_id: str = "miner-1", slots: int = 1) -> MinerInfo:
    return MinerInfo(miner_id=miner_id, models=frozenset({"tiny"}), max_concurrency=slots)


async def next_command(session: MinerSession) -> MinerCommand:
    return await asyncio.wait_for(anext(aiter(session.commands())), 5)


async def attached(coordinator: Coordinator, miner_id: str = "miner-1", slots: int = 1) -> MinerSession:
    session = await coordinator.attach_miner(MINER, info(miner_id, slots))
    assert isinstance(await next_command(session), Welcome)
    return session


async def assigned(coordinator: Coordinator, session: MinerSession) -> Assign:
    command = await next_command(session)
    assert isinstance(command, Assign)
    return command


async def events_of(coordinator: Coordinator, job_id: str) -> list[JobEvent]:
    return [event async for event in coordinator.watch(CLIENT, job_id)]


async def test_a_job_runs_from_submit_to_completion(coordinator: Coordinator) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    assert (job.state, job.miner_id, job.attempt) == (JobState.ASSIGNED, "miner-1", 1)
    assign = await assigned(coordinator, session)
    await coordinator.reports.tokens(session, job.job_id, assign.attempt, "Hi", 1)
    await coordinator.reports.tokens(session, job.job_id, assign.attempt, " there", 1)
    done = await coordinator.reports.done(
        session, job.job_id, 1, output="Hi there", prompt_tokens=3, completion_tokens=2, finish_reason="stop"
    )
    assert done is not None
    assert (done.state, done.result, done.completion_tokens, done.prompt_tokens) == (
        JobState.COMPLETED,
        "Hi there",
        2,
        3,
    )
    events = await events_of(coordinator, job.job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.state or e.text for e in events] == [
        JobState.PENDING,
        JobState.ASSIGNED,
        JobState.RUNNING,
        "Hi",
        " there",
        JobState.COMPLETED,
    ]
    assert session.free_slots == 1


async def test_reports_about_a_lease_the_miner_lost_are_ignored(coordinator: Coordinator) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    # The wrong attempt, and a job it never held: neither changes anything.
    await coordinator.reports.tokens(session, job.job_id, 2, "stale", 1)
    assert (
        await coordinator.reports.done(
            session, "job_unknown", 1, output="x", prompt_tokens=1, completion_tokens=1, finish_reason="stop"
        )
        is None
    )
    current = await coordinator.get(CLIENT, job.job_id)
    assert (current.state, current.result) == (JobState.ASSIGNED, "")


async def test_a_silent_miner_loses_its_lease_when_time_moves_past_it(
    coordinator: Coordinator, clock: ManualClock
) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    await coordinator.reports.tokens(session, job.job_id, 1, "part", 1)
    await clock.advance(CONFIG.lease_timeout - 1)
    coordinator.touch(session)  # any message renews the lease
    await clock.advance(CONFIG.lease_timeout - 1)
    closed_in_time = session.closed
    await clock.advance(1.5)
    assert (closed_in_time, session.closed) == (False, True)
    await coordinator.reports.wait_detached()
    requeued = await coordinator.get(CLIENT, job.job_id)
    assert (requeued.state, requeued.attempt, requeued.result) == (JobState.PENDING, 1, "part")
    assert "no heartbeat" in requeued.error
    # The next miner resumes where the first one stopped.
    successor = await attached(coordinator, "miner-2")
    assign = await assigned(coordinator, successor)
    assert (assign.attempt, assign.resume_text, assign.resume_tokens) == (2, "part", 1)


async def test_a_job_that_waits_out_its_ttl_fails(coordinator: Coordinator, clock: ManualClock) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    assert job.queue_position == 0  # next in line
    await clock.advance(job.spec.ttl.total_seconds() + 1)
    events = await events_of(coordinator, job.job_id)
    assert events[-1].state is JobState.FAILED
    assert "TTL" in events[-1].error


async def test_cancel_waits_for_the_ack_and_keeps_what_was_produced(coordinator: Coordinator) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    await coordinator.reports.tokens(session, job.job_id, 1, "so far", 2)
    cancel = asyncio.create_task(coordinator.cancel(CLIENT, job.job_id))
    command = await next_command(session)
    assert isinstance(command, Cancel)
    assert not cancel.done()
    coordinator.reports.cancel_acknowledged(session, job.job_id, 1, 2)
    canceled = await cancel
    assert (canceled.state, canceled.result, canceled.completion_tokens) == (JobState.CANCELED, "so far", 2)
    assert session.free_slots == 1


async def test_cancel_without_an_ack_gives_up_after_the_timeout(coordinator: Coordinator, clock: ManualClock) -> None:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    cancel = asyncio.create_task(coordinator.cancel(CLIENT, job.job_id))
    assert isinstance(await next_command(session), Cancel)
    await clock.advance(CONFIG.cancel_ack_timeout)
    assert (await cancel).state is JobState.CANCELED


async def test_a_retryable_failure_requeues_until_the_attempt_cap(coordinator: Coordinator) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    for attempt in range(1, CONFIG.max_attempts + 1):
        session = await attached(coordinator, f"miner-{attempt}")
        assert (await assigned(coordinator, session)).attempt == attempt
        assert await coordinator.reports.failed(session, job.job_id, attempt, error="oom", retryable=True)
    final = await coordinator.get(CLIENT, job.job_id)
    assert final.state is JobState.FAILED
    assert f"gave up after {CONFIG.max_attempts} attempts" in final.error


async def test_access_rules(coordinator: Coordinator) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    with pytest.raises(AitbcError) as hidden:
        await coordinator.get(OTHER_CLIENT, job.job_id)
    assert hidden.value.reason is Reason.JOB_NOT_FOUND
    assert (await coordinator.get(ADMIN, job.job_id)).job_id == job.job_id
    with pytest.raises(AitbcError) as wrong_role:
        await coordinator.submit(MINER, spec())
    assert wrong_role.value.reason is Reason.PERMISSION_DENIED
    await attached(coordinator)
    with pytest.raises(AitbcError) as taken:
        await coordinator.attach_miner(OTHER_MINER, info())
    assert (taken.value.reason, taken.value.field) == (Reason.PERMISSION_DENIED, "miner_id")


async def test_an_invalid_hello_does_not_displace_the_connected_miner(coordinator: Coordinator) -> None:
    session = await attached(coordinator)
    with pytest.raises(AitbcError) as bad:
        await coordinator.attach_miner(MINER, MinerInfo("miner-1", frozenset({"tiny"}), max_concurrency=0))
    assert bad.value.field == "max_concurrency"
    assert not session.closed


async def test_shutdown_refuses_newcomers(coordinator: Coordinator) -> None:
    await coordinator.shutdown(0)
    with pytest.raises(AitbcError) as miner:
        await coordinator.attach_miner(MINER, info())
    with pytest.raises(AitbcError) as client:
        await coordinator.submit(CLIENT, spec())
    assert miner.value.reason is client.value.reason is Reason.SHUTTING_DOWN


async def test_a_session_owns_its_slots() -> None:
    now = ManualClock().now()
    session = MinerSession(info(slots=2), MINER, now, models={"tiny": "tiny"}, seen_at=0.0)
    first = Assignment("job_a", 1, 0, now)
    session.reserve(first)
    assert (session.free_slots, session.holding("job_a", 1), session.holding("job_a", 2)) == (1, first, None)
    ack = first.request_cancel()
    assert session.release(first)
    assert not session.release(first)  # a second release is a no-op
    assert (session.free_slots, ack.result()) == (2, 0)
    session.renew(5.0)
    session.renew(3.0)  # time seen out of order never shortens a lease
    assert session.last_seen == 5.0


async def test_manual_clock_fires_timers_in_deadline_order_and_times_out_waits() -> None:
    clock = ManualClock()
    fired: list[str] = []
    clock.call_later(2, lambda: fired.append("b"))
    clock.call_later(1, lambda: fired.append("a"))
    clock.call_later(3, lambda: fired.append("never")).cancel()
    start = clock.now()
    await clock.advance(2.5)
    assert fired == ["a", "b"]
    assert (clock.now() - start).total_seconds() == clock.monotonic() == 2.5
    waiting = asyncio.create_task(clock.wait_for(asyncio.Event().wait(), 10))
    await asyncio.sleep(0)  # the wait starts (and sets its timer) only once its task runs
    await clock.advance(9)
    assert not waiting.done()
    await clock.advance(1)
    with pytest.raises(TimeoutError):
        await waiting
