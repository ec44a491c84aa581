"""The coordinator: a thin facade that wires its parts and runs their lifecycle.

Each part owns one concern (see docs/design.md):

* `JobTable` — unfinished jobs in memory and the one way their state changes;
* `MinerRegistry` — connected miners, their sessions and leases;
* `Dispatcher` — the fair queue and handing jobs to miners;
* `MinerReports` — lease-checked reports from miners, and miners that leave;
* `PollingMiners` — the seed's HTTP miner API on top of the registry and reports;
* `Progress` — queue positions, estimates and retry delays;
* `ClientJobs` — submit, get, list, cancel and watch;
* `AccountFeed` — every job of an account as it changes (`watch_account`).
* `Settlement` — holds at submission, settlement at the end, accounts.
* `Results` — result packages, checksums, share links, delete; `Retention` — plans and the sweeper.
* `JobHistory` — filters, exports and stats over past jobs.
* `Webhooks`, `DeliveryWorker` — webhooks, and sending their deliveries from the store's outbox.
* `Replicas` — on a store several coordinators share: copies of the others' jobs, leases, take-over.
* `NetworkView` — the miners and model offers listings show (`network`): every replica's, with replicas.

Servicers call the methods here, or the read-only parts it exposes (`explorer`, `history`, `network`,
`webhooks`); none of them holds logic of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import replace
from datetime import timedelta

from aitbc.coordinator.access import require_role
from aitbc.coordinator.account_feed import AccountFeed, FeedUpdate
from aitbc.coordinator.blocks import BlockSealer
from aitbc.coordinator.client_jobs import ClientJobs, Quote
from aitbc.coordinator.clock import Clock, SystemClock
from aitbc.coordinator.config import CoordinatorConfig as CoordinatorConfig
from aitbc.coordinator.config import ShutdownReport as ShutdownReport
from aitbc.coordinator.dispatcher import Dispatcher
from aitbc.coordinator.explorer import Explorer
from aitbc.coordinator.history import HistoryQuery, JobHistory
from aitbc.coordinator.job_table import JobTable
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import MinerInfo, MinerSession, Welcome
from aitbc.coordinator.network_view import NetworkView
from aitbc.coordinator.observe import CoordinatorLoad, CoordinatorObserver, JobLog, load_of
from aitbc.coordinator.polling import PollingMiners
from aitbc.coordinator.progress import Progress
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.reload import reload_unfinished
from aitbc.coordinator.repair import StrandedJobs
from aitbc.coordinator.replicas import replicas_for
from aitbc.coordinator.reports import MinerReports
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.coordinator.results import Results
from aitbc.coordinator.retention import Retention
from aitbc.coordinator.settlement import Settlement
from aitbc.coordinator.store_health import StoreHealth
from aitbc.coordinator.webhooks import DeliveryWorker, Webhooks
from aitbc.domain.blocks import ReceiptProof
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.events import JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec
from aitbc.domain.keys import Principal, Role
from aitbc.domain.receipts import Receipt
from aitbc.domain.signing import generate_seed
from aitbc.domain.states import JobState
from aitbc.store.base import AccountRecord, JobPage, Store

log = logging.getLogger(__name__)

_ON_A_MINER = frozenset({JobState.ASSIGNED, JobState.RUNNING})


class Coordinator:
    def __init__(
        self,
        store: Store,
        config: CoordinatorConfig | None = None,
        *,
        clock: Clock | None = None,
        observer: CoordinatorObserver | None = None,
    ) -> None:
        config = config or CoordinatorConfig()
        self._observer = observer or CoordinatorObserver()
        self._job_log = JobLog()
        self._config = config
        self._store = store
        self._catalog = config.catalog
        self.clock: Clock = clock or SystemClock()
        self._accepting = True
        self._reputation = ReputationBook(store, self.clock)
        self._health = StoreHealth(store, self.clock)
        self._settlement = Settlement(
            store,
            self.clock,
            fee_bps=config.fee_bps,
            miner_owner=self._reputation.owner_of,
            coordinator_seed=config.signing_key or generate_seed(),
            # Late-bound: the registry is built below, and asked only when a job settles.
            miner_attestation=lambda job_id, miner_id, attempt: self._miners.attestation(job_id, miner_id, attempt),
            on_entry=lambda: self._blocks.entry_written(),
        )
        self._feed = AccountFeed(self.clock)
        self.history = JobHistory(store, config.catalog, self.clock)
        self.webhooks = Webhooks(store, self.clock, allow_private=config.allow_private_webhooks)
        self._deliveries = DeliveryWorker(store, self.clock, self.webhooks)
        self._jobs = JobTable(
            store,
            self.clock,
            self._health,
            on_event=self._on_job_event,
            settler=self._settlement.closing,
            on_mirrored=self._feed.publish,
        )
        # Late-bound: the registry is built below.
        self.explorer = Explorer(store, self.clock, lambda: self.network.online())
        self._blocks = BlockSealer(
            store,
            self.clock,
            seed=self._settlement.seed,
            interval=config.block_interval,
            max_transactions=config.block_max_transactions,
        )
        self._miners = MinerRegistry(
            config.catalog,
            self._reputation,
            self.clock,
            lease_timeout=config.lease_timeout,
            on_lease_expired=self._on_lease_expired,
        )
        self._dispatcher = Dispatcher(
            self._jobs,
            self._miners,
            config.catalog,
            self.clock,
            self._health,
            max_attempts=config.max_attempts,
            max_queued_per_client=config.max_queued_per_client,
            max_queued_total=config.max_queued_total,
            replica_id=getattr(store, "replica_id", ""),
        )
        self._progress = Progress(self._jobs, self._dispatcher, self._miners, self.clock)
        self._reports = MinerReports(
            self._jobs,
            self._miners,
            self._dispatcher,
            self._progress,
            self._reputation,
            self.clock,
            cancel_ack_timeout=config.cancel_ack_timeout,
        )
        self._polling = PollingMiners(store, self._jobs, self._miners, self._dispatcher, self._reports)
        self._clients = ClientJobs(
            store,
            config.catalog,
            self._jobs,
            self._miners,
            self._dispatcher,
            self._reports,
            self._progress,
            self._health,
            self.clock,
            self._settlement,
        )
        self._results = Results(store, self.clock, self._jobs, self._clients, public_url=config.public_url)
        self._retention = Retention(
            store, self.clock, erase=self._results.erase, interval=config.retention_sweep_interval
        )
        self._replicas = replicas_for(
            store,
            self._jobs,
            self._miners,
            self._dispatcher,
            self._clients,
            self.clock,
            lease_seconds=config.replica_lease,
            address=config.advertise_address,
            followed=lambda live: live.watchers > 0 or self._feed.follows(live.record.owner_id),
        )
        self.network = NetworkView(
            store,
            self.clock,
            config.catalog,
            self._miners,
            self._reputation,
            lambda: self._jobs,
            self._replicas.remote_miners if self._replicas is not None else None,
        )
        self._health.on_recovered = StrandedJobs(self._jobs, self._miners, self._dispatcher, self._clients).repair

    def _on_job_event(self, live: LiveJob, event: JobEvent) -> None:
        self._feed.publish(live, event)
        self._job_log.job_event(live.record, event)
        self._observer.job_event(live.record, event)
        self._deliveries.job_event(event)
        if event.is_final:
            self._results.finished(event.job_id)

    def _on_lease_expired(self, session: MinerSession, reason: str) -> None:
        self._observer.lease_expired(session.miner_id)
        self._reports.lease_expired(session, reason)

    def load(self) -> CoordinatorLoad:
        """What is queued, running and online now (for metrics, read at scrape time)."""
        return load_of(self._jobs, self._miners)

    def ready_miners(self) -> int:
        """Connected miners that take jobs (not draining): what readiness checks ask for, without the jobs."""
        return self.network.ready_miners(load_of((), self._miners).ready_miners)

    # Lifecycle

    async def start(self) -> None:
        """Load unfinished jobs (`reload_unfinished`) and start dispatching.

        A store that cannot be written fails the start with `StoreUnavailableError`. With replicas, this
        process first listens for the others' writes, so that none falls between loading and listening.
        """
        await self._store.probe()
        await self._reputation.load()
        takeable: set[str] | None = None
        if self._replicas is not None:
            await self._replicas.listen()
            takeable = await self._replicas.orphans()
        await reload_unfinished(
            self._store, self._catalog, self._jobs, self._dispatcher, self._clients, takeable=takeable
        )
        if self._replicas is not None:
            await self._replicas.start()
        self._dispatcher.start()
        await self._blocks.start()
        await self._retention.start()
        self._deliveries.start()

    async def shutdown(self, grace: float) -> ShutdownReport:
        """Refuse new jobs, let miners finish theirs for up to `grace` seconds, requeue the rest.

        Drained miners close their streams once their jobs are done; waiting for
        that (rather than for their slots to empty) lets the final messages of
        every job be processed before the server stops reading. Returns what is
        left for the next start (every unfinished job is stored as pending).
        """
        on_miners = {live.record.job_id for live in self._jobs if live.record.state in _ON_A_MINER}
        self._accepting = False
        await self._reports.drain_all(grace)
        await self._health.close()
        await self._reputation.flush()
        self._clients.expiries.close()
        await self._dispatcher.close()
        await self._retention.close()
        await self._jobs.writes_done()
        if self._replicas is not None:
            await self._replicas.close()
        await self._results.recorded()
        await self._blocks.close()
        await self._deliveries.close()
        unfinished = [live.record.job_id for live in self._jobs if not live.record.state.is_terminal]
        requeued = sum(1 for job_id in unfinished if job_id in on_miners)
        return ShutdownReport(requeued=requeued, queued=len(unfinished) - requeued)

    async def store_recovered(self) -> None:
        """Return once the store takes writes (at once if it never failed) and stranded jobs are repaired."""
        await self._health.wait_recovered()

    @property
    def heartbeat_interval(self) -> timedelta:
        return timedelta(seconds=self._config.heartbeat_interval)

    @property
    def default_model(self) -> str:
        """The model a submit that names none runs on."""
        return self._config.default_model

    @property
    def reports(self) -> MinerReports:
        """What miners report on their jobs, checked against their leases."""
        return self._reports

    @property
    def polling(self) -> PollingMiners:
        """The seed's HTTP miner API."""
        return self._polling

    # Client API

    async def submit(self, principal: Principal, spec: JobSpec, *, queue_if_unavailable: bool = False) -> JobRecord:
        require_role(principal, Role.CLIENT)
        if not self._accepting:
            raise AitbcError(Reason.SHUTTING_DOWN, "the coordinator is shutting down; retry on another one")
        return await self._clients.submit(principal, spec, queue_if_unavailable=queue_if_unavailable)

    def quote(self, principal: Principal, spec: JobSpec, *, payout_address_required: bool = False) -> Quote:
        """Where a job would run now, and what it would cost there; read-only, any valid key may ask."""
        return self._clients.quote(
            principal,
            spec,
            payout_address_required=payout_address_required,
            elsewhere=self.network.remote_candidates(),
        )

    async def get(self, principal: Principal, job_id: str) -> JobRecord:
        return self._retention.annotate(await self._clients.get(principal, job_id))

    async def list_jobs(
        self,
        principal: Principal,
        *,
        state: JobState | None,
        limit: int,
        page_token: str,
        query: HistoryQuery | None = None,
    ) -> JobPage:
        """A page of jobs; `query`'s filters (its state is replaced by `state`)."""
        job_filter = self.history.filter_for(principal, replace(query or HistoryQuery(), state=state))
        page = await self._clients.list(principal, job_filter, limit=limit, page_token=page_token)
        return JobPage([self._retention.annotate(job) for job in page.jobs], page.next_page_token)

    async def cancel(self, principal: Principal, job_id: str) -> JobRecord:
        return await self._clients.cancel(principal, job_id)

    def watch(self, principal: Principal, job_id: str, from_seq: int = 0) -> AsyncIterator[JobEvent]:
        return self._clients.watch(principal, job_id, from_seq)

    def watch_account(self, principal: Principal) -> AsyncGenerator[FeedUpdate, None]:
        """`FeedStarted`, then every change to the caller's jobs (an admin's: everyone's) until it stops."""
        require_role(principal, Role.CLIENT)
        return self._feed.subscribe(None if principal.role is Role.ADMIN else principal.owner_id)

    # Results (docs/results.md)

    @property
    def results(self) -> Results:
        """Downloads, checksums, deletes and share links of finished jobs."""
        return self._results

    @property
    def retention(self) -> Retention:
        """Plans (`set_plan`), each result's expiry, and the sweeper."""
        return self._retention

    # Accounts

    async def account(self, principal: Principal, account_id: str = "") -> AccountRecord:
        return await self._settlement.account(principal, account_id)

    async def credit(self, principal: Principal, account_id: str, amount: int, credit_id: str = "") -> AccountRecord:
        return await self._settlement.credit(principal, account_id, amount, credit_id)

    @property
    def public_key(self) -> bytes:
        """The coordinator's Ed25519 public key: what receipts and blocks are verified with."""
        return self._settlement.public_key

    async def receipt(self, receipt_id: str) -> tuple[Receipt, ReceiptProof | None]:
        return await self._settlement.receipt(receipt_id)

    async def receipts(self, principal: Principal, *, client: str, limit: int) -> list[Receipt]:
        return await self._settlement.receipts(principal, client, limit)

    # Stream miners

    async def attach_miner(self, principal: Principal, info: MinerInfo) -> MinerSession:
        require_role(principal, Role.MINER)
        models = self._miners.check(info)
        previous = self._miners.previous(principal, info.miner_id)
        if previous is not None:
            await self._reports.detach(previous, "a newer connection of the same miner took over")
        session = self._miners.admit(principal, info, models, polls=False)
        session.send(Welcome(info.miner_id, self.heartbeat_interval))
        self._observer.miner_connected(info.miner_id)
        log.info(
            "miner %s connected: models=%s slots=%d backend=%s version=%s",
            info.miner_id,
            sorted(session.models),
            info.max_concurrency,
            info.backend or "?",
            info.version or "?",
        )
        self._dispatcher.wake()
        if self._replicas is not None:
            # It may come from another replica (a failover): the statistics that replica wrote. After admitting
            # it, so that no wait comes between a miner's hello and its taking jobs.
            await self._reputation.refresh(info.miner_id)
        return session

    async def wait_for_miner(self, miner_id: str, seconds: float) -> bool:
        """Whether `miner_id` is connected within `seconds` (`aitbc up` waits for its own miner)."""
        return await self._miners.wait_for(miner_id, seconds)

    def touch(self, session: MinerSession) -> None:
        """Any message from a miner is a sign of life that extends its leases."""
        self._miners.renew(session)

    def heartbeat(self, session: MinerSession, *, draining: bool) -> None:
        """The lease was renewed on receipt (`touch`); slots are counted here, so only `draining` matters."""
        if session.set_draining(draining or not self._accepting):
            self._dispatcher.wake()

    def miner_gone(self, session: MinerSession, reason: str) -> asyncio.Task[None]:
        """Requeue the jobs of a miner whose stream ended, in a task that outlives the stream's handler."""
        return self._reports.miner_gone(session, reason)
