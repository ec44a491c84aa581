"""The coordinator's Prometheus metrics: jobs, latencies, tokens, miners, RPCs and store calls.

Each coordinator has its own `CollectorRegistry`, so several in one process (tests, benchmarks) keep their
numbers apart. Counts of what is queued, running and online are read from the coordinator when scraped
(`Coordinator.load`), so they cannot drift from the truth; everything else is counted as it happens through
the coordinator's `CoordinatorObserver` hooks. docs/operations.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aitbc.coordinator.observe import CoordinatorLoad, CoordinatorObserver
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.states import JobState

# Seconds. Queue waits and first tokens span milliseconds (a free miner) to minutes (a queue); whole jobs
# run up to many minutes.
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

_UNFINISHED = (JobState.PENDING, JobState.ASSIGNED, JobState.RUNNING)


class CoordinatorMetrics(CoordinatorObserver):
    """Counts what the coordinator reports; `bind` hands it the coordinator's `load` for the gauges."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.submitted = Counter("aitbc_jobs_submitted", "Jobs accepted by SubmitJob", ["model"], registry=r)
        self.finished = Counter(
            "aitbc_jobs_finished", "Jobs that reached a final state", ["model", "state"], registry=r
        )
        self.requeues = Counter(
            "aitbc_job_requeues",
            "Attempts that ended without an outcome and put the job back in the queue",
            ["model"],
            registry=r,
        )
        self.tokens = Counter(
            "aitbc_tokens_generated",
            "Completion tokens miners streamed and the coordinator stored",
            ["model"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "aitbc_job_queue_wait_seconds",
            "Submit (or requeue) to assigned: how long a job waited for a miner",
            ["model"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "aitbc_job_time_to_first_token_seconds",
            "Submit to the first stored token chunk",
            ["model"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "aitbc_job_duration_seconds",
            "Submit to final state (end to end)",
            ["model", "state"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.miner_connections = Counter(
            "aitbc_miner_connections", "Miner streams admitted, first connections and reconnections", registry=r
        )
        self.miner_reconnects = Counter(
            "aitbc_miner_reconnects", "Miner streams admitted for a miner id this process had seen before", registry=r
        )
        self.lease_expiries = Counter(
            "aitbc_miner_lease_expiries", "Miners that went silent past their lease", registry=r
        )
        self.rpc_duration = Histogram(
            "aitbc_rpc_duration_seconds",
            "gRPC calls served, by full method and status code (streams: their lifetime); _count counts calls",
            ["method", "code"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.store_duration = Histogram(
            "aitbc_store_operation_seconds",
            "Store calls (each one transaction), by operation and outcome",
            ["operation", "outcome"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self._load = _LoadCollector()
        r.register(self._load)
        # When each unfinished job last became pending, and which have streamed a token: enough for the
        # histograms, forgotten when the job ends.
        self._pending_since: dict[str, datetime] = {}
        self._streaming: set[str] = set()
        self._miners_seen: set[str] = set()

    def bind(self, load: Callable[[], CoordinatorLoad]) -> None:
        """Read queued/running jobs and online miners from `load` at each scrape."""
        self._load.source = load

    def job_event(self, record: JobRecord, event: JobEvent) -> None:
        model = record.spec.model
        job_id = record.job_id
        if event.kind is EventKind.TOKENS:
            self.tokens.labels(model).inc(event.token_count)
            if job_id not in self._streaming:
                self._streaming.add(job_id)
                self.first_token.labels(model).observe(_seconds(record.created_at, event.time))
            return
        state = event.state
        if state is JobState.PENDING:
            if event.seq == 1:
                self.submitted.labels(model).inc()
            else:
                self.requeues.labels(model).inc()
            self._pending_since[job_id] = event.time
        elif state is JobState.ASSIGNED:
            since = self._pending_since.pop(job_id, None)
            # A job reloaded after a restart has no pending time in this process; its wait is not guessed.
            if since is not None:
                self.queue_wait.labels(model).observe(_seconds(since, event.time))
        elif state is not None and state.is_terminal:
            self.finished.labels(model, state.value).inc()
            self.duration.labels(model, state.value).observe(_seconds(record.created_at, event.time))
            self._pending_since.pop(job_id, None)
            self._streaming.discard(job_id)

    def lease_expired(self, miner_id: str) -> None:
        self.lease_expiries.inc()

    def miner_connected(self, miner_id: str) -> None:
        self.miner_connections.inc()
        if miner_id in self._miners_seen:
            self.miner_reconnects.inc()
        self._miners_seen.add(miner_id)

    def rpc_done(self, method: str, code: str, seconds: float) -> None:
        self.rpc_duration.labels(method, code).observe(seconds)

    def store_done(self, operation: str, ok: bool, seconds: float) -> None:
        self.store_duration.labels(operation, "ok" if ok else "error").observe(seconds)


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)


class _LoadCollector(Collector):
    """Gauges read from the coordinator when scraped (on the event loop: the scrape handler is a coroutine)."""

    def __init__(self) -> None:
        self.source: Callable[[], CoordinatorLoad] | None = None

    def collect(self) -> Iterator[Metric]:
        load = self.source() if self.source is not None else CoordinatorLoad()
        jobs = GaugeMetricFamily("aitbc_jobs", "Unfinished jobs by model and state", labels=["model", "state"])
        models = {model for model, _ in load.jobs}
        for model in sorted(models):
            # Every unfinished state of a model that has jobs, zeros included, so rates and sums line up.
            for state in _UNFINISHED:
                jobs.add_metric([model, state.value], load.jobs.get((model, state), 0))
        yield jobs
        online = GaugeMetricFamily("aitbc_miners_online", "Connected miners serving each model", labels=["model"])
        free = GaugeMetricFamily(
            "aitbc_miner_free_slots", "Free job slots of connected, non-draining miners, by model", labels=["model"]
        )
        for model in sorted(load.miners):
            online.add_metric([model], load.miners[model])
            free.add_metric([model], load.free_slots[model])
        yield online
        yield free
        yield GaugeMetricFamily(
            "aitbc_miners_ready",
            "Connected miners taking jobs (not draining), whatever they serve",
            value=load.ready_miners,
        )
