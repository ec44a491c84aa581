"""A store that stops taking writes, and comes back: no job is lost or stuck, no restart needed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import Assign, Cancel, MinerSession
from aitbc.coordinator.progress import STRANDED
from aitbc.coordinator.store_health import MAX_PROBE_INTERVAL, StoreUnavailable
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.states import JobState
from aitbc.store.base import StoreUnavailableError
from aitbc.store.sqlite import SqliteStore
from tests.coordinator.test_parts import (
    CLIENT,
    CONFIG,
    MINER,
    OTHER_CLIENT,
    assigned,
    attached,
    events_of,
    info,
    next_command,
    spec,
)

WRITES = ("create_job", "transition", "append_events", "save_miners", "add_api_key", "probe")


class FlakyStore:
    """A real SQLite store whose writes fail on demand, as on a full disk; counts what it refused."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.failing = False
        self.refused: dict[str, int] = dict.fromkeys(WRITES, 0)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in WRITES:
            return method

        async def write(*args: Any, **kwargs: Any) -> Any:
            if self.failing:
                self.refused[name] += 1
                raise StoreUnavailableError("database or disk is full")
            return await method(*args, **kwargs)

        return write


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def flaky(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    try:
        yield FlakyStore(store)
    finally:
        await store.close()


@pytest.fixture
async def coordinator(flaky: FlakyStore, clock: ManualClock) -> AsyncIterator[Coordinator]:
    coordinator = Coordinator(flaky, CONFIG, clock=clock)
    await coordinator.start()
    try:
        yield coordinator
    finally:
        flaky.failing = False
        await coordinator.shutdown(0)


async def recover(clock: ManualClock, coordinator: Coordinator, *alive: MinerSession) -> None:
    """Move time on until the probe (at most MAX_PROBE_INTERVAL apart) finds the store and the repair is done.

    The `alive` miners keep heartbeating meanwhile, so that their leases outlast the wait.
    """
    recovered = asyncio.ensure_future(coordinator.store_recovered())
    async with asyncio.timeout(10):
        while not recovered.done():
            for session in alive:
                coordinator.touch(session)
            await clock.advance(MAX_PROBE_INTERVAL)
            await asyncio.wait([recovered], timeout=0.05)
    await clock.advance(0)  # timers the repair set that are due already (an expired TTL)


async def test_a_failed_write_strands_the_job_until_the_store_recovers(
    coordinator: Coordinator, flaky: FlakyStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, spec())
    await assigned(coordinator, session)
    await coordinator.reports.tokens(session, job.job_id, 1, "kept", 1)

    flaky.failing = True
    await coordinator.reports.tokens(session, job.job_id, 1, " lost", 1)
    # The stream stays up; the miner is told to stop the attempt, whose slot is free again.
    assert isinstance(await next_command(session), Cancel)
    assert (session.closed, session.free_slots) == (False, 1)
    stuck = await coordinator.get(CLIENT, job.job_id)
    assert (stuck.state, stuck.result, stuck.error) == (JobState.RUNNING, "kept", STRANDED)
    with pytest.raises(StoreUnavailable) as refused:
        await coordinator.submit(CLIENT, spec("while failing"))
    assert refused.value.retry_after_seconds is not None
    # Nothing retries in a loop meanwhile: only the probe, with backoff.
    for _ in range(3):
        coordinator.touch(session)
        await clock.advance(MAX_PROBE_INTERVAL)
    assert (flaky.refused["transition"], flaky.refused["create_job"]) == (0, 0)
    assert 1 <= flaky.refused["probe"] <= 10

    flaky.failing = False
    await recover(clock, coordinator, session)
    # The job goes back to the queue keeping its text, and resumes on the miner without spending an attempt.
    assign = await assigned(coordinator, session)
    assert (assign.job_id, assign.attempt, assign.resume_text) == (job.job_id, 2, "kept")
    resumed = await coordinator.get(CLIENT, job.job_id)
    assert (resumed.state, resumed.excused_attempts, resumed.counted_attempts) == (JobState.ASSIGNED, 1, 1)
    messages = [record.getMessage() for record in caplog.records]
    assert sum("the store is failing" in m for m in messages) == 1
    assert sum("the store recovered" in m for m in messages) == 1


async def test_dispatch_pauses_while_the_store_fails(
    coordinator: Coordinator, flaky: FlakyStore, clock: ManualClock
) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    flaky.failing = True
    session = await attached(coordinator)  # a miner arrives: the hand-over cannot be stored
    for _ in range(3):
        coordinator.touch(session)
        await clock.advance(MAX_PROBE_INTERVAL)
    assert flaky.refused["transition"] == 1
    assert session.free_slots == 1
    flaky.failing = False
    await recover(clock, coordinator, session)
    assign = await assigned(coordinator, session)
    assert (assign.job_id, assign.attempt) == (job.job_id, 1)


async def test_a_ttl_that_runs_out_while_the_store_fails_expires_after_recovery(
    coordinator: Coordinator, flaky: FlakyStore, clock: ManualClock
) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    flaky.failing = True
    await clock.advance(job.spec.ttl.total_seconds() + 1)
    assert (await coordinator.get(CLIENT, job.job_id)).state is JobState.PENDING
    flaky.failing = False
    await recover(clock, coordinator)
    events = await events_of(coordinator, job.job_id)
    assert events[-1].state is JobState.FAILED
    assert "TTL" in events[-1].error


async def test_the_coordinator_refuses_to_start_on_a_store_it_cannot_write(
    flaky: FlakyStore, clock: ManualClock
) -> None:
    flaky.failing = True
    with pytest.raises(StoreUnavailableError):
        await Coordinator(flaky, CONFIG, clock=clock).start()


async def test_coordinator_restarts_spend_no_attempts(tmp_path: Path) -> None:
    database = tmp_path / "aitbc.db"
    job_id = ""
    for restart in range(CONFIG.max_attempts + 2):
        store = await SqliteStore.open(database)
        coordinator = Coordinator(store, CONFIG, clock=ManualClock())
        await coordinator.start()
        if not job_id:
            job_id = (await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)).job_id
        session = await attached(coordinator, f"miner-{restart}")
        assert (await assigned(coordinator, session)).attempt == restart + 1
        await store.close()  # the process dies: no shutdown, the job stays assigned in the store
    store = await SqliteStore.open(database)
    try:
        record = await store.get_job(job_id)
        assert record is not None
        assert record.state is JobState.ASSIGNED
        coordinator = Coordinator(store, CONFIG, clock=ManualClock())
        await coordinator.start()
        survivor = await coordinator.get(CLIENT, job_id)
        assert (survivor.state, survivor.attempt, survivor.counted_attempts) == (JobState.PENDING, 5, 0)
        await coordinator.shutdown(0)
    finally:
        await store.close()


async def test_a_draining_miner_hands_its_job_back_without_spending_an_attempt(coordinator: Coordinator) -> None:
    job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
    for attempt in range(1, CONFIG.max_attempts + 2):
        session = await attached(coordinator, f"miner-{attempt}")
        command = await next_command(session)
        assert isinstance(command, Assign)
        assert command.attempt == attempt
        coordinator.heartbeat(session, draining=True)
        await coordinator.reports.failed(session, job.job_id, attempt, error="the miner shut down", retryable=True)
        await coordinator.reports.detach(session, "it stopped")
    record = await coordinator.get(CLIENT, job.job_id)
    assert (record.state, record.counted_attempts) == (JobState.PENDING, 0)


# A real full filesystem: a small tmpfs, where the test may mount one.


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    if mounted.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


async def test_a_full_disk_is_survived_without_a_restart(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "home", "2m") as home:
        clock = ManualClock()
        store = await SqliteStore.open(home / "aitbc.db")
        coordinator = Coordinator(store, CONFIG, clock=clock)
        await coordinator.start()
        try:
            session = await coordinator.attach_miner(MINER, info())
            await next_command(session)
            job = await coordinator.submit(CLIENT, spec())
            await assigned(coordinator, session)
            filler = fill(home)
            for chunk in range(200):  # noqa: B007 (the failure names it)
                await coordinator.reports.tokens(session, job.job_id, 1, "x" * 2048, 1)
                if (await coordinator.get(CLIENT, job.job_id)).error == STRANDED:
                    break
            else:
                pytest.fail(f"the full disk took all {chunk + 1} chunks")
            assert isinstance(await next_command(session), Cancel)
            with pytest.raises(StoreUnavailable):
                await coordinator.submit(CLIENT, spec("while full"))
            filler.unlink()
            await recover(clock, coordinator, session)
            resumed = await assigned(coordinator, session)
            assert (resumed.job_id, resumed.attempt) == (job.job_id, 2)
            # Every token the store took is kept, in order and without gaps.
            events = await store.events(job.job_id)
            assert [event.seq for event in events] == list(range(1, len(events) + 1))
            assert resumed.resume_text == "".join(event.text for event in events)
        finally:
            await coordinator.shutdown(0)
            await store.close()


class CountingStore(FlakyStore):
    """Counts job lookups, to see that hidden jobs cost what missing ones do."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(store)
        self.lookups = 0

    async def get_job(self, job_id: str) -> Any:
        self.lookups += 1
        return await self._store.get_job(job_id)


async def test_another_tenants_live_job_costs_the_same_lookup_as_an_unknown_id(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    counting = CountingStore(store)
    coordinator = Coordinator(counting, CONFIG, clock=ManualClock())
    await coordinator.start()
    try:
        job = await coordinator.submit(CLIENT, spec(), queue_if_unavailable=True)
        costs = []
        for job_id in (job.job_id, "job_" + "0" * 24):
            before = counting.lookups
            for call in (coordinator.get, coordinator.cancel):
                with pytest.raises(AitbcError) as hidden:
                    await call(OTHER_CLIENT, job_id)
                assert hidden.value.reason is Reason.JOB_NOT_FOUND
            with pytest.raises(AitbcError):
                await anext(aiter(coordinator.watch(OTHER_CLIENT, job_id)))
            costs.append(counting.lookups - before)
        assert costs[0] == costs[1] > 0
    finally:
        await coordinator.shutdown(0)
        await store.close()
