"""Connected miners as the coordinator sees them: what they serve and what they run."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aitbc.domain.catalog import gpu_tier
from aitbc.domain.errors import invalid_argument
from aitbc.domain.eth_address import address_problem
from aitbc.domain.jobs import JobSpec
from aitbc.domain.keys import Principal
from aitbc.domain.money import MICRO_PER_CREDIT
from aitbc.domain.routing import Candidate, Price

_MINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
MAX_CONCURRENCY = 1024
MAX_MODELS = 256
MAX_NAME_CHARS = 128
MAX_GPUS = 64
# 1 PiB per GPU and a million credits per 1k tokens: far beyond any real card or price, short of absurd.
MAX_VRAM_BYTES = 1 << 50
PUBLIC_KEY_BYTES = 32
MAX_PRICE_PER_1K = 1_000_000 * MICRO_PER_CREDIT  # µcr


@dataclass(frozen=True, slots=True)
class GpuSpec:
    name: str
    vram_bytes: int
    count: int


@dataclass(frozen=True, slots=True)
class MinerInfo:
    """What a miner says about itself in its hello."""

    miner_id: str
    models: frozenset[str]
    max_concurrency: int
    gpus: tuple[GpuSpec, ...] = ()
    backend: str = ""
    version: str = ""
    # The miner's own prices, by the model names it advertises.
    prices: tuple[tuple[str, Price], ...] = ()
    # The miner's Ed25519 public key (raw bytes); empty when it signs nothing.
    public_key: bytes = b""
    # An Ethereum address the miner is paid at (seed 004's assignedNode); empty when it has none.
    payout_address: str = ""

    @property
    def max_vram_bytes(self) -> int:
        return max((gpu.vram_bytes for gpu in self.gpus), default=0)

    def validate(self) -> None:
        if not _MINER_ID.match(self.miner_id):
            raise invalid_argument("miner_id", f"{self.miner_id!r} is not a valid miner id")
        if not self.models:
            raise invalid_argument("models", "a miner must serve at least one model")
        if not 1 <= self.max_concurrency <= MAX_CONCURRENCY:
            raise invalid_argument(
                "max_concurrency", f"must be between 1 and {MAX_CONCURRENCY}, got {self.max_concurrency}"
            )
        if len(self.models) > MAX_MODELS or any(not 0 < len(name) <= MAX_NAME_CHARS for name in self.models):
            raise invalid_argument("models", f"at most {MAX_MODELS} names of 1 to {MAX_NAME_CHARS} characters")
        for text, name in ((self.backend, "backend"), (self.version, "version")):
            if len(text) > MAX_NAME_CHARS:
                raise invalid_argument(name, f"must be at most {MAX_NAME_CHARS} characters")
        if self.payout_address and (problem := address_problem(self.payout_address)) is not None:
            raise invalid_argument("payout_address", problem)
        if self.public_key and len(self.public_key) != PUBLIC_KEY_BYTES:
            raise invalid_argument("public_key", f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
        if len(self.gpus) > MAX_GPUS:
            raise invalid_argument("gpus", f"at most {MAX_GPUS} entries")
        for gpu in self.gpus:
            if not 0 <= gpu.vram_bytes <= MAX_VRAM_BYTES:
                raise invalid_argument(
                    "gpus", f"vram_bytes must be between 0 and {MAX_VRAM_BYTES}, got {gpu.vram_bytes}"
                )
            if not 1 <= gpu.count <= MAX_GPUS or len(gpu.name) > MAX_NAME_CHARS:
                raise invalid_argument(
                    "gpus", f"each needs a count of 1 to {MAX_GPUS} and a name of <= {MAX_NAME_CHARS}"
                )
        for model, price in self.prices:
            for amount in (price.input_per_1k, price.output_per_1k):
                # A negative price would win every route and pay the miner from the client's refund.
                if not 0 <= amount <= MAX_PRICE_PER_1K:
                    raise invalid_argument(
                        "prices", f"{model!r}: prices must be between 0 and {MAX_PRICE_PER_1K} µcr, got {amount}"
                    )


# Commands the coordinator sends down a miner's stream.


@dataclass(frozen=True, slots=True)
class Welcome:
    miner_id: str
    heartbeat_interval: timedelta


@dataclass(frozen=True, slots=True)
class Assign:
    job_id: str
    attempt: int
    spec: JobSpec
    resume_text: str
    resume_tokens: int


@dataclass(frozen=True, slots=True)
class Cancel:
    job_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Drain:
    reason: str


MinerCommand = Welcome | Assign | Cancel | Drain


@dataclass(slots=True)
class Assignment:
    """One job attempt on one miner: the lease that (job_id, attempt) fences."""

    job_id: str
    attempt: int
    resume_tokens: int
    assigned_at: datetime
    started: bool = False
    tokens: int = 0
    text: list[str] = field(default_factory=list)
    first_token_at: datetime | None = None
    cancel_ack: asyncio.Future[int] | None = None
    # The miner's signature of what it reported at the end, once checked against its key.
    signature: str | None = None

    def start(self) -> bool:
        """Note that the miner started; False if it had already."""
        if self.started:
            return False
        self.started = True
        return True

    def add_tokens(self, text: str, token_count: int, now: datetime) -> None:
        self.text.append(text)
        self.tokens += token_count
        if self.first_token_at is None:
            self.first_token_at = now

    @property
    def streamed(self) -> str:
        return "".join(self.text)

    def request_cancel(self) -> asyncio.Future[int]:
        if self.cancel_ack is None:
            self.cancel_ack = asyncio.get_running_loop().create_future()
        return self.cancel_ack

    def settle_cancel(self, tokens: int) -> None:
        if self.cancel_ack is not None and not self.cancel_ack.done():
            self.cancel_ack.set_result(tokens)


class OutboxFull(Exception):
    """The miner is not reading its stream: more commands are queued than it could ever need."""


class MinerSession:
    """One miner's connection (a stream, or a polling miner's registration) and the leases it holds.

    Only the session changes its own state; the registry and the reports
    call its methods. The stream's servicer is its only writer and drains
    `commands()`.
    """

    def __init__(
        self,
        info: MinerInfo,
        principal: Principal,
        connected_at: datetime,
        *,
        models: Mapping[str, str],
        seen_at: float,
        polls: bool = False,
    ) -> None:
        self._watcher: Callable[[str], None] | None = None
        self.advertise(info, models)
        self.principal = principal
        self.connected_at = connected_at
        # A polling (HTTP) miner claims jobs itself; nothing is pushed to it.
        self.polls = polls
        self._last_seen = seen_at
        self._draining = False
        self._assignments: dict[str, Assignment] = {}
        # Commands are bounded by the miner's slots: an assign and a cancel per
        # slot, plus welcome and drain. A longer queue means a stuck reader.
        self._outbox: asyncio.Queue[MinerCommand | None] = asyncio.Queue(maxsize=2 * info.max_concurrency + 4)
        self._closed = False

    @property
    def miner_id(self) -> str:
        return self.info.miner_id

    @property
    def owner_id(self) -> str:
        return self.principal.owner_id

    @property
    def last_seen(self) -> float:
        """Monotonic time of the last sign of life; the lease runs from here."""
        return self._last_seen

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def closed(self) -> bool:
        return self._closed

    def advertise(self, info: MinerInfo, models: Mapping[str, str]) -> None:
        """Take what the miner says it offers; `models` maps its advertised names to catalog ids."""
        self.info = info
        self.models = frozenset(models.values())
        self.prices = {models[name]: price for name, price in info.prices if name in models}
        # Assignments name the model as this miner advertised it, which may be an alias.
        self._names = {model_id: name for name, model_id in models.items()}
        self._changed()

    def watch(self, watcher: Callable[[str], None]) -> None:
        """Call `watcher(miner_id)` whenever what routing sees of this miner changes (its `candidate`)."""
        self._watcher = watcher

    def _changed(self) -> None:
        if self._watcher is not None:
            self._watcher(self.info.miner_id)

    def local_name(self, model_id: str) -> str:
        return self._names.get(model_id, model_id)

    def renew(self, now: float) -> None:
        """Any message is a sign of life that extends every lease the miner holds."""
        self._last_seen = max(self._last_seen, now)

    def set_draining(self, draining: bool) -> bool:
        """Take or stop taking new jobs; True if that changed."""
        changed = draining != self._draining
        self._draining = draining
        if changed:
            self._changed()
        return changed

    # Leases

    @property
    def assignments(self) -> Mapping[str, Assignment]:
        return self._assignments

    @property
    def free_slots(self) -> int:
        return self.info.max_concurrency - len(self._assignments)

    def reserve(self, assignment: Assignment) -> None:
        """Hold a slot for a job attempt before the store round trip, so it cannot be handed out twice."""
        self._assignments[assignment.job_id] = assignment
        self._changed()

    def release(self, assignment: Assignment) -> bool:
        """Free the attempt's slot; False if the miner no longer held that attempt."""
        held = self._assignments.get(assignment.job_id) is assignment
        if held:
            del self._assignments[assignment.job_id]
            self._changed()
        assignment.settle_cancel(assignment.tokens)
        return held

    def holding(self, job_id: str, attempt: int) -> Assignment | None:
        """The lease on (job_id, attempt), if this miner holds it."""
        assignment = self._assignments.get(job_id)
        return assignment if assignment is not None and assignment.attempt == attempt else None

    def candidate(self, *, reputation: int, tokens_per_second: float) -> Candidate:
        """This miner as routing sees it."""
        return Candidate(
            miner_id=self.miner_id,
            models=self.models,
            tier=gpu_tier(self.info.max_vram_bytes),
            max_vram_bytes=self.info.max_vram_bytes,
            free_slots=self.free_slots,
            max_concurrency=self.info.max_concurrency,
            draining=self._draining or self._closed,
            reputation=reputation,
            tokens_per_second=tokens_per_second,
            prices=self.prices,
        )

    # The stream

    def send(self, command: MinerCommand) -> None:
        if self._closed:
            raise OutboxFull(f"miner {self.miner_id} is disconnected")
        try:
            self._outbox.put_nowait(command)
        except asyncio.QueueFull:
            raise OutboxFull(f"miner {self.miner_id} is not reading its stream") from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._changed()
            # The sentinel may not fit a full outbox; drop queued commands, the
            # stream is going away and every assignment on it is requeued.
            while self._outbox.full():
                self._outbox.get_nowait()
            self._outbox.put_nowait(None)

    async def commands(self) -> AsyncIterator[MinerCommand]:
        while (command := await self._outbox.get()) is not None:
            yield command


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """A model as the connected miners offer it right now."""

    model: str
    miners: int
    free_slots: int
    since: datetime


def model_offers(sessions: list[MinerSession]) -> list[ModelOffer]:
    offers: dict[str, ModelOffer] = {}
    for session in sessions:
        add_offer(offers, session.models, 0 if session.draining else session.free_slots, session.connected_at)
    return sorted(offers.values(), key=lambda offer: offer.model)


def add_offer(offers: dict[str, ModelOffer], models: Iterable[str], free_slots: int, since: datetime) -> None:
    """Count one more miner, with `free_slots` and connected `since`, in the offer of each of its `models`."""
    for model in models:
        known = offers.get(model)
        offers[model] = ModelOffer(
            model=model,
            miners=(known.miners if known else 0) + 1,
            free_slots=(known.free_slots if known else 0) + free_slots,
            since=min(known.since, since) if known else since,
        )
