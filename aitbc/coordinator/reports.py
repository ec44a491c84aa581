"""What miners report about their jobs, checked against their leases.

Stream miners and polling miners report through the same methods. Each
report names (job_id, attempt): a miner that no longer holds that lease
(the job was canceled, reassigned or its lease expired) is ignored, so a
late or duplicated report can never change a job twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import Assignment, Cancel, Drain, MinerSession, OutboxFull
from aitbc.coordinator.progress import Progress
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.coordinator.store_health import StoreUnavailable
from aitbc.domain.canonical import text_hash
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.jobs import JobRecord
from aitbc.domain.receipts import MinerAttestation
from aitbc.domain.signing import verify_b64
from aitbc.domain.states import JobState
from aitbc.store.base import JobChanges, JobMovedOnError

log = logging.getLogger(__name__)


class MinerReports:
    def __init__(
        self,
        jobs: JobTable,
        miners: MinerRegistry,
        dispatcher: Dispatcher,
        progress: Progress,
        reputation: ReputationBook,
        clock: Clock,
        *,
        cancel_ack_timeout: float,
    ) -> None:
        self._jobs = jobs
        self._miners = miners
        self._dispatcher = dispatcher
        self._progress = progress
        self._reputation = reputation
        self._clock = clock
        self.cancel_ack_timeout = cancel_ack_timeout
        self._detaching: set[asyncio.Task[None]] = set()
        # Whether a miner that drops its jobs is to blame; not while the coordinator itself shuts down.
        self.penalize_departures = True

    async def started(self, session: MinerSession, job_id: str, attempt: int, prompt_tokens: int) -> None:
        _check_count("prompt_tokens", prompt_tokens)
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return
        try:
            await self.mark_running(*found, prompt_tokens=prompt_tokens)
        except StoreUnavailable:
            self._abandon(session, found[1])

    async def tokens(self, session: MinerSession, job_id: str, attempt: int, text: str, token_count: int) -> None:
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return
        try:
            await self.mark_running(*found)
            await self._append(*found, text, token_count)
        except (StoreUnavailable, JobMovedOnError):
            # JobMovedOnError: another coordinator took the job over (this one's lease had lapsed); the
            # attempt is over here, as for a failing store, but the job is already back in others' hands.
            self._abandon(session, found[1])

    def _abandon(self, session: MinerSession, assignment: Assignment) -> None:
        """A report the store could not take ends the attempt: the miner stops, the job is repaired later.

        The miner's stream stays up; the job is stranded (see JobTable) and
        requeued, without spending an attempt, once the store recovers.
        """
        with contextlib.suppress(OutboxFull):
            session.send(Cancel(assignment.job_id, assignment.attempt))
        self._free(session, assignment)

    async def done(
        self,
        session: MinerSession,
        job_id: str,
        attempt: int,
        *,
        output: str,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: str,
        signature: str = "",
    ) -> JobRecord | None:
        """Complete the job; None when the miner no longer holds it (or the store failed to take it)."""
        _check_count("prompt_tokens", prompt_tokens)
        _check_count("completion_tokens", completion_tokens)
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return None
        try:
            return await self._complete(
                session,
                *found,
                output=output,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=finish_reason,
                signature=signature,
            )
        except StoreUnavailable:
            self._abandon(session, found[1])
            return None

    async def _complete(
        self,
        session: MinerSession,
        live: LiveJob,
        assignment: Assignment,
        *,
        output: str,
        prompt_tokens: int,
        completion_tokens: int,
        finish_reason: str,
        signature: str,
    ) -> JobRecord | None:
        await self.mark_running(live, assignment, prompt_tokens=prompt_tokens)
        streamed = assignment.streamed
        if len(output) > len(streamed) and output.startswith(streamed):
            # A miner may report text it never streamed (or stream nothing at
            # all); watchers get it as one last chunk.
            unseen_tokens = max(completion_tokens - assignment.tokens, 0)
            await self._append(live, assignment, output[len(streamed) :], unseen_tokens)
        changes = JobChanges(
            result=live.text,
            completion_tokens=assignment.resume_tokens + max(completion_tokens, assignment.tokens),
            prompt_tokens=live.record.prompt_tokens or prompt_tokens,
            completed_at=self._clock.now(),
            finish_reason=finish_reason,
        )
        self._check_signature(session, assignment, changes, signature)
        completed = await self._jobs.transition(live, JobState.COMPLETED, changes, expected_attempt=assignment.attempt)
        if completed is not None:
            self._record_completion(session, assignment)
        # Only now: a free slot (or shutdown's wait) must not overtake the stored outcome.
        self._free(session, assignment)
        return completed

    async def failed(
        self, session: MinerSession, job_id: str, attempt: int, *, error: str, retryable: bool
    ) -> JobRecord | None:
        """Fail the attempt (requeue it when `retryable`); None when the miner no longer holds the job."""
        found = self._fenced(session, job_id, attempt)
        if found is None:
            return None
        live, assignment = found
        reason = f"miner {session.miner_id}: {error or 'unspecified error'}"
        try:
            if retryable and session.draining:
                # A miner shutting down hands its jobs back: neither it nor the job is at fault.
                await self._dispatcher.requeue(live, attempt, reason, excused=True)
            elif retryable:
                # The job may succeed elsewhere, so this miner is the one that failed it.
                self._reputation.failed(session.miner_id)
                await self._dispatcher.requeue(live, attempt, reason)
            else:
                await self._jobs.finish(live, JobState.FAILED, reason, expected_attempt=attempt)
        except StoreUnavailable:
            self._abandon(session, assignment)
            return None
        self._free(session, assignment)
        return live.record

    def cancel_acknowledged(self, session: MinerSession, job_id: str, attempt: int, completion_tokens: int) -> None:
        found = self._fenced(session, job_id, attempt)
        if found is not None:
            found[1].settle_cancel(completion_tokens)

    async def mark_running(self, live: LiveJob, assignment: Assignment, *, prompt_tokens: int = 0) -> None:
        if not assignment.start():
            return
        record = live.record
        changes = JobChanges(
            started_at=record.started_at or self._clock.now(),
            prompt_tokens=record.prompt_tokens or prompt_tokens or None,
        )
        await self._jobs.transition(live, JobState.RUNNING, changes, expected_attempt=assignment.attempt)

    # Stopping a job on its miner, and miners that leave

    async def stop_on_miner(self, record: JobRecord) -> str:
        """Ask the job's miner to stop and wait until every token it made has arrived.

        Returns "" once the miner acknowledged (or nothing was on a miner), else why the job is canceled without
        an acknowledgement: the reason the job records.
        """
        held = self._miners.holder(record.job_id, record.miner_id, record.attempt)
        if held is None:
            return ""
        session, assignment = held
        if session.polls:
            # Nothing can reach a polling miner: it learns from LEASE_LOST when it reports.
            self._miners.release(session, assignment)
            return ""
        acknowledged = assignment.request_cancel()
        unacknowledged = ""
        try:
            session.send(Cancel(record.job_id, record.attempt))
            await self._clock.wait_for(asyncio.shield(acknowledged), self.cancel_ack_timeout)
        except (OutboxFull, TimeoutError):
            log.warning("miner %s did not acknowledge cancel of %s", session.miner_id, record.job_id)
            self._reputation.caused_cancellation(session.miner_id)
            unacknowledged = (
                f"miner {session.miner_id} did not acknowledge the cancel within {self.cancel_ack_timeout:g}s"
            )
        self._free(session, assignment)
        return unacknowledged

    def miner_gone(self, session: MinerSession, reason: str, *, penalize: bool = True) -> asyncio.Task[None]:
        """Detach a miner whose stream ended, in a task of its own.

        The stream's handler may be cancelled at any moment; requeueing the
        miner's jobs must finish regardless, and shutdown waits for it.
        """
        detach = self.detach(session, reason, penalize=penalize and self.penalize_departures)
        task = asyncio.create_task(detach, name=f"detach-{session.miner_id}")
        self._detaching.add(task)
        task.add_done_callback(self._detaching.discard)
        return task

    def lease_expired(self, session: MinerSession, reason: str) -> None:
        # Expiry already counts against the miner's reputation, as a lease expiry.
        self.miner_gone(session, reason, penalize=False)

    async def detach(
        self, session: MinerSession, reason: str, *, penalize: bool = False, excused: bool = False
    ) -> None:
        """Forget a miner; each job it had goes back to pending, keeping the text so far.

        With `penalize`, each job it dropped counts as a failure against its reputation.
        """
        # A miner that drained, or one the coordinator itself sends away, spends no attempt of its jobs.
        excused = excused or session.draining
        for assignment in self._miners.remove(session, reason):
            if penalize:
                self._reputation.failed(session.miner_id)
            live = self._jobs.get(assignment.job_id)
            if live is not None:
                lost = f"miner {session.miner_id} went away: {reason}"
                # A failing store strands the job; it is requeued once the store recovers.
                with contextlib.suppress(StoreUnavailable):
                    await self._dispatcher.requeue(live, assignment.attempt, lost, excused=excused)
        self._dispatcher.wake()

    async def wait_detached(self) -> None:
        await asyncio.gather(*self._detaching, return_exceptions=True)

    async def drain_all(self, grace: float) -> None:
        """At shutdown: turn newcomers away, ask every miner to finish its jobs for up to `grace` seconds and
        leave, then detach (excused) those still here; returns once every miner is detached."""
        self._miners.refuse_newcomers()
        self.penalize_departures = False
        for session in self._miners:
            session.set_draining(True)
            try:
                session.send(Drain("the coordinator is shutting down"))
            except OutboxFull:
                log.warning("miner %s cannot take the drain notice; its jobs will be requeued", session.miner_id)
        deadline = self._clock.monotonic() + grace
        while len(self._miners) and (left := deadline - self._clock.monotonic()) > 0:
            await self._miners.wait_changed(left)
        for session in self._miners:
            await self.detach(session, "the coordinator shut down", excused=True)
        await self.wait_detached()

    # Internals

    def _check_signature(
        self, session: MinerSession, assignment: Assignment, changes: JobChanges, signature: str
    ) -> None:
        """Keep the miner's signature for the receipt if it covers exactly what the job will be recorded with.

        A signature that does not verify is not trusted: the receipt then says
        the miner did not sign (it is never silently taken as signed).
        """
        key = session.info.public_key
        if not (key and signature):
            return
        attestation = MinerAttestation(
            job_id=assignment.job_id,
            attempt=assignment.attempt,
            output_hash=text_hash(changes.result or ""),
            prompt_tokens=changes.prompt_tokens or 0,
            completion_tokens=changes.completion_tokens or 0,
        )
        if verify_b64(key, attestation.canonical_bytes(), signature):
            assignment.signature = signature
        else:
            log.warning(
                "miner %s's signature does not cover job %s attempt %d as recorded; its receipt will say unsigned",
                session.miner_id,
                assignment.job_id,
                assignment.attempt,
            )

    def _fenced(self, session: MinerSession, job_id: str, attempt: int) -> tuple[LiveJob, Assignment] | None:
        """The job and lease a miner message is about, or None if it lost that lease."""
        assignment = session.holding(job_id, attempt)
        live = self._jobs.get(job_id)
        if assignment is None or live is None or live.record.attempt != attempt:
            log.debug("ignoring %s's report on %s attempt %d: not its lease", session.miner_id, job_id, attempt)
            return None
        return live, assignment

    async def _append(self, live: LiveJob, assignment: Assignment, text: str, token_count: int) -> None:
        if text or token_count:
            # Shielded as one: the lease's own count must not fall behind the stored events.
            await self._jobs.shielded(self._append_now(live, assignment, text, token_count))

    async def _append_now(self, live: LiveJob, assignment: Assignment, text: str, token_count: int) -> None:
        await self._jobs.append_tokens(live, assignment.attempt, text, token_count)
        assignment.add_tokens(text, token_count, self._clock.now())

    def _free(self, session: MinerSession, assignment: Assignment) -> None:
        self._miners.release(session, assignment)
        self._dispatcher.wake()

    def _record_completion(self, session: MinerSession, assignment: Assignment) -> None:
        now = self._clock.now()
        first = assignment.first_token_at
        generating = (now - first).total_seconds() if first else 0.0
        self._reputation.completed(
            session.miner_id,
            tokens_per_second=assignment.tokens / generating if generating > 0 else 0.0,
            ttft_seconds=(first - assignment.assigned_at).total_seconds() if first else 0.0,
        )
        self._progress.job_finished((now - assignment.assigned_at).total_seconds())


# Far above any real job, far below what would overflow a stored count or a charge.
MAX_REPORTED_TOKENS = 10_000_000


def _check_count(field: str, value: int) -> None:
    if not 0 <= value <= MAX_REPORTED_TOKENS:
        raise AitbcError(
            Reason.MINER_PROTOCOL_ERROR,
            f"{field} must be between 0 and {MAX_REPORTED_TOKENS}, got {value}",
            field=field,
        )
