"""Retention by plan: each account's plan, each result's expiry, and the sweeper that deletes expired results.

Plans live in memory (loaded at start, changed only through `set_plan`), so showing a job's
`result_expires_at` costs no store read. The sweeper runs on the injected clock every `interval` seconds
and deletes through the same `erase` as an owner's delete; tests move a ManualClock instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from aitbc.coordinator.clock import Clock, Timer
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.retention import DEFAULT_PLAN, RETENTION, Plan, result_expires_at
from aitbc.store.base import Store, StoreUnavailableError

log = logging.getLogger(__name__)

# Jobs deleted per store query; a sweep runs queries until none is left.
SWEEP_BATCH = 500


class Retention:
    def __init__(
        self, store: Store, clock: Clock, *, erase: Callable[[str], Awaitable[JobRecord]], interval: float
    ) -> None:
        self._store = store
        self._clock = clock
        self._erase = erase
        self._interval = interval
        self._plans: dict[str, Plan] = {}
        self._timer: Timer | None = None
        self._sweeping: asyncio.Task[list[str]] | None = None
        self._closed = False

    async def start(self) -> None:
        self._plans = await self._store.account_plans()
        self._arm()

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        await self.swept()

    async def swept(self) -> None:
        """Return once the sweep in progress, if any, is done."""
        if self._sweeping is not None:
            await asyncio.wait({self._sweeping})

    def plan_of(self, account_id: str) -> Plan:
        return self._plans.get(account_id, DEFAULT_PLAN)

    async def set_plan(self, principal: Principal, account_id: str, plan: Plan) -> Plan:
        if principal.role is not Role.ADMIN:
            raise AitbcError(Reason.PERMISSION_DENIED, "setting an account's plan needs an admin key")
        if not account_id:
            raise invalid_argument("account", "is required")
        await self._store.set_account_plan(account_id, plan, self._clock.now())
        self._plans[account_id] = plan
        return plan

    def annotate(self, job: JobRecord) -> JobRecord:
        """The job with `result_expires_at`: when its result goes (finished jobs), or went (deleted ones)."""
        if job.result_deleted_at is not None:
            return replace(job, result_expires_at=job.result_deleted_at)
        if not job.state.is_terminal:
            return job
        finished = job.completed_at or job.updated_at
        return replace(job, result_expires_at=result_expires_at(finished, self.plan_of(job.owner_id)))

    async def sweep(self) -> list[str]:
        """Delete every result kept past its plan's retention; the ids of the jobs deleted."""
        deleted: list[str] = []
        while True:
            expired = await self._store.expired_results(self._clock.now(), RETENTION, DEFAULT_PLAN, SWEEP_BATCH)
            for job_id in expired:
                await self._erase(job_id)
                deleted.append(job_id)
            if len(expired) < SWEEP_BATCH:
                break
        if deleted:
            log.info("retention: deleted the results of %d jobs", len(deleted))
        return deleted

    def _arm(self) -> None:
        if not self._closed:
            self._timer = self._clock.call_later(self._interval, self._fire)

    def _fire(self) -> None:
        # The next tick is armed now, so sweeps keep their rhythm; one still running when it comes is left be.
        self._arm()
        if self._sweeping is None:
            self._sweeping = asyncio.create_task(self._tick(), name="retention-sweep")

    async def _tick(self) -> list[str]:
        try:
            return await self.sweep()
        except StoreUnavailableError as error:
            log.warning("retention sweep skipped: %s", error)
        except Exception:
            log.exception("retention sweep failed")
        finally:
            self._sweeping = None
        return []
