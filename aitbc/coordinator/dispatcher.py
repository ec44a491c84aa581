"""Dispatch: the fair queue of pending jobs, the wake loop, and handing a job to a miner.

A single task, woken by an event (a job queued, a miner joined or freed a
slot), runs a dispatch pass; a submit runs one inline too, so that its
answer carries the routing decision. A lock keeps the passes apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import Assign, Assignment, MinerSession, OutboxFull
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.store_health import StoreHealth, StoreUnavailable
from aitbc.domain.catalog import Catalog
from aitbc.domain.fair_queue import FairQueue
from aitbc.domain.jobs import JobRecord, JobSpec
from aitbc.domain.routing import RouteRequest, cost_on, estimate_prompt_tokens
from aitbc.domain.scheduler import plan_assignments
from aitbc.domain.states import JobState
from aitbc.store.base import JobChanges

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        jobs: JobTable,
        miners: MinerRegistry,
        catalog: Catalog,
        clock: Clock,
        health: StoreHealth,
        *,
        max_attempts: int,
        max_queued_per_client: int,
        max_queued_total: int,
        replica_id: str = "",
    ) -> None:
        self._jobs = jobs
        # Recorded on each assignment: which coordinator process runs the attempt (docs/scaling.md).
        self._replica_id = replica_id
        self._miners = miners
        self._catalog = catalog
        self._clock = clock
        self._health = health
        self._max_attempts = max_attempts
        self.queue = FairQueue(max_per_owner=max_queued_per_client, max_total=max_queued_total)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="aitbc-dispatch")
        self.wake()

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    def wake(self) -> None:
        self._wake.set()

    async def dispatch_now(self) -> None:
        async with self._lock:
            await self._pass()

    # The queue

    def enqueue(self, record: JobRecord, *, front: bool = False) -> None:
        spec = record.spec
        self.queue.push(record.job_id, owner_id=record.owner_id, model=spec.model, priority=spec.priority, front=front)
        self.wake()

    async def requeue(self, live: LiveJob, attempt: int, reason: str, *, excused: bool = False) -> None:
        """Put a job whose attempt ended without an outcome back at the front, or fail it past the attempt cap.

        An `excused` attempt ended through no fault of the job (a coordinator
        restart, a draining miner, a failing store): it does not count
        against the cap, which exists to stop a bad job from taking down
        miner after miner.
        """
        record = live.record
        if record.attempt != attempt or record.state not in (JobState.ASSIGNED, JobState.RUNNING):
            return
        if not excused and record.counted_attempts >= self._max_attempts:
            error = f"gave up after {record.counted_attempts} attempts; the last: {reason}"
            await self._jobs.finish(live, JobState.FAILED, error, expected_attempt=attempt)
            return
        changes = JobChanges(
            miner_id="",
            error=reason,
            completion_tokens=live.tokens,
            excused_attempts=record.excused_attempts + 1 if excused else None,
        )
        if await self._jobs.transition(live, JobState.PENDING, changes, expected_attempt=attempt) is not None:
            self.enqueue(record, front=True)

    def route_request(self, spec: JobSpec) -> RouteRequest:
        """What routing needs to know of a job, worked out once."""
        prompt_chars = len(spec.prompt) + sum(len(message.content) for message in spec.messages)
        return RouteRequest(
            model=self._catalog.resolve(spec.model),
            prompt_tokens=estimate_prompt_tokens(prompt_chars),
            max_tokens=spec.params.max_tokens,
            max_price=spec.max_price,
        )

    # Handing over

    async def hand_over(self, live: LiveJob, session: MinerSession) -> tuple[Assignment, Assign] | None:
        """Assign a pending job to a miner (the next attempt), or None if it stopped being pending meanwhile."""
        record = live.record
        attempt = record.attempt + 1
        assignment = Assignment(
            job_id=record.job_id, attempt=attempt, resume_tokens=live.tokens, assigned_at=self._clock.now()
        )
        session.reserve(assignment)
        try:
            updated = await self._transition_to_assigned(live, session, assignment)
        except Exception:
            self._miners.release(session, assignment)
            raise
        if updated is None:
            self._miners.release(session, assignment)
            return None
        spec = replace(updated.spec, model=session.local_name(updated.spec.model))
        return assignment, Assign(record.job_id, attempt, spec, live.text, live.tokens)

    async def _transition_to_assigned(
        self, live: LiveJob, session: MinerSession, assignment: Assignment
    ) -> JobRecord | None:
        candidate = self._miners.candidate(session)
        changes = JobChanges(
            attempt=assignment.attempt,
            miner_id=session.miner_id,
            error="",
            estimated_cost=cost_on(candidate, live.route),
            miner_reputation=candidate.reputation,
            replica_id=self._replica_id,
        )
        return await self._jobs.transition(live, JobState.ASSIGNED, changes, expected_attempt=assignment.attempt - 1)

    async def _assign(self, job_id: str, miner_id: str) -> None:
        live = self._jobs.get(job_id)
        session = self._miners.get(miner_id)
        if live is None or live.record.state is not JobState.PENDING:
            return
        if session is None or session.closed:
            self.enqueue(live.record, front=True)
            return
        handed = await self.hand_over(live, session)
        if handed is None:
            return
        assignment, command = handed
        try:
            session.send(command)
        except OutboxFull as exc:
            self._miners.release(session, assignment)
            await self.requeue(live, assignment.attempt, str(exc))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.dispatch_now()

    async def _pass(self) -> None:
        """Start every queued job that a miner can take now, by the scheduling rules."""
        if not self._health.healthy():
            return  # the store's recovery wakes dispatch again
        if not self.queue:
            return  # a miner connecting to an empty queue costs nothing, whatever the number of miners
        pushable = self._miners.takers()
        for job_id, miner_id in plan_assignments(self.queue, pushable, self._route_for):
            try:
                await self._assign(job_id, miner_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # One bad assignment must not stop dispatch for everyone. A failing store is
                # logged once, by its health; the job is repaired and requeued when it recovers.
                if not isinstance(error, StoreUnavailable):
                    log.exception("assigning %s to %s failed", job_id, miner_id)
                live = self._jobs.get(job_id)
                if live is not None and live.record.state is JobState.PENDING:
                    self.enqueue(live.record, front=True)
                if not self._health.healthy():
                    return

    def _route_for(self, job_id: str) -> RouteRequest:
        return self._jobs[job_id].route
