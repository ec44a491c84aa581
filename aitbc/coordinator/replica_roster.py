"""Each replica's roster of connected miners, one row per miner: what listings show network-wide.

Routing needs only the folded capability profiles (`replica_miners`); a person asking `ListMiners`, the
explorer or a readiness probe on any replica expects every miner of the network, with its GPUs and whether it
drains. A replica writes its roster rows when they change (compared at each lease renewal, so a storm of
reconnects costs one write per renewal), and rewrites all of them now and then, which repairs a row another
replica overwrote for a miner that had just moved. The others read a replica's rows again only when its
`roster_version` moved. Free slots are not in the row: they change with every job, and every replica can
count them from its copies of the unfinished jobs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aitbc.coordinator.miners import GpuSpec, MinerSession
from aitbc.domain.canonical import format_time
from aitbc.domain.catalog import gpu_tier
from aitbc.domain.routing import Price
from aitbc.store.replicas import ReplicaRecord, ReplicaStore

log = logging.getLogger(__name__)

# Lease renewals between two full rewrites of this replica's rows (about 30 s at the default 6 s lease).
FULL_REWRITE_EVERY = 15


@dataclass(frozen=True, slots=True)
class RemoteMiner:
    """A miner connected to another live replica, as that replica's roster row shows it."""

    miner_id: str
    replica_id: str
    connection: str  # "stream" or "polling"
    models: tuple[str, ...]
    gpus: tuple[GpuSpec, ...]
    max_concurrency: int
    draining: bool
    backend: str
    connected_at: datetime
    max_vram_bytes: int = 0
    prices: Mapping[str, Price] = field(default_factory=dict)  # model id -> the miner's own price
    payout_address: str = ""

    @property
    def tier(self) -> int:
        return gpu_tier(self.max_vram_bytes)


def summary_of(session: MinerSession) -> str:
    info = session.info
    return json.dumps(
        {
            "connection": "polling" if session.polls else "stream",
            "models": sorted(session.models),
            "gpus": [[gpu.name, gpu.vram_bytes, gpu.count] for gpu in info.gpus],
            "max_concurrency": info.max_concurrency,
            "draining": session.draining,
            "backend": info.backend,
            "connected_at": format_time(session.connected_at),
            "max_vram_bytes": info.max_vram_bytes,
            "prices": {
                model: [price.input_per_1k, price.output_per_1k] for model, price in sorted(session.prices.items())
            },
            "payout_address": info.payout_address,
        },
        sort_keys=True,
    )


def decode_roster(replica_id: str, rows: Iterable[tuple[str, str]]) -> list[RemoteMiner]:
    """The rows this build can read; one it cannot (a newer replica's) is skipped, not fatal."""
    miners = []
    for miner_id, text in rows:
        try:
            row = json.loads(text)
            miners.append(
                RemoteMiner(
                    miner_id=miner_id,
                    replica_id=replica_id,
                    connection=str(row["connection"]),
                    models=tuple(str(model) for model in row["models"]),
                    gpus=tuple(GpuSpec(str(name), int(vram), int(count)) for name, vram, count in row["gpus"]),
                    max_concurrency=int(row["max_concurrency"]),
                    draining=bool(row["draining"]),
                    backend=str(row["backend"]),
                    connected_at=datetime.fromisoformat(row["connected_at"]),
                    max_vram_bytes=int(row["max_vram_bytes"]),
                    prices={str(model): Price(int(i), int(o)) for model, (i, o) in row["prices"].items()},
                    payout_address=str(row["payout_address"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            log.warning("skipped replica %s's roster row of miner %s: this build cannot read it", replica_id, miner_id)
    return miners


class MinerRoster:
    """This replica's roster as published, and the other live replicas' rosters as last read."""

    def __init__(self, shared: ReplicaStore, replica_id: str, *, full_rewrite_every: int = FULL_REWRITE_EVERY) -> None:
        self._shared = shared
        self._replica_id = replica_id
        self._full_rewrite_every = full_rewrite_every
        self._published: dict[str, str] = {}
        self._summaries: dict[str, tuple[tuple[object, ...], str]] = {}  # miner id -> (what it shows, its row)
        self._renewals = 0
        self._others: dict[str, tuple[int, list[RemoteMiner]]] = {}

    async def publish(self, sessions: Iterable[MinerSession], *, anew: bool) -> None:
        """Write what changed since the last call; everything when `anew` (the replica's row, and with it its
        roster, was made again) or when a full rewrite is due."""
        self._renewals += 1
        full = anew or self._renewals % self._full_rewrite_every == 0
        current = {session.miner_id: self._summary(session) for session in sessions if not session.closed}
        self._summaries = {miner_id: self._summaries[miner_id] for miner_id in current}
        changed = {
            miner_id: summary
            for miner_id, summary in current.items()
            if full or self._published.get(miner_id) != summary
        }
        gone = [miner_id for miner_id in self._published if miner_id not in current]
        if changed or gone:
            await self._shared.publish_miners(self._replica_id, changed, gone)
        self._published = current

    def _summary(self, session: MinerSession) -> str:
        """`summary_of`, made again only when what it shows changed: with 10,000 miners, encoding every row at
        every renewal held the event loop for about 150 ms."""
        shown = (session.info, session.models, session.draining, session.polls, session.connected_at)
        cached = self._summaries.get(session.miner_id)
        if cached is not None and cached[0] == shown:
            return cached[1]
        summary = summary_of(session)
        self._summaries[session.miner_id] = (shown, summary)
        return summary

    async def refresh(self, others: Iterable[ReplicaRecord]) -> None:
        """Read again the rosters of live replicas that changed; forget those of replicas gone or lapsed."""
        live = {record.replica_id: record for record in others if record.live and record.replica_id != self._replica_id}
        self._others = {replica_id: known for replica_id, known in self._others.items() if replica_id in live}
        for replica_id, record in live.items():
            known = self._others.get(replica_id)
            if known is None or known[0] != record.roster_version:
                rows = await self._shared.roster(replica_id)
                self._others[replica_id] = (record.roster_version, decode_roster(replica_id, rows))

    def remote(self) -> list[RemoteMiner]:
        """Miners of the other live replicas, one each (a miner that just moved may show on both: the newer
        connection wins)."""
        by_id: dict[str, RemoteMiner] = {}
        for _, miners in self._others.values():
            for miner in miners:
                known = by_id.get(miner.miner_id)
                if known is None or miner.connected_at > known.connected_at:
                    by_id[miner.miner_id] = miner
        return sorted(by_id.values(), key=lambda miner: miner.miner_id)
