"""Unfinished jobs in memory, and the one way their state changes.

Every state change goes through `transition`, which checks the state
machine and the attempt in memory and has the store compare-and-set it,
so two racing changes can never both apply.

The store runs its statements on a thread of its own, so a write can commit
even when the coroutine awaiting it is cancelled (a stream dropped, the
server stopping). Every write that memory must mirror therefore runs in a
task of its own (`shielded`): cancelling the caller cannot leave the store
ahead of the in-memory job (and its next sequence number), and shutdown
waits for such writes (`writes_done`) before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.store_health import StoreHealth
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.routing import RouteRequest
from aitbc.domain.states import JobState, can_transition, sources_of
from aitbc.store.base import (
    HoldRequest,
    JobChanges,
    JobMovedOnError,
    SettleRequest,
    Store,
    StoreUnavailableError,
)

T = TypeVar("T")
# Given the job before a change, its new state, the changes and the event recording it: the settlement the store
# applies in the same transaction (the Settlement part's `closing`), or None.
Settler = Callable[[JobRecord, JobState, JobChanges, JobEvent], SettleRequest | None]


class JobTable:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        health: StoreHealth,
        on_event: Callable[[LiveJob, JobEvent], None] | None = None,
        *,
        settler: Settler | None = None,
        on_mirrored: Callable[[LiveJob, JobEvent], None] | None = None,
    ) -> None:
        self._store = store
        self._settler = settler
        self._clock = clock
        self._health = health
        # Told of every event once it is stored and in memory (the account feed); it must not block or raise.
        self._on_event = on_event or (lambda live, event: None)
        # Told of every event another coordinator stored, once it is in memory here (docs/scaling.md).
        self._on_mirrored = on_mirrored or (lambda live, event: None)
        # Jobs being created here: another coordinator's copy-taking must not adopt them half made.
        self.creating: set[str] = set()
        self._live: dict[str, LiveJob] = {}
        # Jobs a write failed for: memory still matches what was stored before, but what was meant to
        # happen (an event, a state change) did not. They are repaired once the store takes writes again.
        self.stranded: set[str] = set()
        # Shielded writes still running: a caller cancelled mid-write leaves its write running, and shutdown
        # waits for those before the store closes.
        self._shielded: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def _writing(self, job_id: str | None) -> Iterator[None]:
        try:
            yield
        except StoreUnavailableError as error:
            if job_id is not None:
                self.stranded.add(job_id)
            raise self._health.failed(error) from error

    def get(self, job_id: str) -> LiveJob | None:
        return self._live.get(job_id)

    def __getitem__(self, job_id: str) -> LiveJob:
        return self._live[job_id]

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._live

    def __iter__(self) -> Iterator[LiveJob]:
        return iter(list(self._live.values()))

    def adopt(self, record: JobRecord, events: list[JobEvent], route: RouteRequest) -> LiveJob:
        """Track a job the store already holds (one just created, or one left unfinished by a restart)."""
        live = LiveJob(record, events, route)
        self._live[record.job_id] = live
        return live

    async def create(
        self, record: JobRecord, route: RouteRequest, hold: HoldRequest | None = None
    ) -> tuple[JobRecord, LiveJob | None]:
        """Store a new job, with its hold; or return the job an idempotency key already names (and no live job).

        Callers shield it together with queueing the job, so that a stored job is never left unqueued.
        """
        event = JobEvent(
            job_id=record.job_id, seq=1, time=record.created_at, kind=EventKind.STATE, state=JobState.PENDING
        )
        self.creating.add(record.job_id)
        try:
            with self._writing(None):
                stored = await self._store.create_job(record, event, hold)
        finally:
            self.creating.discard(record.job_id)
        if stored.job_id != record.job_id:
            return stored, None
        live = self.adopt(record, [event], route)
        self._on_event(live, event)
        return stored, live

    async def transition(
        self, live: LiveJob, to: JobState, changes: JobChanges, *, expected_attempt: int
    ) -> JobRecord | None:
        """Apply a state change; None if the job moved on (another state or attempt) meanwhile."""
        return await self.shielded(self._transition(live, to, changes, expected_attempt=expected_attempt))

    async def shielded(self, write: Coroutine[Any, Any, T]) -> T:
        """`write`, run to its end even if the caller is cancelled (so memory never falls behind the store),
        and tracked so that `writes_done` can wait for it."""
        task = asyncio.ensure_future(write)
        self._shielded.add(task)
        task.add_done_callback(self._shielded.discard)
        return await asyncio.shield(task)

    async def writes_done(self) -> None:
        """Wait for every shielded write still running (their callers may be gone); at shutdown."""
        while self._shielded:
            await asyncio.wait(set(self._shielded))

    async def _transition(
        self, live: LiveJob, to: JobState, changes: JobChanges, *, expected_attempt: int
    ) -> JobRecord | None:
        async with live.lock:
            record = live.record
            if record.attempt != expected_attempt or not can_transition(record.state, to):
                return None
            now = self._clock.now()
            event = JobEvent(
                job_id=record.job_id,
                seq=live.next_seq,
                time=now,
                kind=EventKind.STATE,
                state=to,
                miner_id=_or(changes.miner_id, record.miner_id),
                attempt=_or(changes.attempt, record.attempt),
                error=_or(changes.error, record.error),
                prompt_tokens=_or(changes.prompt_tokens, record.prompt_tokens),
                completion_tokens=_or(changes.completion_tokens, live.tokens),
                finish_reason=changes.finish_reason or "",
            )
            settle = self._settler(record, to, changes, event) if self._settler is not None else None
            with self._writing(record.job_id):
                updated = await self._store.transition(
                    record.job_id,
                    from_states=sources_of(to),
                    attempt=expected_attempt,
                    to=to,
                    changes=changes,
                    now=now,
                    event=event,
                    settle=settle,
                )
            if updated is None:
                # Memory said the change could apply, the store did not: another coordinator on the same
                # store changed the job first. Take its changes, so the caller sees where the job is now.
                await self._catch_up(live)
                return None
            live.record = updated
            live.append(event)
            self._on_event(live, event)
        if to.is_terminal:
            self.forget(record.job_id)
        return updated

    def forget(self, job_id: str) -> None:
        self._live.pop(job_id, None)
        self.stranded.discard(job_id)

    async def resync(self, live: LiveJob) -> JobRecord:
        """Make a stranded job's memory match the store again, in place (watchers keep following it).

        Memory is never ahead of the store; the store may be ahead where a write
        committed but reported failure, and then memory takes its events.
        """
        async with live.lock:
            # Its own writes: told as this coordinator's events, and a failure strands it again.
            record = await self._catch_up(live, publish=self._on_event, strand=True)
        if record.state.is_terminal:
            self.forget(record.job_id)
        return record

    async def mirror(self, live: LiveJob) -> tuple[JobRecord, JobRecord] | None:
        """Take what other coordinators stored of the job since memory last saw it (docs/scaling.md): the
        record before and after, or None if they stored nothing new (this coordinator's own writes, which
        memory already has, are no change)."""
        async with live.lock:
            before, next_seq = live.record, live.next_seq
            record = await self._catch_up(live)
            taken = live.next_seq > next_seq
        if record.state.is_terminal:
            self.forget(record.job_id)
        return (before, record) if taken else None

    async def _catch_up(
        self, live: LiveJob, *, publish: Callable[[LiveJob, JobEvent], None] | None = None, strand: bool = False
    ) -> JobRecord:
        """With `live.lock` held: the job's record and any events memory lacks, from the store, each event told
        to `publish` (by default as another coordinator's)."""
        job_id = live.record.job_id
        publish = publish or self._on_mirrored
        with self._writing(job_id if strand else None):
            missed = await self._store.events(job_id, from_seq=live.next_seq)
            # Token chunks alone leave the job's row as it was: no need to read it again.
            changed = not missed or any(event.kind is EventKind.STATE for event in missed)
            record = await self._store.get_job(job_id) if changed else live.record
            # Read after the events, the row may be newer than they are (its next change committed in
            # between): read on until the events reach the state the row is in, so the two agree.
            while record is not None and changed and _last_state(missed) is not record.state:
                more = await self._store.events(job_id, from_seq=live.next_seq + len(missed))
                if not more:
                    break
                missed += more
        if record is None:
            raise RuntimeError(f"job {job_id} vanished from the store")
        for event in missed:
            live.append(event)
            publish(live, event)
        live.record = record
        return record

    async def append_tokens(self, live: LiveJob, attempt: int, text: str, token_count: int) -> JobEvent:
        """Store and publish a chunk of output as the job's next event; callers shield it with what mirrors it.

        JobMovedOnError if another coordinator moved the job off `attempt` (memory then has its changes)."""
        async with live.lock:
            event = JobEvent(
                job_id=live.record.job_id,
                seq=live.next_seq,
                time=self._clock.now(),
                kind=EventKind.TOKENS,
                text=text,
                token_count=token_count,
                attempt=attempt,
            )
            try:
                with self._writing(live.record.job_id):
                    await self._store.append_events([event])
            except JobMovedOnError:
                await self._catch_up(live)
                raise
            live.append(event)
            self._on_event(live, event)
        return event

    def final_changes(self, live: LiveJob, error: str) -> JobChanges:
        """A job ending without completing keeps the text it produced and is charged for those tokens."""
        return JobChanges(result=live.text, completion_tokens=live.tokens, completed_at=self._clock.now(), error=error)

    async def finish(self, live: LiveJob, to: JobState, error: str, *, expected_attempt: int) -> JobRecord | None:
        """End a job without completing it (failed or canceled), keeping what it produced."""
        return await self.transition(live, to, self.final_changes(live, error), expected_attempt=expected_attempt)


def _last_state(events: list[JobEvent]) -> JobState | None:
    return next((event.state for event in reversed(events) if event.kind is EventKind.STATE), None)


def _or(change: T | None, current: T) -> T:
    return change if change is not None else current
