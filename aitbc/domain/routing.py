"""Routing: which miners may run a job, and which of them should.

Eligibility, checked in this order (`why_unroutable` reports the first check
that leaves no miner):

1. the miner serves the model (by canonical catalog id),
2. it is not draining,
3. its GPU tier and the VRAM of its largest GPU meet the model's minimums,
4. the estimated cost on it is within the client's `max_price`, if set,
5. it has a free slot now (only this one is ignored by `could_ever_serve`).

Among the eligible, the best ranked wins (`rank_key`, larger is better):
reputation band, then the fraction of slots free, then measured tokens/s,
then the miner id so that equal miners are chosen the same way every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aitbc.domain.catalog import GIB, ModelEntry
from aitbc.domain.money import TOKENS_PER_PRICE_UNIT, TokenPrices, ceil_div

REPUTATION_BAND = 500


@dataclass(frozen=True, slots=True)
class Price:
    """µcr per 1,000 tokens, as a miner quoted it (validated where it arrives, `MinerInfo`)."""

    input_per_1k: int
    output_per_1k: int

    def token_prices(self) -> TokenPrices:
        return TokenPrices(self.input_per_1k, self.output_per_1k)


def estimate_cost(price: Price, *, prompt_tokens: int, max_tokens: int) -> int:
    """The most a job can cost, in µcr: prompt tokens plus every one of `max_tokens` generated.

    Rounded up once, as `aitbc.domain.money.cost` does, so the estimate is exactly the hold a job needs.
    """
    numerator = prompt_tokens * price.input_per_1k + max_tokens * price.output_per_1k
    return ceil_div(numerator, TOKENS_PER_PRICE_UNIT)


def estimate_prompt_tokens(text_chars: int) -> int:
    """An estimate, before tokenizing, of the tokens in `text_chars` characters: about 4 per token, at least 1."""
    return max(1, -(-text_chars // 4))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A connected miner as routing sees it."""

    miner_id: str
    models: frozenset[str]  # canonical catalog ids
    tier: int
    max_vram_bytes: int  # largest single GPU
    free_slots: int
    max_concurrency: int
    draining: bool
    reputation: int  # 0..10000, see aitbc.domain.reputation
    tokens_per_second: float  # measured EWMA; 0 = unknown
    prices: Mapping[str, Price]  # model id -> this miner's price; a model missing here costs the catalog price


@dataclass(frozen=True, slots=True)
class RouteRequest:
    model: ModelEntry
    prompt_tokens: int
    max_tokens: int
    max_price: int | None  # µcr; None: any price


def price_for(candidate: Candidate, model: ModelEntry) -> Price:
    quoted = candidate.prices.get(model.id)
    return Price(model.price_input_per_1k, model.price_output_per_1k) if quoted is None else quoted


def cost_on(candidate: Candidate, request: RouteRequest) -> int:
    price = price_for(candidate, request.model)
    return estimate_cost(price, prompt_tokens=request.prompt_tokens, max_tokens=request.max_tokens)


def could_ever_serve(candidate: Candidate, request: RouteRequest) -> bool:
    """Eligible but for free slots: the job may wait for this miner, so a submit need not fail fast."""
    return (
        request.model.id in candidate.models
        and not candidate.draining
        and _meets_hardware(candidate, request.model)
        and _affordable(candidate, request)
    )


def eligible_now(candidate: Candidate, request: RouteRequest) -> bool:
    return candidate.free_slots > 0 and could_ever_serve(candidate, request)


def rank_key(candidate: Candidate) -> tuple[int, float, float, str]:
    """How good a choice `candidate` is; larger is better.

    Reputation counts in bands of `REPUTATION_BAND` points: a few hundred
    points are one failure more or less among recent jobs, noise that must not
    send work to a busy miner while a slightly less reputable one sits idle.
    Within a band the least loaded miner wins (fraction of its slots free, so
    big and small miners compare fairly), then the fastest measured one
    (unknown speed ranks last), then the greatest miner id: arbitrary, but it
    makes the choice independent of the order candidates are listed in.
    """
    load_free = candidate.free_slots / candidate.max_concurrency if candidate.max_concurrency > 0 else 0.0
    return (candidate.reputation // REPUTATION_BAND, load_free, candidate.tokens_per_second, candidate.miner_id)


def choose(candidates: Iterable[Candidate], request: RouteRequest) -> Candidate | None:
    """The best-ranked candidate that can start `request` now, or None."""
    return max((c for c in candidates if eligible_now(c, request)), key=rank_key, default=None)


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Why no online miner could ever run a request: the coordinator fails the submit fast with it."""

    reason: str


def check_route(candidates: Iterable[Candidate], request: RouteRequest) -> Unroutable | None:
    """None when some candidate could serve `request` (now or once a slot frees), else why not."""
    listed = list(candidates)
    if any(could_ever_serve(candidate, request) for candidate in listed):
        return None
    return Unroutable(why_unroutable(listed, request))


def why_unroutable(candidates: Iterable[Candidate], request: RouteRequest) -> str:
    """A sentence naming the first eligibility check (module docstring order) that no candidate passes."""
    model = request.model
    serving = [c for c in candidates if model.id in c.models]
    if not serving:
        return f"no online miner serves {model.id}"
    open_ = [c for c in serving if not c.draining]
    if not open_:
        return f"{_serve(serving, model)} but {'it is' if len(serving) == 1 else 'all are'} draining"
    fitting = [c for c in open_ if _meets_hardware(c, model)]
    if not fitting:
        verdict = "it does not meet" if len(open_) == 1 else "none meets"
        return f"{_serve(open_, model)} but {verdict} {_hardware(model)}"
    affordable = [c for c in fitting if _affordable(c, request)]
    if request.max_price is not None and not affordable:
        cheapest = min(cost_on(c, request) for c in fitting)
        return f"the cheapest route costs {cheapest} µcr, over max_price {request.max_price} µcr"
    return f"{_serve(affordable, model)} within max_price"


def _meets_hardware(candidate: Candidate, model: ModelEntry) -> bool:
    return candidate.tier >= model.min_tier and candidate.max_vram_bytes >= model.min_vram_bytes


def _affordable(candidate: Candidate, request: RouteRequest) -> bool:
    return request.max_price is None or cost_on(candidate, request) <= request.max_price


def _serve(candidates: list[Candidate], model: ModelEntry) -> str:
    return f"1 miner serves {model.id}" if len(candidates) == 1 else f"{len(candidates)} miners serve {model.id}"


def _hardware(model: ModelEntry) -> str:
    needs = [f"tier {model.min_tier}"] if model.min_tier else []
    if model.min_vram_bytes:
        needs.append(f"{model.min_vram_bytes / GIB:g} GiB of VRAM")
    return " / ".join(needs)
