"""What the network looks like from this coordinator: its own miners, and with replicas everyone's.

`ListMiners`, `ListModels`, the explorer's miners online and the readiness probe read this view, so that every
replica behind one address answers alike. Without replicas it is this process's miners and reputation book.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.live_job import LiveJob
from aitbc.coordinator.miners import MinerSession, ModelOffer, add_offer
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.replica_roster import RemoteMiner
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.catalog import Catalog, ModelEntry
from aitbc.domain.reputation import MinerStats
from aitbc.domain.routing import Candidate
from aitbc.domain.states import JobState
from aitbc.store.base import MinerRecord, Store

_ON_A_MINER = (JobState.ASSIGNED, JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class MinerListing:
    """One miner met so far; online when connected here (`session`) or to another live replica (`remote`)."""

    record: MinerRecord
    score: int
    session: MinerSession | None = None
    remote: RemoteMiner | None = None
    free_slots: int = 0  # of a remote miner, counted from the copies of unfinished jobs

    @property
    def online(self) -> bool:
        return self.session is not None or self.remote is not None


class NetworkView:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        catalog: Catalog,
        miners: MinerRegistry,
        reputation: ReputationBook,
        jobs: Callable[[], Iterable[LiveJob]],
        remote: Callable[[], list[RemoteMiner]] | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalog = catalog
        self._miners = miners
        self._reputation = reputation
        self._jobs = jobs
        self._remote = remote  # None without replicas

    def remote_miners(self) -> list[RemoteMiner]:
        """Miners connected to other live replicas only (a miner connected here too is this replica's)."""
        if self._remote is None:
            return []
        return [miner for miner in self._remote() if self._miners.get(miner.miner_id) is None]

    async def miners(self) -> list[MinerListing]:
        """Every miner met so far, by id. With replicas the statistics come from the store too, where each
        miner's replica writes them behind, so a miner met only elsewhere is listed with its record."""
        now = self._clock.now()
        records = {record.miner_id: record for record in self._reputation.records()}
        remote = self.remote_miners()
        if self._remote is not None:
            for stored in await self._store.miners():
                known = records.get(stored.miner_id)
                connected_here = self._miners.get(stored.miner_id) is not None
                if known is None or (not connected_here and stored.last_seen > known.last_seen):
                    records[stored.miner_id] = stored
        busy = self._busy() if remote else Counter[str]()
        listings = {
            miner_id: MinerListing(record, record.stats.score(now), session=self._miners.get(miner_id))
            for miner_id, record in records.items()
        }
        for miner in remote:
            record = records.get(miner.miner_id) or _first_sight(miner)
            free = _free_slots(miner, busy)
            listings[miner.miner_id] = MinerListing(
                replace(record, last_seen=max(record.last_seen, miner.connected_at)),
                record.stats.score(now),
                remote=miner,
                free_slots=free,
            )
        return [listings[miner_id] for miner_id in sorted(listings)]

    def models(self) -> list[tuple[ModelEntry, ModelOffer | None]]:
        """The catalog, each entry with what the network's connected miners offer of it now."""
        offers = self.offers()
        return [(entry, offers.get(entry.id)) for entry in self._catalog.entries()]

    def offers(self) -> dict[str, ModelOffer]:
        """What the network's miners offer of each model now: miners, free slots, since when."""
        offers = self._miners.offers()
        remote = self.remote_miners()
        if not remote:
            return offers
        busy = self._busy()
        merged = dict(offers)
        for miner in remote:
            free = _free_slots(miner, busy)
            add_offer(merged, miner.models, free, miner.connected_at)
        return merged

    def remote_candidates(self) -> list[tuple[Candidate, str]]:
        """Other replicas' miners as routing would see them, with their payout addresses: what a quote weighs
        beside this replica's. Reputation is this replica's view of them (from the store at start, refreshed
        whenever a miner connects here)."""
        busy = self._busy()
        return [
            (
                Candidate(
                    miner_id=miner.miner_id,
                    models=frozenset(miner.models),
                    tier=miner.tier,
                    max_vram_bytes=miner.max_vram_bytes,
                    free_slots=_free_slots(miner, busy),
                    max_concurrency=miner.max_concurrency,
                    draining=miner.draining,
                    reputation=self._reputation.score(miner.miner_id),
                    tokens_per_second=self._reputation.stats(miner.miner_id).tokens_per_second,
                    prices=miner.prices,
                ),
                miner.payout_address,
            )
            for miner in self.remote_miners()
        ]

    def online(self) -> tuple[int, list[str]]:
        """Miners online and the models they serve: the explorer's network totals."""
        return len(self._miners) + len(self.remote_miners()), list(self.offers())

    def ready_miners(self, local: int) -> int:
        """`local` miners taking jobs here, plus those taking jobs on other replicas."""
        return local + sum(not miner.draining for miner in self.remote_miners())

    def _busy(self) -> Counter[str]:
        """Slots in use per miner, by this replica's copies of the unfinished jobs."""
        return Counter(live.record.miner_id for live in self._jobs() if live.record.state in _ON_A_MINER)


def _free_slots(miner: RemoteMiner, busy: Counter[str]) -> int:
    """What a remote miner can take now: its slots less the jobs this replica's copies show on it."""
    return 0 if miner.draining else max(miner.max_concurrency - busy[miner.miner_id], 0)


def _first_sight(miner: RemoteMiner) -> MinerRecord:
    """A miner whose replica has not written its record yet (it does so within a second of the connect)."""
    return MinerRecord(
        miner_id=miner.miner_id,
        owner_id="",
        stats=MinerStats(),
        last_seen=miner.connected_at,
        models=miner.models,
        backend=miner.backend,
    )
