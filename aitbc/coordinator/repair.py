"""Jobs a failed write stranded, put back to work once the store takes writes again."""

from __future__ import annotations

import contextlib
import logging

from aitbc.coordinator.client_jobs import ClientJobs
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.miners import Cancel, OutboxFull
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.store_health import StoreUnavailable
from aitbc.domain.states import JobState

log = logging.getLogger(__name__)

STORE_FAILED = "the coordinator's store failed during the attempt"


class StrandedJobs:
    def __init__(self, jobs: JobTable, miners: MinerRegistry, dispatcher: Dispatcher, clients: ClientJobs) -> None:
        self._jobs = jobs
        self._miners = miners
        self._dispatcher = dispatcher
        self._clients = clients

    async def repair(self) -> None:
        """Resync each stranded job with the store; one that was on a miner goes back to pending.

        The attempt it was on is excused: the store failed, not the job. A job
        that fails to repair (the store failed again) stays stranded for the
        next recovery.
        """
        repaired = 0
        for job_id in sorted(self._jobs.stranded):
            live = self._jobs.get(job_id)
            if live is None:
                self._jobs.stranded.discard(job_id)
                continue
            self._take_back_from_miners(job_id)
            try:
                record = await self._jobs.resync(live)
                if record.state in (JobState.ASSIGNED, JobState.RUNNING):
                    await self._dispatcher.requeue(live, record.attempt, STORE_FAILED, excused=True)
                elif record.state is JobState.PENDING and self._dispatcher.queue.position(job_id) is None:
                    self._clients.adopt_pending(live)
            except StoreUnavailable:
                return
            self._jobs.stranded.discard(job_id)
            repaired += 1
        if repaired:
            log.warning("%d job(s) whose writes had failed are back in the queue", repaired)
        self._dispatcher.wake()

    def _take_back_from_miners(self, job_id: str) -> None:
        for session in self._miners:
            assignment = session.assignments.get(job_id)
            if assignment is None:
                continue
            with contextlib.suppress(OutboxFull):
                session.send(Cancel(job_id, assignment.attempt))
            self._miners.release(session, assignment)
