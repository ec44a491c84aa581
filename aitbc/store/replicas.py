"""What several coordinator processes sharing one store need of it (docs/scaling.md).

Only `PostgresStore` implements `ReplicaStore`: SQLite is one process's embedded file. The coordinator asks
`isinstance(store, ReplicaStore)` and runs its replica part (`aitbc.coordinator.replicas`) on such a store,
even as the only process: one replica is a cluster of one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from aitbc.domain.states import JobState


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """A coordinator process: its liveness lease, and its connected stream miners as routing sees them."""

    replica_id: str
    address: str
    started_at: datetime
    lease_until: datetime  # by the database's clock
    miners: str  # JSON (aitbc.coordinator.replica_miners)
    live: bool  # whether the lease still runs, by the database's clock
    roster_version: int = 0  # grows whenever the replica's roster rows change (`publish_miners`)


@dataclass(frozen=True, slots=True)
class JobHead:
    """Where an unfinished job stands in the store: what a replica's copy is checked against."""

    state: JobState
    attempt: int
    last_seq: int


class Listening(Protocol):
    async def close(self) -> None: ...


@runtime_checkable
class ReplicaStore(Protocol):
    replica_id: str  # this process's; the store's writes carry it (application_name on PostgreSQL)

    async def renew_replica(self, replica_id: str, *, address: str, lease_seconds: float, miners: str) -> bool:
        """Extend the replica's lease to `lease_seconds` from now (the database's clock) and record its miners;
        False if its row had to be made anew (first start, or it was forgotten: its jobs were taken over)."""
        ...

    async def leave_replica(self, replica_id: str) -> None:
        """Drop the replica's row and roster: its jobs on miners are anyone's to take over at once."""
        ...

    async def replicas(self) -> list[ReplicaRecord]: ...

    async def publish_miners(self, replica_id: str, changed: Mapping[str, str], gone: Collection[str]) -> None:
        """Update the replica's roster: miner id -> summary (JSON) for miners that joined or changed; `gone`
        left. A miner now listed by another replica keeps that replica's row."""
        ...

    async def roster(self, replica_id: str) -> list[tuple[str, str]]:
        """The replica's roster rows: (miner id, summary)."""
        ...

    async def orphaned_jobs(self) -> list[tuple[str, int, str]]:
        """(job_id, attempt, replica_id) of jobs on a miner whose replica's lease has run out (or never was)."""
        ...

    async def forget_replicas(self, lapsed_for: float) -> int:
        """Delete the rows (and rosters) of replicas whose lease ran out over `lapsed_for` seconds ago; how many."""
        ...

    async def job_heads(self) -> dict[str, JobHead]:
        """Every unfinished job's state, attempt and last event: the safety sweep's view."""
        ...

    async def request_cancel(self, job_id: str, attempt: int) -> None:
        """Tell every replica that a client asked to cancel (job_id, attempt) (a notification; nothing stored)."""
        ...

    async def listen(
        self,
        on_job: Callable[[str, int, str, str], None],
        on_cancel: Callable[[str, int], None],
        on_lost: Callable[[], None],
    ) -> Listening:
        """Hear of every stored event (`on_job(job_id, seq, kind, writing replica)`) and cancel request on a
        connection of its own;
        `on_lost` once that connection breaks, after which nothing more is heard."""
        ...
