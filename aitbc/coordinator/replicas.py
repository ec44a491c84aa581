"""Several coordinator processes on one store, behaving as one coordinator (docs/scaling.md).

Every replica keeps a copy of every unfinished job (the `JobTable`), so any replica can answer, watch, queue
and route any job. What keeps the copies true:

* the store notifies each stored event as (job id, sequence number, writing replica); a replica reads what it
  lacks from the table, in order, into its copy (`JobTable.mirror`), and watchers there see it as if it were
  local. Notifications carry ids only, and a lost one costs nothing but time: a slow sweep compares every
  unfinished job's head in the store with the copy.
* every change is a compare-and-set on (job, attempt, state) whose event must take the next sequence number,
  so two replicas can never both claim, cancel or finish a job; the loser catches up and sees the winner's.
* a replica whose copy shows that a job left the attempt one of its own miners holds takes the miner off it.

Each replica renews a lease in the store. Jobs on a miner of a replica whose lease ran out (it was killed, or
cut off) are taken over: put back in the queue, excused, with their text so far, for any replica to route;
the dead replica's late writes are fenced by the attempt (the store refuses its output).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import Cancel, OutboxFull
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.replica_miners import decode, encode
from aitbc.coordinator.replica_roster import MinerRoster, RemoteMiner
from aitbc.domain.events import EventKind
from aitbc.domain.routing import Candidate
from aitbc.domain.states import JobState
from aitbc.store.base import Store, StoreUnavailableError
from aitbc.store.replicas import Listening, ReplicaStore

if TYPE_CHECKING:
    from aitbc.coordinator.client_jobs import ClientJobs

log = logging.getLogger(__name__)

_ON_A_MINER = frozenset({JobState.ASSIGNED, JobState.RUNNING})


class Replicas:
    def __init__(
        self,
        store: Store,
        shared: ReplicaStore,
        jobs: JobTable,
        miners: MinerRegistry,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        adopt_pending: Callable[[LiveJob], None],
        cancel_here: Callable[[LiveJob], Coroutine[Any, Any, object]],
        followed: Callable[[LiveJob], bool] = lambda live: live.watchers > 0,
        address: str = "",
        lease_seconds: float = 6.0,
        sweep_interval: float = 10.0,
    ) -> None:
        self._store = store
        self._shared = shared
        self.replica_id = shared.replica_id
        self._jobs = jobs
        self._miners = miners
        self._dispatcher = dispatcher
        self._clock = clock
        self._adopt_pending = adopt_pending
        self._cancel_here = cancel_here
        self._followed = followed
        self.address = address
        self.lease_seconds = lease_seconds
        self._sweep_interval = sweep_interval
        self._dirty: dict[str, None] = {}  # jobs whose copy may be behind, in the order heard of
        self._behind: set[str] = set()  # jobs whose copy lacks token chunks nobody here has asked for yet
        self._wake = asyncio.Event()
        self._listening: Listening | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[object]] = set()
        self._remote: list[Candidate] = []
        self._roster = MinerRoster(shared, self.replica_id)

    # Lifecycle

    async def listen(self) -> None:
        """Start hearing of other replicas' writes (before loading the jobs, so that nothing falls between)."""
        self._listening = await self._shared.listen(self._heard_job, self._heard_cancel, self._lost)

    async def orphans(self) -> set[str]:
        """Jobs on a miner whose replica has no lease: this replica takes them over at start."""
        return {job_id for job_id, _attempt, _replica in await self._shared.orphaned_jobs()}

    async def start(self) -> None:
        await self._renew()
        self._tasks = [
            asyncio.create_task(self._catch_up_loop(), name="aitbc-replica-copies"),
            asyncio.create_task(self._lease_loop(), name="aitbc-replica-lease"),
        ]

    async def close(self) -> None:
        """Stop, and give up the lease at once: jobs still on this replica's miners are anyone's to take."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listening is not None:
            await self._listening.close()
        with contextlib.suppress(StoreUnavailableError):
            await self._shared.leave_replica(self.replica_id)

    def remote_candidates(self) -> list[Candidate]:
        """Miner profiles of the other live replicas: for `check_route`, never for choosing a miner."""
        return self._remote

    def remote_miners(self) -> list[RemoteMiner]:
        """The other live replicas' connected miners, as of the last lease renewal: for listings."""
        return self._roster.remote()

    # Notifications

    def _heard_job(self, job_id: str, seq: int, kind: str, writer: str) -> None:
        if writer == self.replica_id:
            return
        live = self._jobs.get(job_id)
        if live is not None and live.next_seq > seq:
            return  # already caught up (a sweep or a lost race read it)
        if live is not None and kind == EventKind.TOKENS.value and not self._followed(live):
            # Nobody here follows its output: read it when someone does (`fresh`), or with the next state change.
            self._behind.add(job_id)
            return
        self._dirty[job_id] = None
        self._wake.set()

    async def fresh(self, live: LiveJob) -> None:
        """Read the token chunks of `live` this replica skipped while nobody here watched it."""
        if live.record.job_id in self._behind:
            self._behind.discard(live.record.job_id)
            await self._jobs.mirror(live)

    def _heard_cancel(self, job_id: str, attempt: int) -> None:
        live = self._jobs.get(job_id)
        if live is None or live.record.attempt != attempt or live.record.state not in _ON_A_MINER:
            return
        if self._miners.holder(job_id, live.record.miner_id, attempt) is None:
            return  # on another replica's miner: that replica acts on it
        self._spawn(self._cancel_here(live))

    def _lost(self) -> None:
        log.warning("lost the store connection that hears other replicas; reconnecting, then re-reading all jobs")
        self._listening = None
        self._wake.set()

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    # Catching up

    # Leases are measured on the store's clock and sweeps are about other processes, so these loops run on real
    # time, not on the coordinator's `Clock` (which tests may hold still).

    async def _catch_up_loop(self) -> None:
        next_sweep = time.monotonic() + self._sweep_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(next_sweep - time.monotonic(), 0.0)):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self._listening is None:
                    await self.listen()
                    next_sweep = 0.0  # whatever was said while deaf is re-read
                if time.monotonic() >= next_sweep:
                    await self.sweep()
                    next_sweep = time.monotonic() + self._sweep_interval
                while self._dirty:
                    # Taken off before reading: a notification that arrives meanwhile marks it again.
                    job_id = next(iter(self._dirty))
                    del self._dirty[job_id]
                    try:
                        await self.catch_up(job_id)
                    except BaseException:
                        self._dirty[job_id] = None
                        raise
            except StoreUnavailableError as error:
                log.warning("cannot read other replicas' changes now (%s); retrying", error)
                await asyncio.sleep(min(1.0, self.lease_seconds / 3))
                self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catching up with other replicas failed; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def sweep(self) -> None:
        """Compare every unfinished job's head in the store with this replica's copy; catch up where they differ."""
        heads = await self._shared.job_heads()
        for job_id, head in heads.items():
            live = self._jobs.get(job_id)
            if job_id in self._jobs.creating:
                continue
            if live is None or live.next_seq <= head.last_seq or live.record.state is not head.state:
                self._dirty[job_id] = None
        for live in self._jobs:
            if live.record.job_id not in heads and live.record.job_id not in self._jobs.creating:
                self._dirty[live.record.job_id] = None  # finished elsewhere
        # Jobs this replica finished itself leave no notification behind: forget their skipped chunks here.
        self._behind = {job_id for job_id in self._behind if job_id in self._jobs}
        if self._dirty:
            self._wake.set()

    async def catch_up(self, job_id: str) -> None:
        """Bring this replica's copy of `job_id` up to the store, and act on what changed."""
        if job_id in self._jobs.creating:
            return
        live = self._jobs.get(job_id)
        if live is None:
            await self._adopt(job_id)
            return
        self._behind.discard(job_id)
        changed = await self._jobs.mirror(live)
        if changed is None:
            return  # nothing another replica stored: this one's own writes are already acted on
        before, record = changed
        left = (record.state, record.attempt, record.miner_id) != (before.state, before.attempt, before.miner_id)
        if left and before.state in _ON_A_MINER:
            self._take_off_local_miner(job_id, before.miner_id, before.attempt)
        self._requeue_locally(live)

    async def _adopt(self, job_id: str) -> None:
        record = await self._store.get_job(job_id)
        if record is None or record.state.is_terminal or job_id in self._jobs:
            return
        events = await self._store.events(job_id)
        if job_id in self._jobs or job_id in self._jobs.creating:
            return
        live = self._jobs.adopt(record, events, self._dispatcher.route_request(record.spec))
        self._requeue_locally(live)

    def _requeue_locally(self, live: LiveJob) -> None:
        """Keep the local queue in step with the copy: a pending job is queued here too, others are not."""
        record = live.record
        queued = record.job_id in self._dispatcher.queue
        if record.state is JobState.PENDING and not queued:
            if record.attempt:
                self._dispatcher.enqueue(record, front=True)  # requeued elsewhere: it goes first, as there
            else:
                self._adopt_pending(live)
        elif record.state is not JobState.PENDING and queued:
            self._dispatcher.queue.remove(record.job_id)

    def _take_off_local_miner(self, job_id: str, miner_id: str, attempt: int) -> None:
        held = self._miners.holder(job_id, miner_id, attempt)
        if held is None:
            return
        session, assignment = held
        log.info("job %s left attempt %d elsewhere; stopping it on miner %s", job_id, attempt, miner_id)
        if not session.polls:
            with contextlib.suppress(OutboxFull):
                session.send(Cancel(job_id, attempt))
        self._miners.release(session, assignment)
        self._dispatcher.wake()

    # The lease, and taking over

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self._renew()
                await self.take_over()
            except StoreUnavailableError as error:
                log.warning("cannot renew this replica's lease (%s)", error)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing the lease or taking over jobs failed")

    async def _renew(self) -> None:
        mine = self._miners.candidates(pushed_only=True)
        kept = await self._shared.renew_replica(
            self.replica_id, address=self.address, lease_seconds=self.lease_seconds, miners=encode(mine)
        )
        if not kept and self._tasks:
            log.error("replica %s's lease had run out; its jobs may have been taken over", self.replica_id)
        await self._roster.publish(self._miners, anew=not kept)
        others = [replica for replica in await self._shared.replicas() if replica.replica_id != self.replica_id]
        live = [replica for replica in others if replica.live]
        self._remote = [candidate for replica in live for candidate in decode(replica.replica_id, replica.miners)]
        await self._roster.refresh(live)

    async def take_over(self) -> int:
        """Requeue the jobs of replicas whose lease ran out; how many this replica took."""
        taken = 0
        for job_id, attempt, replica_id in await self._shared.orphaned_jobs():
            if replica_id == self.replica_id:
                continue  # this replica's own: its lease is fresh (just renewed), so the query raced a renewal
            await self.catch_up(job_id)
            live = self._jobs.get(job_id)
            if live is None or live.record.attempt != attempt or live.record.state not in _ON_A_MINER:
                continue
            gone = f"coordinator replica {replica_id or '(unknown)'} stopped"
            await self._dispatcher.requeue(live, attempt, gone, excused=True)
            if live.record.state is JobState.PENDING and live.record.attempt == attempt:
                taken += 1
        if taken:
            log.warning("took over %d job(s) from replicas whose lease ran out", taken)
        await self._shared.forget_replicas(self.lease_seconds * 10)
        return taken

    async def stop_elsewhere(self, live: LiveJob, wait_seconds: float) -> bool:
        """Ask the replica whose miner runs `live` to cancel it; whether the job left that attempt in time."""
        record = live.record
        await self._shared.request_cancel(record.job_id, record.attempt)
        deadline = self._clock.monotonic() + wait_seconds
        following = live.follow(live.next_seq)
        try:
            while (left := deadline - self._clock.monotonic()) > 0:
                event = await self._clock.wait_for(anext(following), left)
                if event.kind is EventKind.STATE:
                    return True
        except (TimeoutError, StopAsyncIteration):
            pass
        finally:
            await following.aclose()
        return False


def replicas_for(
    store: Store,
    jobs: JobTable,
    miners: MinerRegistry,
    dispatcher: Dispatcher,
    clients: ClientJobs,
    clock: Clock,
    *,
    lease_seconds: float,
    address: str,
    followed: Callable[[LiveJob], bool],
) -> Replicas | None:
    """The replica part for a store several coordinators can share (PostgreSQL), wired to `clients`; else None."""
    if not isinstance(store, ReplicaStore):
        return None
    replicas = Replicas(
        store,
        store,
        jobs,
        miners,
        dispatcher,
        clock,
        adopt_pending=clients.adopt_pending,
        cancel_here=clients.cancel_live,
        followed=followed,
        address=address,
        lease_seconds=lease_seconds,
    )
    clients.replicas = replicas
    return replicas
