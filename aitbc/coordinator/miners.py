"""Connected miners as the coordinator sees them: what they serve and what they run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aitbc.domain.catalog import gpu_tier
from aitbc.domain.jobs import JobSpec
from aitbc.domain.keys import Principal
from aitbc.domain.routing import Candidate, Price


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

    @property
    def max_vram_bytes(self) -> int:
        return max((gpu.vram_bytes for gpu in self.gpus), default=0)


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
    """One miner's stream. The servicer is its only writer and drains `commands()`."""

    def __init__(
        self,
        info: MinerInfo,
        principal: Principal,
        connected_at: datetime,
        *,
        models: Mapping[str, str],
        polls: bool = False,
    ) -> None:
        self.advertise(info, models)
        self.principal = principal
        self.connected_at = connected_at
        # A polling (HTTP) miner claims jobs itself; nothing is pushed to it.
        self.polls = polls
        # Event-loop time of the last sign of life; the lease runs from here.
        self.last_seen = asyncio.get_running_loop().time()
        self.lease_timer: asyncio.TimerHandle | None = None
        self.draining = False
        self.assignments: dict[str, Assignment] = {}
        # Commands are bounded by the miner's slots: an assign and a cancel per
        # slot, plus welcome and drain. A longer queue means a stuck reader.
        self._outbox: asyncio.Queue[MinerCommand | None] = asyncio.Queue(maxsize=2 * info.max_concurrency + 4)
        self.closed = False

    @property
    def miner_id(self) -> str:
        return self.info.miner_id

    def advertise(self, info: MinerInfo, models: Mapping[str, str]) -> None:
        """Take what the miner says it offers; `models` maps its advertised names to catalog ids."""
        self.info = info
        self.models = frozenset(models.values())
        self.prices = {models[name]: price for name, price in info.prices if name in models}
        # Assignments name the model as this miner advertised it, which may be an alias.
        self._names = {model_id: name for name, model_id in models.items()}

    def local_name(self, model_id: str) -> str:
        return self._names.get(model_id, model_id)

    @property
    def free_slots(self) -> int:
        return self.info.max_concurrency - len(self.assignments)

    def candidate(self, *, reputation: int, tokens_per_second: float) -> Candidate:
        """This miner as routing sees it."""
        return Candidate(
            miner_id=self.miner_id,
            models=self.models,
            tier=gpu_tier(self.info.max_vram_bytes),
            max_vram_bytes=self.info.max_vram_bytes,
            free_slots=self.free_slots,
            max_concurrency=self.info.max_concurrency,
            draining=self.draining or self.closed,
            reputation=reputation,
            tokens_per_second=tokens_per_second,
            prices=self.prices,
        )

    def send(self, command: MinerCommand) -> None:
        if self.closed:
            raise OutboxFull(f"miner {self.miner_id} is disconnected")
        try:
            self._outbox.put_nowait(command)
        except asyncio.QueueFull:
            raise OutboxFull(f"miner {self.miner_id} is not reading its stream") from None

    def close(self) -> None:
        if self.lease_timer is not None:
            self.lease_timer.cancel()
        if not self.closed:
            self.closed = True
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
        free = 0 if session.draining else session.free_slots
        for model in session.models:
            known = offers.get(model)
            offers[model] = ModelOffer(
                model=model,
                miners=(known.miners if known else 0) + 1,
                free_slots=(known.free_slots if known else 0) + free,
                since=min(known.since, session.connected_at) if known else session.connected_at,
            )
    return sorted(offers.values(), key=lambda offer: offer.model)
