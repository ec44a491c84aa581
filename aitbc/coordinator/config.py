"""The coordinator's settings, and what a shutdown reports."""

from __future__ import annotations

from dataclasses import dataclass

from aitbc.config import DEFAULT_MODEL
from aitbc.coordinator.settlement import DEFAULT_FEE_BPS
from aitbc.domain.catalog import DEFAULT_CATALOG, Catalog

DEFAULT_REPLICA_LEASE = 6.0


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
    # The network's share of each charge in basis points (500 = 5%), paid to the network-fee account.
    fee_bps: int = DEFAULT_FEE_BPS
    # The coordinator's Ed25519 key (32-byte seed) that signs receipts; `aitbc coordinator` and `aitbc up`
    # keep it in AITBC_HOME. None: a key made for this process only (tests), whose receipts outlive its trust.
    signing_key: bytes | None = None
    # Blocks seal what the ledger committed every `block_interval` seconds, or as soon as this many
    # transactions wait, whichever comes first; at most this many transactions each.
    block_interval: float = 5.0
    block_max_transactions: int = 500
    # The model a submit that names none runs on: a catalog id or alias.
    default_model: str = DEFAULT_MODEL
    # Share links are this base URL + /v1/shared/TOKEN: where the HTTP gateway is reached (docs/results.md).
    public_url: str = "http://127.0.0.1:8080"
    # How often the retention sweeper deletes results past their plan's retention.
    retention_sweep_interval: float = 3600.0
    # Webhooks may point at loopback and private addresses (`--allow-private-webhooks`): local stacks, tests.
    allow_private_webhooks: bool = False
    # With several coordinators on one PostgreSQL database (docs/scaling.md): a replica silent this long (by the
    # database's clock) has its jobs on miners taken over by the others.
    replica_lease: float = DEFAULT_REPLICA_LEASE
    # The address this process serves on, as others reach it; shown in the replicas table.
    advertise_address: str = ""


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What a shutdown leaves for the next start: jobs cut off on a miner (requeued), and jobs still queued."""

    requeued: int
    queued: int
