"""What the coordinator tells the outside as it works: hooks for metrics, and one log line per job transition.

The coordinator does not know Prometheus: it calls a `CoordinatorObserver` (a no-op unless one is given;
`aitbc.services.metrics` implements it) and answers `load()` with what is queued, running and online now.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import MinerSession
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.states import JobState
from aitbc.logs import request_id_var

log = logging.getLogger("aitbc.coordinator.jobs")


class CoordinatorObserver:
    """Told of what happens, synchronously, on the event loop: an implementation must neither block nor raise."""

    def job_event(self, record: JobRecord, event: JobEvent) -> None:
        """Every event a job stores (state changes and token chunks), once it is stored; `record` is the job
        after it."""

    def lease_expired(self, miner_id: str) -> None:
        """A miner went silent past its lease; its jobs are requeued."""

    def miner_connected(self, miner_id: str) -> None:
        """A miner's stream was admitted (the first connection, or a reconnection)."""


@dataclass(frozen=True, slots=True)
class CoordinatorLoad:
    """A snapshot: unfinished jobs by (model, state); connected miners and their free slots by model; miners
    that can take jobs (connected, not draining)."""

    jobs: Counter[tuple[str, JobState]] = field(default_factory=Counter)
    miners: Counter[str] = field(default_factory=Counter)
    free_slots: Counter[str] = field(default_factory=Counter)
    ready_miners: int = 0


def load_of(jobs: Iterable[LiveJob], sessions: Iterable[MinerSession]) -> CoordinatorLoad:
    by_state: Counter[tuple[str, JobState]] = Counter()
    miners: Counter[str] = Counter()
    free_slots: Counter[str] = Counter()
    ready = 0
    for live in jobs:
        by_state[(live.record.spec.model, live.record.state)] += 1
    for session in sessions:
        # A draining miner takes no new jobs: its free slots are not capacity.
        taking_jobs = not (session.draining or session.closed)
        ready += taking_jobs
        for model in session.models:
            miners[model] += 1
            free_slots[model] += max(session.free_slots, 0) if taking_jobs else 0
    return CoordinatorLoad(jobs=by_state, miners=miners, free_slots=free_slots, ready_miners=ready)


class JobLog:
    """Logs each state change of a job at INFO, with job_id, attempt, miner_id, state and the id of the
    request that submitted it (kept in memory while the job is unfinished: a restart forgets it)."""

    def __init__(self) -> None:
        self._request_ids: dict[str, str] = {}

    def job_event(self, record: JobRecord, event: JobEvent) -> None:
        if event.kind is not EventKind.STATE or event.state is None:
            return
        # The first event is stored by the submit's own call, so its request id is the current one.
        if event.seq == 1 and (request_id := request_id_var.get()):
            self._request_ids[record.job_id] = request_id
        fields = {
            "job_id": record.job_id,
            "state": event.state.value,
            "attempt": event.attempt,
            "miner_id": event.miner_id,
            "model": record.spec.model,
            "seq": event.seq,
        }
        if request_id := self._request_ids.get(record.job_id, ""):
            fields["request_id"] = request_id
        if event.error:
            fields["error"] = event.error
        if event.state.is_terminal:
            self._request_ids.pop(record.job_id, None)
            fields["completion_tokens"] = event.completion_tokens
        where = f" on {event.miner_id}" if event.miner_id and event.state is not JobState.PENDING else ""
        log.info("job %s %s (attempt %d%s)", record.job_id, event.state.value, event.attempt, where, extra=fields)
