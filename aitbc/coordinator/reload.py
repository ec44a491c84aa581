"""Start-up: the unfinished jobs the store holds, back in memory and back to work."""

from __future__ import annotations

import logging
from collections.abc import Collection

from aitbc.coordinator.client_jobs import ClientJobs
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.domain.catalog import Catalog, ModelEntry
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.routing import RouteRequest
from aitbc.domain.states import JobState
from aitbc.store.base import Store

log = logging.getLogger(__name__)

RESTARTED = "the coordinator restarted"


async def reload_unfinished(
    store: Store,
    catalog: Catalog,
    jobs: JobTable,
    dispatcher: Dispatcher,
    clients: ClientJobs,
    *,
    takeable: Collection[str] | None,
) -> None:
    """Load every unfinished job: pending ones are queued, those on a miner go back to pending.

    No miner is connected to a process that just started, so a job on a miner was on the previous process's
    and the restart spends none of its attempts. With replicas (`takeable` given), only the jobs it names go
    back: the others are on live replicas' miners, and this process keeps a copy of them.
    """
    records = await store.unfinished_jobs()
    events_of = await store.unfinished_events()
    for record in records:
        events = events_of.get(record.job_id, [])
        if catalog.find(record.spec.model) is None:
            await _fail_unroutable(jobs, record, events)
            continue
        live = jobs.adopt(record, events, dispatcher.route_request(record.spec))
        if record.state is JobState.PENDING:
            clients.adopt_pending(live)
        elif takeable is None or record.job_id in takeable:
            await dispatcher.requeue(live, record.attempt, RESTARTED, excused=True)


async def _fail_unroutable(jobs: JobTable, record: JobRecord, events: list[JobEvent]) -> None:
    """A job left over from before its model was removed from the catalog can never run."""
    model = record.spec.model
    route = RouteRequest(ModelEntry(id=model), 1, record.spec.params.max_tokens, None)
    live = jobs.adopt(record, events, route)
    error = f"model {model!r} is no longer in the model catalog"
    log.warning("failing %s: %s", record.job_id, error)
    await jobs.finish(live, JobState.FAILED, error, expected_attempt=record.attempt)
