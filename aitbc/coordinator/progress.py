"""What a client is told while it waits: queue position, estimated start and completion, retry delays."""

from __future__ import annotations

from dataclasses import replace

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.registry import MinerRegistry
from aitbc.domain.jobs import JobRecord, estimate_completion, estimate_start
from aitbc.domain.reputation import ewma
from aitbc.domain.routing import could_ever_serve
from aitbc.domain.states import JobState

# Assumed length of a job before any has finished, for retry delays.
DEFAULT_JOB_SECONDS = 5.0
STRANDED = "the coordinator's store is failing; this job resumes once it recovers"


class Progress:
    def __init__(self, jobs: JobTable, dispatcher: Dispatcher, miners: MinerRegistry, clock: Clock) -> None:
        self._jobs = jobs
        self._dispatcher = dispatcher
        self._miners = miners
        self._clock = clock
        # Mean seconds a job takes on a miner, for estimated starts.
        self._mean_job_seconds = 0.0

    def job_finished(self, seconds_on_miner: float) -> None:
        self._mean_job_seconds = ewma(self._mean_job_seconds, seconds_on_miner)

    def retry_after(self) -> float:
        """Seconds until the queue likely has room: one average job, at least one second."""
        return max(1.0, self._mean_job_seconds or DEFAULT_JOB_SECONDS)

    def of(self, live: LiveJob) -> JobRecord:
        """The stored record plus the output so far and, while waiting or generating, estimates."""
        record = replace(
            live.record, result=live.text, completion_tokens=live.tokens, cancel_requested=live.cancel_requested
        )
        if record.job_id in self._jobs.stranded:
            # Watchers see why nothing happens; the job resumes once the store recovers.
            return replace(record, error=STRANDED)
        if record.state is JobState.PENDING:
            return self._queue_estimate(record, live)
        session = self._miners.get(record.miner_id)
        assignment = session.holding(record.job_id, record.attempt) if session else None
        if record.state is not JobState.RUNNING or assignment is None or assignment.first_token_at is None:
            return record
        now = self._clock.now()
        elapsed = (now - assignment.first_token_at).total_seconds()
        rate = assignment.tokens / elapsed if elapsed > 0 else 0.0
        estimate = estimate_completion(
            now, max_tokens=record.spec.params.max_tokens, completion_tokens=live.tokens, tokens_per_second=rate
        )
        return replace(record, estimated_completion=estimate)

    def _queue_estimate(self, record: JobRecord, live: LiveJob) -> JobRecord:
        position = self._dispatcher.queue.position(record.job_id)
        if position is None:
            return record
        slots = sum(c.max_concurrency for c in self._miners.candidates() if could_ever_serve(c, live.route))
        start = estimate_start(
            self._clock.now(), position=position, slots=slots, mean_job_seconds=self._mean_job_seconds or None
        )
        return replace(record, queue_position=position, estimated_start=start)
