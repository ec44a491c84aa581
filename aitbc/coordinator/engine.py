"""The coordinator: job lifecycle, dispatch to miners, fan-out to watchers.

Transport-free: servicers translate protos into calls on `Coordinator` and
its results back. Every state change goes through `_transition`, which
checks the state machine in memory and has the store compare-and-set it, so
two racing changes can never both apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from aitbc.coordinator.expiry import ExpiryTimer
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import (
    Assign,
    Assignment,
    Cancel,
    Drain,
    MinerInfo,
    MinerSession,
    ModelOffer,
    OutboxFull,
    Welcome,
    model_offers,
)
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.catalog import DEFAULT_CATALOG, Catalog, ModelEntry, ModelKind
from aitbc.domain.errors import AitbcError, Reason, invalid_argument, job_not_found
from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.fair_queue import FairQueue
from aitbc.domain.jobs import JobRecord, JobSpec, estimate_completion, estimate_start, new_job_id
from aitbc.domain.keys import Principal, Role
from aitbc.domain.routing import Candidate, RouteRequest, check_route, cost_on, could_ever_serve, estimate_prompt_tokens
from aitbc.domain.scheduler import plan_assignments
from aitbc.domain.states import JobState, can_transition, sources_of
from aitbc.store.base import JobChanges, JobPage, MinerRecord, Store

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
CANCELED_BY_CLIENT = "canceled by the client"
_MINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    # A job handed to this many miners without finishing fails instead of
    # taking down miner after miner.
    max_attempts: int = 3
    # How long a cancel waits for the miner's acknowledgement before the job
    # is canceled anyway; the attempt fence then rejects anything late.
    cancel_ack_timeout: float = 5.0
    heartbeat_interval: float = 2.0
    # A miner silent for this long (no heartbeat, no message) loses its leases:
    # its jobs go to other miners and its stream is closed.
    lease_timeout: float = 6.0
    catalog: Catalog = DEFAULT_CATALOG
    # Queued jobs allowed per client and in all; beyond them submits get
    # RESOURCE_EXHAUSTED with a retry delay instead of a queue without bound.
    max_queued_per_client: int = 1000
    max_queued_total: int = 100_000


class Coordinator:
    def __init__(
        self, store: Store, config: CoordinatorConfig | None = None, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._config = config or CoordinatorConfig()
        self._now = clock
        self._catalog = self._config.catalog
        self._live: dict[str, LiveJob] = {}
        self._queue = FairQueue(
            max_per_owner=self._config.max_queued_per_client, max_total=self._config.max_queued_total
        )
        self._miners: dict[str, MinerSession] = {}
        self._reputation = ReputationBook(store, clock)
        # Serializes dispatch passes: the background loop's and the one a submit runs inline.
        self._dispatch_lock = asyncio.Lock()
        # Mean seconds a job takes on a miner (EWMA), for estimated starts.
        self._mean_job_seconds: float | None = None
        self._wake = asyncio.Event()
        # Set (and replaced) whenever a miner leaves or frees a slot.
        self._miners_changed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._accepting = True
        self._detaching: set[asyncio.Task[None]] = set()
        self._expiries = ExpiryTimer(self._expire, clock)

    # Lifecycle

    async def start(self) -> None:
        """Load unfinished jobs and start dispatching.

        Jobs that were on a miner when the previous process stopped go back to
        pending: no miner is connected to a process that just started.
        """
        await self._reputation.load()
        for record in await self._store.unfinished_jobs():
            events = await self._store.events(record.job_id)
            if self._catalog.find(record.spec.model) is None:
                await self._fail_unroutable(record, events)
                continue
            live = LiveJob(record, events, self._route_request(record.spec))
            self._live[record.job_id] = live
            if record.state is JobState.PENDING:
                self._enqueue(record)
                self._expiries.add(record)
            else:
                await self._requeue(live, record.attempt, "the coordinator restarted")
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="aitbc-dispatch")
        self._wake.set()

    async def _fail_unroutable(self, record: JobRecord, events: list[JobEvent]) -> None:
        """A job left over from before its model was removed from the catalog can never run."""
        model = record.spec.model
        live = LiveJob(record, events, RouteRequest(ModelEntry(id=model), 1, record.spec.params.max_tokens, None))
        self._live[record.job_id] = live
        error = f"model {model!r} is no longer in the model catalog"
        log.warning("failing %s: %s", record.job_id, error)
        await self._transition(live, JobState.FAILED, self._final_changes(live, error), expected_attempt=record.attempt)

    async def shutdown(self, grace: float) -> None:
        """Refuse new jobs, let miners finish theirs for up to `grace` seconds, requeue the rest.

        Drained miners close their streams once their jobs are done; waiting for
        that (rather than for their slots to empty) lets the final messages of
        every job be processed before the server stops reading.
        """
        self._accepting = False
        for session in list(self._miners.values()):
            session.draining = True
            with contextlib.suppress(OutboxFull):
                session.send(Drain("the coordinator is shutting down"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._miners:
            changed = self._miners_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), max(0.0, deadline - loop.time()))
            if loop.time() >= deadline:
                break
        for session in list(self._miners.values()):
            await self.detach_miner(session, "the coordinator shut down")
        await asyncio.gather(*self._detaching, return_exceptions=True)
        await self._reputation.flush()
        self._expiries.close()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher

    @property
    def heartbeat_interval(self) -> timedelta:
        return timedelta(seconds=self._config.heartbeat_interval)

    # Client API

    async def submit(self, principal: Principal, spec: JobSpec, *, queue_if_unavailable: bool = False) -> JobRecord:
        """Store the job and route it at once where a miner is free.

        Fails fast with NO_ELIGIBLE_MINER when no online miner could ever run
        it (unless `queue_if_unavailable`), and with QUEUE_FULL past the queue
        limits. The answer carries the routing decision, or the queue position.
        """
        self._require_role(principal, Role.CLIENT)
        if not self._accepting:
            raise AitbcError(Reason.SHUTTING_DOWN, "the coordinator is shutting down; retry on another one")
        entry = self._catalog.resolve(spec.model)
        if entry.kind is not ModelKind.TEXT:
            raise invalid_argument("model", f"{entry.id!r} is an {entry.kind.value} model; only text jobs run today")
        spec = replace(spec, model=entry.id)
        if spec.idempotency_key and (
            existing := await self._store.job_by_idempotency_key(principal.owner_id, spec.idempotency_key)
        ):
            # A retry answers with the job it already made, whatever the queue or the miners look like now.
            return await self._replay(principal, existing, spec)
        route = self._route_request(spec)
        if not queue_if_unavailable and (unroutable := check_route(self._candidates(), route)) is not None:
            message = f"{unroutable.reason}; set queue_if_unavailable to wait for one"
            raise AitbcError(Reason.NO_ELIGIBLE_MINER, message, field="model")
        self._queue.check_admission(principal.owner_id, retry_after_seconds=self._retry_after())
        now = self._now()
        record = JobRecord(
            job_id=new_job_id(),
            owner_id=principal.owner_id,
            state=JobState.PENDING,
            spec=spec,
            created_at=now,
            updated_at=now,
            expires_at=now + spec.ttl,
        )
        stored = await asyncio.shield(self._create(record, route))
        if stored.job_id != record.job_id:
            return await self._replay(principal, stored, spec)  # a concurrent retry stored it first
        async with self._dispatch_lock:
            await self._dispatch_pass()
        live = self._live.get(record.job_id)
        return self._with_progress(live) if live else await self.get(principal, record.job_id)

    async def _replay(self, principal: Principal, existing: JobRecord, spec: JobSpec) -> JobRecord:
        """The job an idempotency key already names: the same job, never a second one."""
        if existing.spec.input_hash() != spec.input_hash():
            message = f"was already used for a different request (job {existing.job_id})"
            raise invalid_argument("idempotency_key", message)
        return await self.get(principal, existing.job_id)

    async def _create(self, record: JobRecord, route: RouteRequest) -> JobRecord:
        """Store a new job and queue it; or return the job an idempotency key already names."""
        event = JobEvent(
            job_id=record.job_id, seq=1, time=record.created_at, kind=EventKind.STATE, state=JobState.PENDING
        )
        stored = await self._store.create_job(record, event)
        if stored.job_id == record.job_id:
            self._live[record.job_id] = LiveJob(record, [event], route)
            self._enqueue(record)
            self._expiries.add(record)
        return stored

    async def get(self, principal: Principal, job_id: str) -> JobRecord:
        self._require_role(principal, Role.CLIENT)
        live = self._live.get(job_id)
        if live is not None:
            self._check_owner(principal, live.record)
            return self._with_progress(live)
        record = await self._store.get_job(job_id)
        if record is None:
            raise job_not_found(job_id)
        self._check_owner(principal, record)
        return record

    async def list_jobs(self, principal: Principal, *, state: JobState | None, limit: int, page_token: str) -> JobPage:
        self._require_role(principal, Role.CLIENT)
        if limit == 0:
            limit = DEFAULT_PAGE_SIZE
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise invalid_argument("limit", f"must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        owner = None if principal.role is Role.ADMIN else principal.owner_id
        page = await self._store.list_jobs(owner_id=owner, state=state, limit=limit, page_token=page_token)
        jobs = [self._with_progress(self._live[job.job_id]) if job.job_id in self._live else job for job in page.jobs]
        return JobPage(jobs=jobs, next_page_token=page.next_page_token)

    async def cancel(self, principal: Principal, job_id: str) -> JobRecord:
        self._require_role(principal, Role.CLIENT)
        live = self._live.get(job_id)
        if live is None:
            record = await self.get(principal, job_id)
            raise _not_cancelable(record)
        self._check_owner(principal, live.record)
        while not live.record.state.is_terminal:
            record = live.record
            if record.state is JobState.PENDING:
                self._queue.remove(job_id)
            else:
                await self._stop_on_miner(record)
            changes = self._final_changes(live, CANCELED_BY_CLIENT)
            updated = await self._transition(live, JobState.CANCELED, changes, expected_attempt=record.attempt)
            if updated is not None:
                return updated
        raise _not_cancelable(live.record)

    async def watch(self, principal: Principal, job_id: str, from_seq: int = 0) -> AsyncIterator[JobEvent]:
        """Events from `from_seq` on; ends after the final state."""
        self._require_role(principal, Role.CLIENT)
        if from_seq < 0:
            raise invalid_argument("from_seq", f"must not be negative, got {from_seq}")
        live = self._live.get(job_id)
        if live is None:
            record = await self._store.get_job(job_id)
            if record is None:
                raise job_not_found(job_id)
            self._check_owner(principal, record)
            live = self._live.get(job_id)
            if live is None:
                for event in await self._store.events(job_id, from_seq=max(from_seq, 1)):
                    yield event
                return
        self._check_owner(principal, live.record)
        async for event in live.follow(from_seq):
            yield event

    # Miner API

    async def attach_miner(self, principal: Principal, info: MinerInfo) -> MinerSession:
        self._require_role(principal, Role.MINER)
        if not self._accepting:
            # The miner backs off and finds this coordinator's successor.
            raise AitbcError(Reason.SHUTTING_DOWN, "the coordinator is shutting down; reconnect later")
        _validate_miner(info, _HELLO_FIELDS)
        models = self._catalog_models(info, "hello.models")
        previous = self._miners.get(info.miner_id)
        if previous is not None:
            self._check_miner_owner(previous, principal)
            await self.detach_miner(previous, "a newer connection of the same miner took over", penalize=False)
        session = MinerSession(info, principal, self._now(), models=models)
        session.send(Welcome(info.miner_id, self.heartbeat_interval))
        self._miners[info.miner_id] = session
        self._reputation.seen(session)
        self._arm_lease(session)
        log.info("miner %s connected: models=%s slots=%d", info.miner_id, sorted(session.models), info.max_concurrency)
        self._wake.set()
        return session

    def _catalog_models(self, info: MinerInfo, field: str) -> dict[str, str]:
        """The advertised names the catalog knows, mapped to catalog ids; at least one must be known."""
        known = {name: model_id for name in info.models if (model_id := self._catalog.canonical(name)) is not None}
        unknown = sorted(info.models - known.keys())
        if not known:
            raise invalid_argument(field, f"none of {unknown} is in the model catalog; add them to models.json")
        if unknown:
            log.warning("miner %s advertises models the catalog does not know: %s", info.miner_id, unknown)
        return known

    def miner_gone(self, session: MinerSession, reason: str, *, penalize: bool = True) -> asyncio.Task[None]:
        """Detach a miner whose stream ended, in a task of its own.

        The stream's handler may be cancelled at any moment; requeueing the
        miner's jobs must finish regardless, and shutdown waits for it.
        """
        detach = self.detach_miner(session, reason, penalize=penalize and self._accepting)
        task = asyncio.create_task(detach, name=f"detach-{session.miner_id}")
        self._detaching.add(task)
        task.add_done_callback(self._detaching.discard)
        return task

    async def detach_miner(self, session: MinerSession, reason: str, *, penalize: bool = False) -> None:
        """Forget a miner; each job it had goes back to pending, keeping the text so far.

        With `penalize`, each job it dropped counts as a failure against its reputation.
        """
        if self._miners.get(session.miner_id) is session:
            del self._miners[session.miner_id]
            log.info("miner %s disconnected: %s", session.miner_id, reason)
            self._signal_miners_changed()
        session.close()
        for assignment in list(session.assignments.values()):
            if penalize:
                self._reputation.failed(session.miner_id)
            self._release(session, assignment)
            live = self._live.get(assignment.job_id)
            if live is not None:
                await self._requeue(live, assignment.attempt, f"miner {session.miner_id} went away: {reason}")
        self._wake.set()

    def touch(self, session: MinerSession) -> None:
        """Any message from a miner is a sign of life that extends its leases."""
        session.last_seen = asyncio.get_running_loop().time()

    def heartbeat(self, session: MinerSession, *, draining: bool) -> None:
        """The lease was renewed on receipt (`touch`); slots are counted here, so only `draining` matters."""
        if session.draining != draining:
            session.draining = draining or not self._accepting
            self._wake.set()

    async def job_started(self, session: MinerSession, job_id: str, attempt: int, prompt_tokens: int) -> None:
        found = self._fenced(session, job_id, attempt)
        if found is not None:
            await self._mark_running(session, *found, prompt_tokens=prompt_tokens)

    async def job_tokens(self, session: MinerSession, job_id: str, attempt: int, text: str, token_count: int) -> None:
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return
        live, assignment = found
        if token_count < 0:
            raise AitbcError(
                Reason.MINER_PROTOCOL_ERROR, "token_count must not be negative", field="tokens.token_count"
            )
        await self._mark_running(session, live, assignment)
        await self._append_tokens(live, assignment, text, token_count)

    async def job_done(
        self,
        session: MinerSession,
        job_id: str,
        attempt: int,
        *,
        output: str,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: str,
    ) -> JobRecord | None:
        """Complete the job; None when the miner no longer holds it."""
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return None
        live, assignment = found
        await self._mark_running(session, live, assignment, prompt_tokens=prompt_tokens)
        streamed = "".join(assignment.text)
        if len(output) > len(streamed) and output.startswith(streamed):
            # A miner may report text it never streamed (or stream nothing at
            # all); watchers get it as one last chunk.
            unseen_tokens = max(completion_tokens - assignment.tokens, 0)
            await self._append_tokens(live, assignment, output[len(streamed) :], unseen_tokens)
        total_tokens = assignment.resume_tokens + max(completion_tokens, assignment.tokens)
        changes = JobChanges(
            result=live.text,
            completion_tokens=total_tokens,
            prompt_tokens=live.record.prompt_tokens or prompt_tokens,
            completed_at=self._now(),
            finish_reason=finish_reason,
        )
        completed = await self._transition(live, JobState.COMPLETED, changes, expected_attempt=attempt)
        if completed is not None:
            self._record_completion(session, assignment)
        # Only now: a free slot (or shutdown's wait) must not overtake the stored outcome.
        self._release(session, assignment)
        self._wake.set()
        return completed

    def _record_completion(self, session: MinerSession, assignment: Assignment) -> None:
        now = self._now()
        elapsed = (now - assignment.assigned_at).total_seconds()
        first = assignment.first_token_at
        generating = (now - first).total_seconds() if first else 0.0
        self._reputation.completed(
            session.miner_id,
            tokens_per_second=assignment.tokens / generating if generating > 0 else 0.0,
            ttft_seconds=(first - assignment.assigned_at).total_seconds() if first else 0.0,
        )
        previous = self._mean_job_seconds
        self._mean_job_seconds = elapsed if previous is None else 0.8 * previous + 0.2 * elapsed

    async def job_failed(
        self, session: MinerSession, job_id: str, attempt: int, *, error: str, retryable: bool
    ) -> JobRecord | None:
        """Fail the attempt (requeue it when `retryable`); None when the miner no longer holds the job."""
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return None
        live, assignment = found
        reason = f"miner {session.miner_id}: {error or 'unspecified error'}"
        if retryable:
            # The job may succeed elsewhere, so this miner is the one that failed it.
            self._reputation.failed(session.miner_id)
            await self._requeue(live, attempt, reason)
        else:
            await self._transition(live, JobState.FAILED, self._final_changes(live, reason), expected_attempt=attempt)
        self._release(session, assignment)
        self._wake.set()
        return live.record

    def cancel_acknowledged(self, session: MinerSession, job_id: str, attempt: int, completion_tokens: int) -> None:
        found = self._fenced(session, job_id, attempt)
        if found is not None:
            found[1].settle_cancel(completion_tokens)

    # Polling miners: the seed's HTTP miner API

    async def register_polling_miner(self, principal: Principal, info: MinerInfo) -> MinerSession:
        self._require_role(principal, Role.MINER)
        if not self._accepting:
            raise AitbcError(Reason.SHUTTING_DOWN, "the coordinator is shutting down; register later")
        _validate_miner(info, _REGISTRATION_FIELDS)
        models = self._catalog_models(info, "capabilities")
        existing = self._miners.get(info.miner_id)
        if existing is not None and existing.polls and existing.principal.owner_id == principal.owner_id:
            existing.advertise(info, models)  # re-registration: new capabilities, same leases
            self.touch(existing)
            self._reputation.seen(existing)
            return existing
        if existing is not None:
            self._check_miner_owner(existing, principal)
            await self.detach_miner(existing, "it registered as a polling miner")
        session = MinerSession(info, principal, self._now(), models=models, polls=True)
        self._miners[info.miner_id] = session
        self._reputation.seen(session)
        self._arm_lease(session)
        log.info("polling miner %s registered: models=%s", info.miner_id, sorted(session.models))
        return session

    def polling_heartbeat(self, principal: Principal, miner_id: str) -> list[str]:
        """Renew the miner's leases; returns the jobs it holds (a canceled one is no longer listed)."""
        return list(self._polling_session(principal, miner_id).assignments)

    def available_jobs(self, principal: Principal, miner_id: str, limit: int) -> list[JobRecord]:
        session = self._polling_session(principal, miner_id)
        limit = limit or 10
        if not 1 <= limit <= 100:
            raise invalid_argument("limit", f"must be between 1 and 100, got {limit}")
        # Peek past jobs this miner could never take (tier, VRAM, price) so it still gets `limit` offers.
        candidate = self._candidate(session)
        offers = [self._live[job_id] for job_id in self._queue.peek(session.models, len(self._queue))]
        return [live.record for live in offers if could_ever_serve(candidate, live.route)][:limit]

    async def claim(self, principal: Principal, miner_id: str, job_id: str) -> Assign:
        """Hand a pending job to a polling miner; of racing claims exactly one wins."""
        session = self._polling_session(principal, miner_id)
        live = self._live.get(job_id)
        if live is None and await self._store.get_job(job_id) is None:
            raise job_not_found(job_id)
        if live is None or live.record.state is not JobState.PENDING:
            state = live.record.state.value if live else "finished"
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, f"job {job_id!r} is {state}, not pending", field="job_id")
        if not could_ever_serve(self._candidate(session), live.route):
            model = live.record.spec.model
            message = f"miner {miner_id!r} cannot run job {job_id!r}: its model {model!r} needs what the miner lacks"
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, message, field="job_id")
        if session.free_slots <= 0:
            message = f"miner {miner_id!r} already holds {session.info.max_concurrency} job(s), its maximum"
            raise AitbcError(Reason.MINER_AT_CAPACITY, message, field="miner_id")
        # take, not remove: the claim counts as this client's turn in the fair rotation.
        self._queue.take(job_id)
        handed = await self._hand_over(live, session)
        if handed is None:
            raise AitbcError(Reason.JOB_NOT_CLAIMABLE, f"job {job_id!r} was taken first", field="job_id")
        assignment, command = handed
        # A polling miner starts when it claims; it reports nothing in between.
        await self._mark_running(session, live, assignment)
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
    ) -> JobRecord:
        session = self._polling_session(principal, miner_id)
        held = self._held_attempt(session, job_id, attempt)
        record = await self.job_done(
            session,
            job_id,
            held,
            output=result,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason or "stop",
        )
        if record is None:
            raise _lease_lost(job_id, miner_id)
        return record

    async def fail(
        self, principal: Principal, miner_id: str, job_id: str, *, attempt: int, error: str, retryable: bool
    ) -> JobRecord:
        session = self._polling_session(principal, miner_id)
        held = self._held_attempt(session, job_id, attempt)
        record = await self.job_failed(session, job_id, held, error=error, retryable=retryable)
        if record is None:
            raise _lease_lost(job_id, miner_id)
        return record

    def _polling_session(self, principal: Principal, miner_id: str) -> MinerSession:
        self._require_role(principal, Role.MINER)
        session = self._miners.get(miner_id)
        if session is None or not session.polls or not self._owns_miner(session, principal):
            raise AitbcError(
                Reason.MINER_NOT_FOUND,
                f"miner {miner_id!r} is not registered (or its lease expired); register it first",
                field="miner_id",
            )
        self.touch(session)
        return session

    @staticmethod
    def _held_attempt(session: MinerSession, job_id: str, attempt: int) -> int:
        assignment = session.assignments.get(job_id)
        if assignment is None or attempt not in (0, assignment.attempt):
            raise _lease_lost(job_id, session.miner_id)
        return assignment.attempt

    def models(self, principal: Principal) -> list[tuple[ModelEntry, ModelOffer | None]]:
        """The catalog, each entry with what connected miners offer of it now; any valid key may ask."""
        offers = {offer.model: offer for offer in model_offers(list(self._miners.values()))}
        return [(entry, offers.get(entry.id)) for entry in self._catalog.entries()]

    def miner_overview(self, principal: Principal) -> list[tuple[MinerRecord, MinerSession | None]]:
        """Every miner met so far, connected ones with their session; any valid key may ask."""
        return [(record, self._miners.get(record.miner_id)) for record in self._reputation.records()]

    def reputation(self, miner_id: str) -> int:
        return self._reputation.score(miner_id)

    # Internals

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._dispatch_lock:
                await self._dispatch_pass()

    async def _dispatch_pass(self) -> None:
        """Start every queued job that a miner can take now, by the scheduling rules."""
        pushable = [self._candidate(session) for session in self._miners.values() if not session.polls]
        for job_id, miner_id in plan_assignments(self._queue, pushable, self._route_for):
            try:
                await self._assign(job_id, miner_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad assignment must not stop dispatch for everyone.
                log.exception("assigning %s to %s failed", job_id, miner_id)
                live = self._live.get(job_id)
                if live is not None and live.record.state is JobState.PENDING:
                    self._enqueue(live.record, front=True)

    def _route_for(self, job_id: str) -> RouteRequest:
        return self._live[job_id].route

    def _route_request(self, spec: JobSpec) -> RouteRequest:
        prompt_chars = len(spec.prompt) + sum(len(message.content) for message in spec.messages)
        return RouteRequest(
            model=self._catalog.resolve(spec.model),
            prompt_tokens=estimate_prompt_tokens(prompt_chars),
            max_tokens=spec.params.max_tokens,
            max_price=spec.max_price,
        )

    def _candidate(self, session: MinerSession) -> Candidate:
        stats = self._reputation.stats(session.miner_id)
        return session.candidate(reputation=stats.score(self._now()), tokens_per_second=stats.tokens_per_second)

    def _candidates(self) -> list[Candidate]:
        return [self._candidate(session) for session in self._miners.values()]

    def _enqueue(self, record: JobRecord, *, front: bool = False) -> None:
        spec = record.spec
        self._queue.push(record.job_id, owner_id=record.owner_id, model=spec.model, priority=spec.priority, front=front)
        self._wake.set()

    def _retry_after(self) -> float:
        """Seconds until the queue likely has room: one average job, at least one second."""
        return max(1.0, self._mean_job_seconds or 5.0)

    async def _assign(self, job_id: str, miner_id: str) -> None:
        live = self._live.get(job_id)
        session = self._miners.get(miner_id)
        if live is None or live.record.state is not JobState.PENDING:
            return
        if session is None or session.closed:
            self._enqueue(live.record, front=True)
            return
        handed = await self._hand_over(live, session)
        if handed is None:
            return
        assignment, command = handed
        try:
            session.send(command)
        except OutboxFull as exc:
            self._release(session, assignment)
            await self._requeue(live, assignment.attempt, str(exc))

    async def _hand_over(self, live: LiveJob, session: MinerSession) -> tuple[Assignment, Assign] | None:
        """Assign a pending job to a miner (the next attempt), or None if it stopped being pending meanwhile."""
        record = live.record
        attempt = record.attempt + 1
        candidate = self._candidate(session)
        assignment = Assignment(
            job_id=record.job_id, attempt=attempt, resume_tokens=live.tokens, assigned_at=self._now()
        )
        # Reserved before the store round trip, so the slot cannot be handed out twice meanwhile.
        session.assignments[record.job_id] = assignment
        changes = JobChanges(
            attempt=attempt,
            miner_id=session.miner_id,
            error="",
            estimated_cost=cost_on(candidate, live.route),
            miner_reputation=candidate.reputation,
        )
        updated = await self._transition(live, JobState.ASSIGNED, changes, expected_attempt=record.attempt)
        if updated is None:
            self._release(session, assignment)
            return None
        spec = replace(updated.spec, model=session.local_name(updated.spec.model))
        return assignment, Assign(record.job_id, attempt, spec, live.text, live.tokens)

    async def _mark_running(
        self, session: MinerSession, live: LiveJob, assignment: Assignment, *, prompt_tokens: int = 0
    ) -> None:
        if assignment.started:
            return
        assignment.started = True
        record = live.record
        changes = JobChanges(
            started_at=record.started_at or self._now(),
            prompt_tokens=record.prompt_tokens or prompt_tokens or None,
        )
        await self._transition(live, JobState.RUNNING, changes, expected_attempt=assignment.attempt)

    async def _append_tokens(self, live: LiveJob, assignment: Assignment, text: str, token_count: int) -> None:
        if text or token_count:
            await asyncio.shield(self._append_tokens_now(live, assignment, text, token_count))

    async def _append_tokens_now(self, live: LiveJob, assignment: Assignment, text: str, token_count: int) -> None:
        now = self._now()
        async with live.lock:
            event = JobEvent(
                job_id=live.record.job_id,
                seq=live.next_seq,
                time=now,
                kind=EventKind.TOKENS,
                text=text,
                token_count=token_count,
                attempt=assignment.attempt,
            )
            await self._store.append_events([event])
            live.append(event)
        assignment.text.append(text)
        assignment.tokens += token_count
        if assignment.first_token_at is None:
            assignment.first_token_at = now

    async def _stop_on_miner(self, record: JobRecord) -> None:
        """Ask the job's miner to stop and wait until every token it made has arrived."""
        session = self._miners.get(record.miner_id)
        assignment = session.assignments.get(record.job_id) if session else None
        if session is None or assignment is None or assignment.attempt != record.attempt:
            return
        if session.polls:
            # Nothing can reach a polling miner: it learns from LEASE_LOST when it reports.
            self._release(session, assignment)
            return
        acknowledged = assignment.request_cancel()
        try:
            session.send(Cancel(record.job_id, record.attempt))
            await asyncio.wait_for(asyncio.shield(acknowledged), self._config.cancel_ack_timeout)
        except (OutboxFull, TimeoutError):
            log.warning("miner %s did not acknowledge cancel of %s", session.miner_id, record.job_id)
            self._reputation.caused_cancellation(session.miner_id)
        if session.assignments.get(record.job_id) is assignment:
            self._release(session, assignment)
        self._wake.set()

    async def _requeue(self, live: LiveJob, attempt: int, reason: str) -> None:
        record = live.record
        if record.attempt != attempt or record.state not in (JobState.ASSIGNED, JobState.RUNNING):
            return
        if attempt >= self._config.max_attempts:
            error = f"gave up after {attempt} attempts; the last: {reason}"
            await self._transition(live, JobState.FAILED, self._final_changes(live, error), expected_attempt=attempt)
            return
        changes = JobChanges(miner_id="", error=reason, completion_tokens=live.tokens)
        if await self._transition(live, JobState.PENDING, changes, expected_attempt=attempt) is not None:
            self._enqueue(record, front=True)

    # aiosqlite runs each statement on its own thread, so a write can commit
    # even when the coroutine awaiting it is cancelled (a stream dropped, the
    # server stopping). Every write that memory must mirror therefore runs in a
    # task of its own via asyncio.shield: cancelling the caller cannot leave
    # the store ahead of the in-memory job (and its next sequence number).

    async def _transition(
        self, live: LiveJob, to: JobState, changes: JobChanges, *, expected_attempt: int
    ) -> JobRecord | None:
        return await asyncio.shield(self._transition_now(live, to, changes, expected_attempt=expected_attempt))

    async def _transition_now(
        self, live: LiveJob, to: JobState, changes: JobChanges, *, expected_attempt: int
    ) -> JobRecord | None:
        async with live.lock:
            record = live.record
            if record.attempt != expected_attempt or not can_transition(record.state, to):
                return None
            now = self._now()
            new_attempt = changes.attempt if changes.attempt is not None else record.attempt
            event = JobEvent(
                job_id=record.job_id,
                seq=live.next_seq,
                time=now,
                kind=EventKind.STATE,
                state=to,
                miner_id=changes.miner_id if changes.miner_id is not None else record.miner_id,
                attempt=new_attempt,
                error=changes.error if changes.error is not None else record.error,
                prompt_tokens=changes.prompt_tokens if changes.prompt_tokens is not None else record.prompt_tokens,
                completion_tokens=(changes.completion_tokens if changes.completion_tokens is not None else live.tokens),
                finish_reason=changes.finish_reason or "",
            )
            updated = await self._store.transition(
                record.job_id,
                from_states=sources_of(to),
                attempt=expected_attempt,
                to=to,
                changes=changes,
                now=now,
                event=event,
            )
            if updated is None:
                return None
            live.record = updated
            live.append(event)
        if to.is_terminal:
            del self._live[record.job_id]
        return updated

    def _arm_lease(self, session: MinerSession) -> None:
        # One timer per miner, re-armed lazily from `last_seen`, so that a
        # busy stream does not reschedule a timer for every message.
        loop = asyncio.get_running_loop()
        session.lease_timer = loop.call_at(session.last_seen + self._config.lease_timeout, self._check_lease, session)

    def _check_lease(self, session: MinerSession) -> None:
        if session.closed or self._miners.get(session.miner_id) is not session:
            return
        if asyncio.get_running_loop().time() < session.last_seen + self._config.lease_timeout:
            self._arm_lease(session)
            return
        reason = f"no heartbeat for {self._config.lease_timeout:g}s"
        log.warning("miner %s lost its leases: %s", session.miner_id, reason)
        self._reputation.lease_expired(session.miner_id)
        self.miner_gone(session, reason, penalize=False)

    @staticmethod
    def _owns_miner(session: MinerSession, principal: Principal) -> bool:
        return principal.role is Role.ADMIN or session.principal.owner_id == principal.owner_id

    def _check_miner_owner(self, session: MinerSession, principal: Principal) -> None:
        if not self._owns_miner(session, principal):
            raise AitbcError(
                Reason.PERMISSION_DENIED,
                f"miner id {session.miner_id!r} is in use with another account's key",
                field="miner_id",
            )

    async def _expire(self, job_id: str) -> None:
        """Fail a job that waited out its TTL without ever reaching a miner."""
        live = self._live.get(job_id)
        if live is None or live.record.state is not JobState.PENDING or live.record.attempt != 0:
            return
        self._queue.remove(job_id)
        ttl = live.record.spec.ttl.total_seconds()
        error = f"expired: no miner picked the job up within its TTL of {ttl:g}s"
        await self._transition(live, JobState.FAILED, self._final_changes(live, error), expected_attempt=0)

    def _final_changes(self, live: LiveJob, error: str) -> JobChanges:
        """A job ending without completing keeps the text it produced and is charged for those tokens."""
        return JobChanges(result=live.text, completion_tokens=live.tokens, completed_at=self._now(), error=error)

    def _fenced(self, session: MinerSession, job_id: str, attempt: int) -> tuple[LiveJob, Assignment] | None:
        """The job and lease a miner message is about, or None if it lost that lease."""
        assignment = session.assignments.get(job_id)
        live = self._live.get(job_id)
        if assignment is None or assignment.attempt != attempt or live is None or live.record.attempt != attempt:
            log.debug(
                "ignoring a message from %s about %s attempt %d: not its lease", session.miner_id, job_id, attempt
            )
            return None
        return live, assignment

    def _release(self, session: MinerSession, assignment: Assignment) -> None:
        if session.assignments.get(assignment.job_id) is assignment:
            del session.assignments[assignment.job_id]
        assignment.settle_cancel(assignment.tokens)
        self._signal_miners_changed()

    def _signal_miners_changed(self) -> None:
        self._miners_changed.set()
        self._miners_changed = asyncio.Event()

    def _with_progress(self, live: LiveJob) -> JobRecord:
        """The stored record plus the output so far and, while generating, an estimated completion."""
        record = replace(live.record, result=live.text, completion_tokens=live.tokens)
        if record.state is JobState.PENDING:
            return self._with_queue_estimate(record, live.route)
        session = self._miners.get(record.miner_id)
        assignment = session.assignments.get(record.job_id) if session else None
        if record.state is not JobState.RUNNING or assignment is None or assignment.first_token_at is None:
            return record
        now = self._now()
        elapsed = (now - assignment.first_token_at).total_seconds()
        rate = assignment.tokens / elapsed if elapsed > 0 else 0.0
        estimate = estimate_completion(
            now, max_tokens=record.spec.params.max_tokens, completion_tokens=live.tokens, tokens_per_second=rate
        )
        return replace(record, estimated_completion=estimate)

    def _with_queue_estimate(self, record: JobRecord, route: RouteRequest) -> JobRecord:
        position = self._queue.position(record.job_id)
        if position is None:
            return record
        slots = sum(c.max_concurrency for c in self._candidates() if could_ever_serve(c, route))
        start = estimate_start(self._now(), position=position, slots=slots, mean_job_seconds=self._mean_job_seconds)
        return replace(record, queue_position=position, estimated_start=start)

    @staticmethod
    def _require_role(principal: Principal, role: Role) -> None:
        if principal.role is not role and principal.role is not Role.ADMIN:
            raise AitbcError(
                Reason.PERMISSION_DENIED, f"this call needs a {role.value} key; the key given is a {principal.role} key"
            )

    @staticmethod
    def _check_owner(principal: Principal, record: JobRecord) -> None:
        # Another client's job looks exactly like a missing one.
        if not principal.may_see(record.owner_id):
            raise job_not_found(record.job_id)


def _lease_lost(job_id: str, miner_id: str) -> AitbcError:
    return AitbcError(
        Reason.LEASE_LOST,
        f"miner {miner_id!r} no longer holds job {job_id!r} (canceled, reassigned or its lease expired)",
        field="job_id",
    )


def _not_cancelable(record: JobRecord) -> AitbcError:
    return AitbcError(
        Reason.JOB_NOT_CANCELABLE, f"job {record.job_id!r} is already {record.state.value}", field="job_id"
    )


# Field names as each miner API spells them: the stream's hello, the HTTP registration.
_HELLO_FIELDS = ("hello.miner_id", "hello.models", "hello.max_concurrency")
_REGISTRATION_FIELDS = ("miner_id", "capabilities", "max_concurrency")


def _validate_miner(info: MinerInfo, fields: tuple[str, str, str]) -> None:
    miner_id, models, max_concurrency = fields
    if not _MINER_ID.match(info.miner_id):
        raise invalid_argument(miner_id, f"{info.miner_id!r} is not a valid miner id")
    if not info.models:
        raise invalid_argument(models, "a miner must serve at least one model")
    if not 1 <= info.max_concurrency <= 1024:
        raise invalid_argument(max_concurrency, f"must be between 1 and 1024, got {info.max_concurrency}")
