"""Looking back at an account's jobs: the filters ListJobs, ExportJobs and GetJobStats share, exports, stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aitbc.coordinator.access import require_role
from aitbc.coordinator.clock import Clock
from aitbc.domain.catalog import Catalog
from aitbc.domain.history import JobFilter, JobStatsRecord, period
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.states import JobState
from aitbc.store.base import Store
from aitbc.store.sqlite_rows import micros

# Jobs read per store call while exporting: what an export holds in memory at once, whatever its length.
EXPORT_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """What a request asks for; `days` counts back from now and excludes `created_after`."""

    state: JobState | None = None
    model: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    days: int = 0


class JobHistory:
    def __init__(self, store: Store, catalog: Catalog, clock: Clock) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock

    def filter_for(self, principal: Principal, query: HistoryQuery) -> JobFilter:
        """The caller's jobs (every job, for an admin) that `query` asks for; bad ranges name their field."""
        require_role(principal, Role.CLIENT)
        after, before = period(
            self._clock.now(), created_after=query.created_after, created_before=query.created_before, days=query.days
        )
        # Jobs store the catalog id: an alias finds them too; a model gone from the catalog is matched as given.
        entry = self._catalog.find(query.model) if query.model else None
        model = entry.id if entry is not None else query.model or None
        owner = None if principal.role is Role.ADMIN else principal.owner_id
        return JobFilter(owner_id=owner, state=query.state, model=model, created_after=after, created_before=before)

    async def export(self, principal: Principal, query: HistoryQuery) -> AsyncIterator[list[tuple[JobRecord, int]]]:
        """Pages of matching jobs, newest first, each job with its charge (µcr), one store read per page.

        Keyset pages: jobs submitted during the export are newer than its first page and are left out, and
        no job is skipped or repeated. Only the current page is ever held.
        """
        job_filter = self.filter_for(principal, query)
        after: tuple[int, str] | None = None
        while True:
            page = await self._store.export_page(job_filter, after=after, limit=EXPORT_PAGE_SIZE)
            if page:
                yield page
            if len(page) < EXPORT_PAGE_SIZE:
                return
            last = page[-1][0]
            after = (micros(last.created_at), last.job_id)

    async def stats(self, principal: Principal, query: HistoryQuery) -> tuple[JobFilter, JobStatsRecord]:
        job_filter = self.filter_for(principal, query)
        return job_filter, await self._store.job_stats(job_filter)
