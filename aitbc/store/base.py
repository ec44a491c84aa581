"""The store interface. Every state change is a compare-and-set."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aitbc.domain.blocks import Block, BlockHeader
from aitbc.domain.events import JobEvent
from aitbc.domain.history import JobFilter, JobStatsRecord
from aitbc.domain.jobs import JobRecord
from aitbc.domain.keys import Principal, Role
from aitbc.domain.ledger import Transaction
from aitbc.domain.money import Outcome, TokenPrices, Usage
from aitbc.domain.receipts import Receipt
from aitbc.domain.reputation import MinerStats
from aitbc.domain.states import JobState
from aitbc.domain.webhooks import DeliveryRecord, DeliveryStatus, WebhookRecord
from aitbc.store.result_records import ResultStore


class StoreUnavailableError(Exception):
    """The store cannot be read or written (disk full, read-only, I/O error); nothing of the call was applied."""


class JobMovedOnError(Exception):
    """Output appended for an attempt the job is no longer on (another coordinator took it over); nothing stored.

    Only a store shared by several coordinators raises it: with one, memory already fences such output."""


@dataclass(frozen=True, slots=True)
class JobChanges:
    """Columns a transition may set besides the state. None leaves a column as is."""

    miner_id: str | None = None
    attempt: int | None = None
    result: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    finish_reason: str | None = None
    estimated_cost: int | None = None  # µcr
    miner_reputation: int | None = None
    excused_attempts: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    replica_id: str | None = None  # the coordinator process an assignment is made by (docs/scaling.md)


# Given the previous header (None: genesis), the transactions and the receipts to seal: the signed block.
BlockBuilder = Callable[[BlockHeader | None, list[Transaction], list[Receipt]], Block]


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Hold a new job's maximum cost from its owner's account, in the transaction that stores the job."""

    account_id: str
    amount: int  # µcr, > 0 (a free job holds nothing and has no hold)
    prices: TokenPrices  # what the job will be charged at


@dataclass(frozen=True, slots=True)
class ReceiptDraft:
    """What a receipt says besides the money, and the key that signs it; the store adds the settlement."""

    job_id: str
    attempt: int
    client: str  # address
    miner: str  # address
    model: str
    input_hash: str
    output_hash: str
    started_at: str  # RFC 3339
    completed_at: str
    coordinator_seed: bytes = field(repr=False)
    # The miner's key and its signature of the job's attestation, where it signed and the signature verified.
    miner_public_key: bytes | None = None
    miner_signature: str | None = None


@dataclass(frozen=True, slots=True)
class SettleRequest:
    """Close a job's hold, in the transaction that moves it to its terminal state.

    The store reads the hold in that transaction and applies `aitbc.domain.money.settle`; a job without an
    open hold (a free job, or one already settled) is left as it is, so a retry cannot charge twice.
    """

    outcome: Outcome
    usage: Usage
    fee_bps: int
    miner_account_id: str | None  # who earns the charge; None charges nothing (no miner to pay)
    # Called for the receipt's draft, to issue in the same transaction, when the job is charged (completed or
    # canceled with a charge); a callable because most terminal transitions (free jobs) need none.
    receipt: Callable[[], ReceiptDraft] | None = None


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account's buckets in µcr: balance = available + held."""

    account_id: str
    address: str
    available: int = 0
    held: int = 0
    spent: int = 0
    earned: int = 0

    @property
    def balance(self) -> int:
        return self.available + self.held


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int  # the order the store applied transactions in, from 1
    transaction: Transaction
    time: datetime


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Network totals for the explorer; amounts in µcr."""

    height: int  # the newest block's; -1 before genesis
    transactions: int
    receipts: int
    minted: int
    held: int
    charged: int
    fees: int


@dataclass(frozen=True, slots=True)
class JobWindow:
    """Jobs completed since a moment, and their completion tokens."""

    jobs_completed: int
    tokens: int


@dataclass(frozen=True, slots=True)
class JobTotals:
    submitted: int
    completed: int
    tokens_served: int  # completion tokens of every job, finished or not
    windows: tuple[JobWindow, ...]  # one per `since` asked for, in order


class InsufficientFundsError(Exception):
    """A hold beyond the account's available balance; nothing was stored."""

    def __init__(self, account_id: str, needed: int, available: int) -> None:
        super().__init__(f"account {account_id!r} needs {needed} µcr, has {available} µcr available")
        self.account_id = account_id
        self.needed = needed
        self.available = available


@dataclass(frozen=True, slots=True)
class MinerRecord:
    """What the coordinator remembers of a miner across its connections."""

    miner_id: str
    owner_id: str
    stats: MinerStats
    last_seen: datetime
    models: tuple[str, ...]
    backend: str


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A key as stored: its id, never the key or its hash."""

    key_id: str
    role: Role
    owner_id: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobRecord]
    next_page_token: str


class Store(ResultStore, Protocol):
    """Every method raises `StoreUnavailableError` when the store cannot be read or written."""

    async def close(self) -> None: ...

    async def probe(self) -> None:
        """Write something trivial: succeeds only if the store takes writes now."""
        ...

    # API keys
    async def add_api_key(self, key_hash: str, role: Role, owner_id: str, now: datetime) -> Principal: ...

    async def principal_for(self, key_hash: str) -> Principal | None:
        """The principal of a key that exists and is not revoked."""
        ...

    async def api_keys(self, *, owner_id: str | None) -> list[ApiKeyRecord]:
        """The keys of one account (None: of all accounts), oldest first."""
        ...

    async def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def revoke_api_key(self, key_id: str, now: datetime) -> ApiKeyRecord | None:
        """Revoke a key once (revoking it again keeps the first time); None when no key has that id."""
        ...

    async def record_key_use(self, last_used: Mapping[str, datetime]) -> None:
        """Note when keys (by id) were last used; a time earlier than the one stored changes nothing."""
        ...

    # Jobs
    async def create_job(self, job: JobRecord, first_event: JobEvent, hold: HoldRequest | None = None) -> JobRecord:
        """Insert a job and its first event atomically and return it.

        When the owner already has a job with the same idempotency key, nothing
        is inserted and that job is returned instead. `hold` is applied in the
        same transaction; `InsufficientFundsError` if the account cannot cover
        it (and nothing is stored).
        """
        ...

    async def get_job(self, job_id: str) -> JobRecord | None: ...

    async def job_by_idempotency_key(self, owner_id: str, key: str) -> JobRecord | None: ...

    async def list_jobs(
        self,
        *,
        owner_id: str | None,
        state: JobState | None,
        limit: int,
        page_token: str,
        model: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> JobPage:
        """Newest first; created_after inclusive, created_before exclusive."""
        ...

    # History (docs/history.md)
    async def export_page(
        self, job_filter: JobFilter, *, after: tuple[int, str] | None, limit: int
    ) -> list[tuple[JobRecord, int]]:
        """Up to `limit` jobs newest first, each with what it was charged (µcr), after the keyset cursor
        (created_at in µs, job_id) of the previous page's last job."""
        ...

    async def job_stats(self, job_filter: JobFilter) -> JobStatsRecord:
        """Counts, tokens, spending and completion times of the matching jobs, as SQL aggregates."""
        ...

    # Webhooks: the hooks, and the outbox of deliveries. A job's terminal transition queues its deliveries
    # in the transaction that stores the transition.
    async def create_webhook(self, webhook: WebhookRecord) -> None: ...

    async def webhooks(self, owner_id: str | None) -> list[WebhookRecord]:
        """One account's webhooks (None: everyone's), oldest first."""
        ...

    async def webhook(self, webhook_id: str) -> WebhookRecord | None: ...

    async def delete_webhook(self, webhook_id: str) -> bool:
        """Remove a webhook with its deliveries; False when there was none."""
        ...

    async def enqueue_delivery(self, delivery: DeliveryRecord) -> None: ...

    def may_queue_deliveries(self) -> bool:
        """Whether a terminal transition may queue webhook deliveries now: False only while the store knows
        that no webhook exists, so that the delivery worker need not look after every finished job."""
        ...

    async def due_deliveries(self, now: datetime, limit: int) -> list[tuple[DeliveryRecord, WebhookRecord]]:
        """Pending deliveries whose next attempt is due, oldest due first, with their webhook."""
        ...

    async def next_delivery_at(self) -> datetime | None:
        """When the earliest pending delivery is due; None when none is pending."""
        ...

    async def record_delivery_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        status_code: int,
        latency_ms: int,
        error: str,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> None: ...

    async def deliveries(self, webhook_id: str, limit: int) -> list[DeliveryRecord]:
        """A webhook's deliveries, newest first."""
        ...

    async def prune_deliveries(self, before: datetime) -> int:
        """Forget delivered and failed deliveries created before `before`; how many went."""
        ...

    async def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs in a non-terminal state, oldest first (used at start-up)."""
        ...

    async def unfinished_events(self) -> dict[str, list[JobEvent]]:
        """The events of every unfinished job, by job id, each list in sequence order: one read at start-up,
        where a read per job made a restart with a million queued jobs take minutes."""
        ...

    async def transition(
        self,
        job_id: str,
        *,
        from_states: Collection[JobState],
        attempt: int,
        to: JobState,
        changes: JobChanges,
        now: datetime,
        event: JobEvent,
        settle: SettleRequest | None = None,
    ) -> JobRecord | None:
        """Move a job to `to` if it is in one of `from_states` at `attempt`.

        Appends `event` and applies `settle` in the same transaction. Returns the updated record,
        or None when the job was not in the expected state: the caller lost a race.
        """
        ...

    # Accounts and the ledger

    async def credit(self, account_id: str, amount: int, *, tx_id: str, now: datetime) -> AccountRecord:
        """Mint `amount` µcr to the account (created if new); a `tx_id` already applied changes nothing."""
        ...

    async def account(self, account_id: str) -> AccountRecord:
        """The account's buckets; an account never credited or charged has zeros."""
        ...

    async def accounts(self) -> list[AccountRecord]:
        """Every account, the issuer and the fee account included, by account id."""
        ...

    async def receipt(self, receipt_id: str) -> Receipt | None: ...

    async def receipts(self, *, client: str | None, limit: int) -> list[Receipt]:
        """The newest receipts first, of one client address or of everyone."""
        ...

    async def receipts_before(self, *, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
        """Everyone's receipts with their store `seq`, newest first, older than `before_seq` (None: the newest)."""
        ...

    async def seal_block(self, build: BlockBuilder, *, max_transactions: int, now: datetime) -> Block | None:
        """Seal the ledger rows (at most `max_transactions`) and receipts committed since the last block, with
        `build` signing the block; genesis (empty) first. None when there is nothing new to seal."""
        ...

    async def receipt_block(self, receipt_id: str) -> int | None:
        """The height of the block that sealed the receipt; None while it is unsealed (or unknown)."""
        ...

    async def blocks(self, *, from_height: int = 0, limit: int = 100) -> list[Block]:
        """Sealed blocks from `from_height` on, with their transactions and receipts."""
        ...

    async def ledger_stats(self) -> LedgerStats: ...

    async def job_totals(self, *, since: Sequence[datetime]) -> JobTotals:
        """Job counts and tokens, with the jobs completed since each moment of `since`."""
        ...

    async def ledger(self, *, after_seq: int = 0, limit: int = 1000) -> list[LedgerEntry]:
        """Transactions in the order they applied, from the one after `after_seq`."""
        ...

    async def ledger_before(self, *, before_seq: int | None, limit: int) -> list[LedgerEntry]:
        """Transactions newest first, older than `before_seq` (None: the newest)."""
        ...

    # Miners

    async def miners(self) -> list[MinerRecord]: ...

    async def miner(self, miner_id: str) -> MinerRecord | None:
        """One miner's statistics as last written (another coordinator may have written them)."""
        ...

    async def save_miners(self, miners: Sequence[MinerRecord]) -> None:
        """Insert or replace these miners' records, in one transaction."""
        ...

    # Events
    async def append_events(self, events: Sequence[JobEvent]) -> None:
        """Store a job's output events (each names its attempt), all or none: JobMovedOnError if the job is no
        longer on that attempt on a miner, or another event already has the sequence number."""
        ...

    async def events(self, job_id: str, *, from_seq: int = 1) -> list[JobEvent]: ...
