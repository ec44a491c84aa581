"""The seed's HTTP miner API: miners that register, poll for work, claim a job and report once.

A polling miner is a session in the same registry as stream miners, with
the same leases (renewed by every call) and the same lease-checked reports;
only the way jobs reach it differs: it claims them instead of being pushed.
"""

from __future__ import annotations

import logging

from aitbc.coordinator.access import require_role
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.miners import Assign, MinerInfo, MinerSession
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.reports import MinerReports
from aitbc.domain.errors import AitbcError, Reason, invalid_argument, job_not_found
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.routing import could_ever_serve
from aitbc.domain.states import JobState
from aitbc.store.base import Store

log = logging.getLogger(__name__)

MAX_OFFERS = 100
DEFAULT_OFFERS = 10


class PollingMiners:
    def __init__(
        self, store: Store, jobs: JobTable, miners: MinerRegistry, dispatcher: Dispatcher, reports: MinerReports
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._miners = miners
        self._dispatcher = dispatcher
        self._reports = reports

    async def register(self, principal: Principal, info: MinerInfo) -> MinerSession:
        require_role(principal, Role.MINER)
        models = self._miners.check(info)
        existing = self._miners.previous(principal, info.miner_id)
        if existing is not None and existing.polls and existing.owner_id == principal.owner_id:
            self._miners.readvertise(existing, info, models)
            return existing
        if existing is not None:
            await self._reports.detach(existing, "it registered as a polling miner")
        session = self._miners.admit(principal, info, models, polls=True)
        log.info("polling miner %s registered: models=%s", info.miner_id, sorted(session.models))
        return session

    def heartbeat(self, principal: Principal, miner_id: str) -> list[str]:
        """Renew the miner's leases; returns the jobs it holds (a canceled one is no longer listed)."""
        return list(self._session(principal, miner_id).assignments)

    def available(self, principal: Principal, miner_id: str, limit: int) -> list[JobRecord]:
        session = self._session(principal, miner_id)
        limit = limit or DEFAULT_OFFERS
        if not 1 <= limit <= MAX_OFFERS:
            raise invalid_argument("limit", f"must be between 1 and {MAX_OFFERS}, got {limit}")
        # Peek past jobs this miner could never take (tier, VRAM, price) so it still gets `limit` offers.
        candidate = self._miners.candidate(session)
        queue = self._dispatcher.queue
        offers = [self._jobs[job_id] for job_id in queue.peek(session.models, len(queue))]
        return [live.record for live in offers if could_ever_serve(candidate, live.route)][:limit]

    async def claim(self, principal: Principal, miner_id: str, job_id: str) -> Assign:
        """Hand a pending job to a polling miner; of racing claims exactly one wins."""
        session = self._session(principal, miner_id)
        live = self._jobs.get(job_id)
        if live is None and await self._store.get_job(job_id) is None:
            raise job_not_found(job_id)
        if live is None or live.record.state is not JobState.PENDING:
            state = live.record.state.value if live else "finished"
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, f"job {job_id!r} is {state}, not pending", field="job_id")
        if not could_ever_serve(self._miners.candidate(session), live.route):
            model = live.record.spec.model
            message = f"miner {miner_id!r} cannot run job {job_id!r}: its model {model!r} needs what the miner lacks"
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, message, field="job_id")
        if session.free_slots <= 0:
            message = f"miner {miner_id!r} already holds {session.info.max_concurrency} job(s), its maximum"
            raise AitbcError(Reason.MINER_AT_CAPACITY, message, field="miner_id")
        # take, not remove: the claim counts as this client's turn in the fair rotation.
        self._dispatcher.queue.take(job_id)
        handed = await self._dispatcher.hand_over(live, session)
        if handed is None:
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, f"job {job_id!r} was taken first", field="job_id")
        assignment, command = handed
        # A polling miner starts when it claims; it reports nothing in between.
        await self._reports.mark_running(live, assignment)
        return command

    async def complete(
        self,
        principal: Principal,
        miner_id: str,
        job_id: str,
        *,
        attempt: int,
        result: str,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: str,
        signature: str = "",
    ) -> JobRecord:
        session = self._session(principal, miner_id)
        record = await self._reports.done(
            session,
            job_id,
            self._held_attempt(session, job_id, attempt),
            output=result,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason or "stop",
            signature=signature,
        )
        if record is None:
            raise _lease_lost(job_id, miner_id)
        return record

    async def fail(
        self, principal: Principal, miner_id: str, job_id: str, *, attempt: int, error: str, retryable: bool
    ) -> JobRecord:
        session = self._session(principal, miner_id)
        held = self._held_attempt(session, job_id, attempt)
        record = await self._reports.failed(session, job_id, held, error=error, retryable=retryable)
        if record is None:
            raise _lease_lost(job_id, miner_id)
        return record

    def _session(self, principal: Principal, miner_id: str) -> MinerSession:
        require_role(principal, Role.MINER)
        return self._miners.polling_session(principal, miner_id)

    @staticmethod
    def _held_attempt(session: MinerSession, job_id: str, attempt: int) -> int:
        """The attempt the miner holds; 0 means "whichever I hold", as the seed's API sends none."""
        assignment = session.assignments.get(job_id)
        if assignment is None or attempt not in (0, assignment.attempt):
            raise _lease_lost(job_id, session.miner_id)
        return assignment.attempt


def _lease_lost(job_id: str, miner_id: str) -> AitbcError:
    return AitbcError(
        Reason.LEASE_LOST,
        f"miner {miner_id!r} no longer holds job {job_id!r} (canceled, reassigned or its lease expired)",
        field="job_id",
    )
