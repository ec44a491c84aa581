"""What clients do with jobs: submit, get, list, cancel, watch; and jobs that wait out their TTL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from aitbc.coordinator.access import check_job_owner, require_role
from aitbc.coordinator.clock import Clock
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.expiry import ExpiryTimer
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.progress import Progress
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.replicas import Replicas
from aitbc.coordinator.reports import MinerReports
from aitbc.coordinator.settlement import Settlement
from aitbc.coordinator.store_health import StoreHealth, StoreUnavailable
from aitbc.domain.catalog import Catalog, ModelKind
from aitbc.domain.errors import AitbcError, Reason, invalid_argument, job_not_found
from aitbc.domain.eth_address import to_checksum_address
from aitbc.domain.events import JobEvent
from aitbc.domain.history import JobFilter
from aitbc.domain.jobs import JobRecord, JobSpec, new_job_id
from aitbc.domain.keys import Principal, Role
from aitbc.domain.routing import Candidate, RouteRequest, check_route, choose, cost_on, could_ever_serve, rank_key
from aitbc.domain.states import JobState
from aitbc.store.base import HoldRequest, InsufficientFundsError, JobPage, Store

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
CANCELED_BY_CLIENT = "canceled by the client"


@dataclass(frozen=True, slots=True)
class Quote:
    """Where a job would run now (QuoteJob): the miner, its reputation (0..10000), the cost bound in µcr."""

    model: str
    miner_id: str
    payout_address: str
    reputation: int
    estimated_cost: int
    prompt_tokens: int
    max_tokens: int


class ClientJobs:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        jobs: JobTable,
        miners: MinerRegistry,
        dispatcher: Dispatcher,
        reports: MinerReports,
        progress: Progress,
        health: StoreHealth,
        clock: Clock,
        settlement: Settlement,
    ) -> None:
        self._store = store
        self._settlement = settlement
        self._catalog = catalog
        self._jobs = jobs
        self._miners = miners
        self._dispatcher = dispatcher
        self._reports = reports
        self._progress = progress
        self._health = health
        self._clock = clock
        self.expiries = ExpiryTimer(self._expire, clock)
        # Set when several coordinators share the store (docs/scaling.md).
        self.replicas: Replicas | None = None

    def adopt_pending(self, live: LiveJob) -> None:
        """Queue a pending job the store holds (at start-up) and arm its TTL."""
        self._dispatcher.enqueue(live.record)
        self.expiries.add(live.record)

    async def submit(self, principal: Principal, spec: JobSpec, *, queue_if_unavailable: bool) -> JobRecord:
        """Store the job and route it at once where a miner is free.

        Fails fast with NO_ELIGIBLE_MINER when no online miner could ever run
        it (unless `queue_if_unavailable`), and with QUEUE_FULL past the queue
        limits. The answer carries the routing decision, or the queue position.
        """
        require_role(principal, Role.CLIENT)
        self._health.check()
        entry = self._catalog.resolve(spec.model)
        if entry.kind is not ModelKind.TEXT:
            raise invalid_argument("model", f"{entry.id!r} is an {entry.kind.value} model; only text jobs run today")
        spec = replace(spec, model=entry.id)
        if spec.idempotency_key and (
            existing := await self._store.job_by_idempotency_key(principal.owner_id, spec.idempotency_key)
        ):
            # A retry answers with the job it already made, whatever the queue or the miners look like now.
            return await self._replay(principal, existing, spec)
        route = self._dispatcher.route_request(spec)
        if not queue_if_unavailable and (unroutable := check_route(self._network(), route)) is not None:
            advice = "set queue_if_unavailable to wait for one"
            raise AitbcError(Reason.NO_ELIGIBLE_MINER, unroutable.reason, field="model", advice=advice)
        self._dispatcher.queue.check_admission(principal.owner_id, retry_after_seconds=self._progress.retry_after())
        now = self._clock.now()
        record = JobRecord(
            job_id=new_job_id(),
            owner_id=principal.owner_id,
            state=JobState.PENDING,
            spec=spec,
            created_at=now,
            updated_at=now,
            expires_at=now + spec.ttl,
        )
        hold = self._settlement.hold_for(principal.owner_id, route)
        try:
            stored = await self._jobs.shielded(self._create(record, route, hold))
        except InsufficientFundsError as error:
            raise self._settlement.insufficient(error) from None
        if stored.job_id != record.job_id:
            return await self._replay(principal, stored, spec)  # a concurrent retry stored it first
        # Shielded: a client hanging up must not cut a hand-over short between the store and the miner.
        await asyncio.shield(self._dispatcher.dispatch_now())
        live = self._jobs.get(record.job_id)
        return self._progress.of(live) if live else await self.get(principal, record.job_id)

    def _network(self) -> list[Candidate]:
        """Every miner routing could ever use: this coordinator's, and those of the other replicas."""
        remote = self.replicas.remote_candidates() if self.replicas is not None else []
        return self._miners.candidates() + remote

    def quote(
        self,
        principal: Principal,
        spec: JobSpec,
        *,
        payout_address_required: bool,
        elsewhere: Sequence[tuple[Candidate, str]] = (),
    ) -> Quote:
        """Where `spec` would run now and the most it would cost there; nothing is stored or held. `elsewhere`:
        the miners of other replicas, with their payout addresses (any replica's miner may run the job)."""
        entry = self._catalog.resolve(spec.model)
        if entry.kind is not ModelKind.TEXT:
            raise invalid_argument("model", f"{entry.id!r} is an {entry.kind.value} model; only text jobs run today")
        route = self._dispatcher.route_request(replace(spec, model=entry.id))
        payout = {
            session.miner_id: session.info.payout_address
            for session in self._miners
            if session.info.payout_address or not payout_address_required
        }
        candidates = [candidate for candidate in self._miners.candidates() if candidate.miner_id in payout]
        for candidate, address in elsewhere:
            if address or not payout_address_required:
                payout[candidate.miner_id] = address
                candidates.append(candidate)
        if (unroutable := check_route(candidates, route)) is not None:
            reason = unroutable.reason
            if payout_address_required:
                reason = f"no online miner with a payout address can run it: {reason}"
            raise AitbcError(Reason.NO_ELIGIBLE_MINER, reason, field="model")
        # As the dispatcher would choose: a miner free now first, else the best of those the job could wait for.
        chosen = choose(candidates, route) or max(
            (candidate for candidate in candidates if could_ever_serve(candidate, route)), key=rank_key
        )
        return Quote(
            model=entry.id,
            miner_id=chosen.miner_id,
            payout_address=to_checksum_address(payout[chosen.miner_id]) if payout[chosen.miner_id] else "",
            reputation=chosen.reputation,
            estimated_cost=cost_on(chosen, route),
            prompt_tokens=route.prompt_tokens,
            max_tokens=route.max_tokens,
        )

    async def _create(self, record: JobRecord, route: RouteRequest, hold: HoldRequest | None) -> JobRecord:
        stored, live = await self._jobs.create(record, route, hold)
        if live is not None:
            self.adopt_pending(live)
        return stored

    async def _replay(self, principal: Principal, existing: JobRecord, spec: JobSpec) -> JobRecord:
        """The job an idempotency key already names: the same job, never a second one."""
        if existing.spec.input_hash() != spec.input_hash():
            message = f"was already used for a different request (job {existing.job_id})"
            raise invalid_argument("idempotency_key", message)
        return await self.get(principal, existing.job_id)

    async def _live_for(self, principal: Principal, job_id: str) -> LiveJob | None:
        """The caller's own live job, or None to look in the store.

        Another tenant's live job is looked up in the store too before it is
        hidden: NOT_FOUND then costs the same whether or not the id exists,
        so its timing cannot tell (bench/not_found_timing.py measures it).
        """
        live = self._jobs.get(job_id)
        if live is None or principal.may_see(live.record.owner_id):
            return live
        await self._store.get_job(job_id)
        raise job_not_found(job_id)

    async def _copy_if_unheard(self, record: JobRecord) -> LiveJob | None:
        """With replicas, an unfinished job this replica holds no copy of was stored moments ago by another
        one, whose notification has not arrived yet: copy it now, so that a watch or a cancel right after a
        submit elsewhere does not find it missing."""
        if self.replicas is None or record.state.is_terminal:
            return None
        await self.replicas.catch_up(record.job_id)
        return self._jobs.get(record.job_id)

    async def get(self, principal: Principal, job_id: str) -> JobRecord:
        require_role(principal, Role.CLIENT)
        live = await self._live_for(principal, job_id)
        if live is not None:
            if self.replicas is not None:
                await self.replicas.fresh(live)  # its tokens so far, if another replica's miner made them
            return self._progress.of(live)
        record = await self._store.get_job(job_id)
        if record is None:
            raise job_not_found(job_id)
        check_job_owner(principal, record)
        return record

    async def list(self, principal: Principal, job_filter: JobFilter, *, limit: int, page_token: str) -> JobPage:
        require_role(principal, Role.CLIENT)
        if limit == 0:
            limit = DEFAULT_PAGE_SIZE
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise invalid_argument("limit", f"must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        page = await self._store.list_jobs(
            owner_id=job_filter.owner_id,
            state=job_filter.state,
            limit=limit,
            page_token=page_token,
            model=job_filter.model,
            created_after=job_filter.created_after,
            created_before=job_filter.created_before,
        )
        jobs = [self._progress.of(live) if (live := self._jobs.get(job.job_id)) else job for job in page.jobs]
        return JobPage(jobs=jobs, next_page_token=page.next_page_token)

    async def cancel(self, principal: Principal, job_id: str) -> JobRecord:
        require_role(principal, Role.CLIENT)
        live = await self._live_for(principal, job_id)
        if live is None:
            record = await self.get(principal, job_id)
            live = await self._copy_if_unheard(record)
            if live is None:
                raise _not_cancelable(record)
        return await self.cancel_live(live)

    async def cancel_live(self, live: LiveJob) -> JobRecord:
        """Cancel a job, through its miner when it is on one; also what another replica's request runs here."""
        relayed = False  # asked the replica whose miner runs it, which cancels it there
        while not live.record.state.is_terminal:
            record = live.record
            reason = CANCELED_BY_CLIENT
            if record.state is JobState.PENDING:
                self._dispatcher.queue.remove(record.job_id)
            else:
                # `canceling` until the miner acknowledges, or its acknowledgement times out.
                live.cancel_requested = True
                if self._on_another_replica(record):
                    assert self.replicas is not None
                    if await self.replicas.stop_elsewhere(live, self._reports.cancel_ack_timeout):
                        relayed = True
                        continue  # canceled there (or moved on): look again
                    reason = f"{CANCELED_BY_CLIENT}; its replica did not acknowledge the cancel in time"
                elif unacknowledged := await self._reports.stop_on_miner(record):
                    reason = f"{CANCELED_BY_CLIENT}; {unacknowledged}"
            updated = await self._jobs.finish(live, JobState.CANCELED, reason, expected_attempt=record.attempt)
            if updated is not None:
                return updated
        if relayed and live.record.state is JobState.CANCELED:
            return live.record
        raise _not_cancelable(live.record)

    def _on_another_replica(self, record: JobRecord) -> bool:
        """On a miner that is not connected here (only with several replicas on one store)."""
        return self.replicas is not None and self._miners.holder(record.job_id, record.miner_id, record.attempt) is None

    async def watch(self, principal: Principal, job_id: str, from_seq: int = 0) -> AsyncIterator[JobEvent]:
        """Events from `from_seq` on; ends after the final state."""
        require_role(principal, Role.CLIENT)
        if from_seq < 0:
            raise invalid_argument("from_seq", f"must not be negative, got {from_seq}")
        live = await self._live_for(principal, job_id)
        if live is None:
            record = await self._store.get_job(job_id)
            if record is None:
                raise job_not_found(job_id)
            check_job_owner(principal, record)
            # It may have started meanwhile, or be another replica's not heard of yet.
            live = self._jobs.get(job_id) or await self._copy_if_unheard(record)
            if live is None:
                for event in await self._store.events(job_id, from_seq=max(from_seq, 1)):
                    yield event
                return
        live.watchers += 1  # from here on, another replica's tokens for it are read as they come
        try:
            if self.replicas is not None:
                await self.replicas.fresh(live)
            async for event in live.follow(from_seq):
                yield event
        finally:
            live.watchers -= 1

    async def _expire(self, job_id: str) -> None:
        """Fail a job that waited out its TTL without ever reaching a miner."""
        live = self._jobs.get(job_id)
        if live is None or live.record.state is not JobState.PENDING or live.record.attempt != 0:
            return
        self._dispatcher.queue.remove(job_id)
        ttl = live.record.spec.ttl.total_seconds()
        error = f"expired: no miner picked the job up within its TTL of {ttl:g}s"
        # If the store fails, the job is stranded and expires when it is repaired.
        with contextlib.suppress(StoreUnavailable):
            await self._jobs.finish(live, JobState.FAILED, error, expected_attempt=0)


def _not_cancelable(record: JobRecord) -> AitbcError:
    return AitbcError(
        Reason.JOB_NOT_CANCELABLE, f"job {record.job_id!r} is already {record.state.value}", field="job_id"
    )
