from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.catalog import DEFAULT_CATALOG, GIB, ModelEntry
from aitbc.domain.routing import (
    Candidate,
    Price,
    RouteRequest,
    Unroutable,
    check_route,
    choose,
    cost_on,
    could_ever_serve,
    eligible_now,
    estimate_cost,
    estimate_prompt_tokens,
    price_for,
    rank_key,
    why_unroutable,
)

LLAMA = DEFAULT_CATALOG.resolve("llama3.2")  # tier 1, 0.001 in / 0.002 out per 1k
CODELLAMA = DEFAULT_CATALOG.resolve("codellama")  # tier 2, 14 GiB


def miner(miner_id: str = "m", **changes: object) -> Candidate:
    base = Candidate(
        miner_id=miner_id,
        models=frozenset({LLAMA.id, CODELLAMA.id}),
        tier=2,
        max_vram_bytes=24 * GIB,
        free_slots=2,
        max_concurrency=4,
        draining=False,
        reputation=5000,
        tokens_per_second=50.0,
        prices={},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def request(model: ModelEntry = LLAMA, max_price: int | None = None) -> RouteRequest:
    return RouteRequest(model=model, prompt_tokens=1000, max_tokens=1000, max_price=max_price)


def test_cost_estimates() -> None:
    price = Price(input_per_1k=1_000, output_per_1k=2_000)
    assert estimate_cost(price, prompt_tokens=1000, max_tokens=500) == 2_000
    # Rounded up once per job, as a hold is: 1 prompt token at 1 µcr per 1k costs 1 µcr, not 0.001.
    assert estimate_cost(Price(1, 0), prompt_tokens=1, max_tokens=0) == 1
    assert [estimate_prompt_tokens(n) for n in (0, 1, 4, 5, 400)] == [1, 1, 1, 2, 100]


def test_a_miner_quote_overrides_the_catalog_price() -> None:
    assert price_for(miner(), LLAMA) == Price(1_000, 2_000)
    quoted = miner(prices={LLAMA.id: Price(10_000, 20_000)})
    assert price_for(quoted, LLAMA) == Price(10_000, 20_000)
    assert price_for(quoted, CODELLAMA) == Price(5_000, 10_000)
    assert cost_on(quoted, request()) == 30_000


@pytest.mark.parametrize(
    ("candidate", "job"),
    [
        (miner(models=frozenset({CODELLAMA.id})), request()),
        (miner(draining=True), request()),
        (miner(tier=1), request(CODELLAMA)),
        (miner(max_vram_bytes=12 * GIB), request(CODELLAMA)),
        (miner(), request(max_price=2_999)),
    ],
    ids=["model", "draining", "tier", "vram", "price"],
)
def test_each_exclusion(candidate: Candidate, job: RouteRequest) -> None:
    assert not could_ever_serve(candidate, job)
    assert not eligible_now(candidate, job)
    assert choose([candidate], job) is None


def test_free_slots_matter_now_but_not_ever() -> None:
    full = miner(free_slots=0)
    assert could_ever_serve(full, request())
    assert not eligible_now(full, request())
    assert eligible_now(miner(), request(max_price=3_000))  # the exact cost is within max_price


def test_reputation_band_comes_first() -> None:
    busy_reputable = miner("a", reputation=7000, free_slots=1)
    idle_less_reputable = miner("b", reputation=6999, free_slots=4)
    assert choose([busy_reputable, idle_less_reputable], request()) is busy_reputable


def test_within_a_band_load_decides() -> None:
    busy = miner("a", reputation=7499, free_slots=1)
    idle = miner("b", reputation=7000, free_slots=3)
    assert choose([busy, idle], request()) is idle
    # The fraction free counts, not the number: 2 of 8 free is busier than 1 of 2.
    big = miner("c", reputation=7000, free_slots=2, max_concurrency=8)
    small = miner("d", reputation=7000, free_slots=1, max_concurrency=2)
    assert choose([big, small], request()) is small


def test_then_speed_then_miner_id() -> None:
    slow = miner("a", tokens_per_second=20.0)
    fast = miner("b", tokens_per_second=80.0)
    unknown = miner("c", tokens_per_second=0.0)
    assert choose([slow, fast, unknown], request()) is fast
    assert choose([miner("a"), miner("z"), miner("k")], request()) == miner("z")
    assert rank_key(miner(max_concurrency=0, free_slots=0))[1] == 0.0


candidates = st.lists(
    st.builds(
        lambda i, rep, free, tps, tier, draining: miner(
            f"m{i}", reputation=rep, free_slots=free, tokens_per_second=tps, tier=tier, draining=draining
        ),
        st.integers(0, 9),
        st.integers(0, 10_000),
        st.integers(0, 4),
        st.sampled_from([0.0, 10.0, 50.0]),
        st.integers(0, 4),
        st.booleans(),
    ),
    max_size=8,
    unique_by=lambda c: c.miner_id,
)


@settings(max_examples=60)
@given(candidates, st.randoms(use_true_random=False))
def test_choice_is_the_best_eligible_whatever_the_order(listed: list[Candidate], rng: random.Random) -> None:
    job = request(CODELLAMA)
    chosen = choose(listed, job)
    eligible = [c for c in listed if eligible_now(c, job)]
    if not eligible:
        assert chosen is None
        return
    assert chosen is not None
    assert eligible_now(chosen, job)
    assert all(rank_key(chosen) >= rank_key(c) for c in eligible)
    shuffled = list(listed)
    rng.shuffle(shuffled)
    assert choose(shuffled, job) is chosen


def test_why_unroutable_names_the_first_failing_check() -> None:
    nobody = "no online miner serves llama-3.2-1b-instruct"
    assert why_unroutable([], request()) == nobody
    assert why_unroutable([miner(models=frozenset({"x"}))], request()) == nobody
    assert (
        why_unroutable([miner(draining=True)], request()) == "1 miner serves llama-3.2-1b-instruct but it is draining"
    )
    assert (
        why_unroutable([miner("a", draining=True), miner("b", draining=True)], request())
        == "2 miners serve llama-3.2-1b-instruct but all are draining"
    )
    small = [miner("a", tier=1, max_vram_bytes=8 * GIB), miner("b", tier=0, max_vram_bytes=0)]
    assert (
        why_unroutable(small, request(CODELLAMA))
        == "2 miners serve codellama-7b-instruct but none meets tier 2 / 14 GiB of VRAM"
    )
    assert (
        why_unroutable(small[:1], request(CODELLAMA))
        == "1 miner serves codellama-7b-instruct but it does not meet tier 2 / 14 GiB of VRAM"
    )
    pricey = [
        miner("a", prices={LLAMA.id: Price(200_000, 220_000)}),
        miner("b", prices={LLAMA.id: Price(1_000_000, 1_000_000)}),
    ]
    assert (
        why_unroutable(pricey, request(max_price=100_000))
        == "the cheapest route costs 420000 µcr, over max_price 100000 µcr"
    )
    assert why_unroutable(pricey, request()) == "2 miners serve llama-3.2-1b-instruct within max_price"


def test_check_route_ignores_busy_miners() -> None:
    assert check_route([miner(free_slots=0)], request()) is None
    assert check_route([miner(draining=True)], request()) == Unroutable(
        "1 miner serves llama-3.2-1b-instruct but it is draining"
    )
    vram_only = ModelEntry("big", min_vram_bytes=40 * GIB)
    assert why_unroutable([miner(models=frozenset({"big"}))], request(vram_only)).endswith("40 GiB of VRAM")
