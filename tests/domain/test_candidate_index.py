"""The candidate index: takers ranked per model, picking as `routing.choose` would."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.candidate_index import CandidateIndex
from aitbc.domain.catalog import ModelEntry
from aitbc.domain.routing import Candidate, Price, RouteRequest, choose

MODELS = {
    "x": ModelEntry("x", price_output_per_1k=1_000_000),
    "y": ModelEntry("y", min_tier=2, price_output_per_1k=1_000_000),
}


def miner(
    miner_id: str,
    models: str = "xy",
    free: int = 1,
    *,
    slots: int | None = None,
    tier: int = 2,
    draining: bool = False,
    reputation: int = 5000,
    speed: float = 0.0,
    price: int | None = None,
) -> Candidate:
    return Candidate(
        miner_id=miner_id,
        models=frozenset(models),
        tier=tier,
        max_vram_bytes=0,
        free_slots=free,
        max_concurrency=slots if slots is not None else max(free, 1),
        draining=draining,
        reputation=reputation,
        tokens_per_second=speed,
        prices={} if price is None else {model: Price(0, price) for model in MODELS},
    )


def request(model: str = "x", max_price: int | None = None) -> RouteRequest:
    return RouteRequest(MODELS[model], prompt_tokens=0, max_tokens=1000, max_price=max_price)


def test_only_takers_of_the_model_are_offered() -> None:
    index = CandidateIndex(
        [
            miner("full", free=0),
            miner("draining", draining=True),
            miner("only-y", "y"),
            miner("ok", "x"),
        ]
    )
    assert index.best("x", request("x")) == miner("ok", "x")
    assert {c.miner_id for c in index} == {"only-y", "ok"}
    assert index.has_room("x")
    assert index.has_room("y")
    index.put(miner("ok", "x", free=0))  # its last slot was taken
    assert not index.has_room("x")
    assert index.best("x", request("x")) is None
    index.put(miner("ok", "x", free=1))  # and freed again
    assert index.best("x", request("x")) == miner("ok", "x")


def test_a_closed_or_removed_miner_is_never_offered() -> None:
    index = CandidateIndex([miner("a"), miner("b")])
    index.put(miner("b", draining=True))  # a closed session's candidate says draining
    assert index.best("x", request()) == miner("a")
    index.discard("a")
    assert index.best("x", request()) is None
    assert not index.has_room("x")
    assert index.get("a") is None


def test_the_best_ranked_eligible_miner_wins_and_the_walk_skips_ineligible_ones() -> None:
    index = CandidateIndex(
        [
            miner("expensive", reputation=9000, price=2_000_000),
            miner("weak", "xy", tier=1, reputation=9000),
            miner("cheap", price=500_000),
        ]
    )
    assert index.best("x", request("x")) == miner("weak", "xy", tier=1, reputation=9000)  # the greater id
    assert index.best("x", request("x", max_price=999_999)) == miner("cheap", price=500_000)
    assert index.best("y", request("y")) == miner("expensive", reputation=9000, price=2_000_000)
    assert index.best("y", request("y", max_price=1_000_000)) == miner("cheap", price=500_000)  # weak: tier 1


def test_taking_slots_reranks_and_empties_a_miner() -> None:
    index = CandidateIndex([miner("big", free=2, slots=2), miner("small", free=1, slots=2)])
    assert index.best("x", request()) == miner("big", free=2, slots=2)  # all its slots free
    assert index.take_slot("big") == miner("big", free=1, slots=2)
    assert index.best("x", request()) == miner("small", free=1, slots=2)  # equal load: the greater id
    index.take_slot("small")
    index.take_slot("big")
    assert not index.has_room("x")
    assert index.pop_taken() == {"big", "small"}
    assert index.pop_taken() == set()


def test_stale_entries_are_dropped_as_miners_change() -> None:
    index = CandidateIndex([miner(f"m{i}") for i in range(10)])
    for round_ in range(200):
        for i in range(10):
            index.put(miner(f"m{i}", free=(round_ + i) % 3, slots=2))
    heap_sizes = [len(heap) for heap in index._heaps.values()]
    assert max(heap_sizes) <= 2 * 10 + 32 + 1
    expected = choose([miner(f"m{i}", free=(199 + i) % 3, slots=2) for i in range(10)], request())
    assert index.best("x", request()) == expected


candidates = st.builds(
    miner,
    st.sampled_from([f"m{i}" for i in range(8)]),
    st.sampled_from(["x", "y", "xy"]),
    st.integers(0, 3),
    slots=st.just(3),
    tier=st.integers(1, 2),
    draining=st.booleans(),
    reputation=st.sampled_from([4000, 5000, 5400, 9000]),
    speed=st.sampled_from([0.0, 10.0, 20.0]),
    price=st.sampled_from([None, 500_000, 2_000_000]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(candidates, st.sampled_from([f"m{i}" for i in range(8)])), max_size=40),
    st.sampled_from(["x", "y"]),
    st.sampled_from([None, 1_000_000]),
)
def test_the_index_picks_as_choose_does_through_any_sequence_of_changes(
    changes: list[Candidate | str], model: str, max_price: int | None
) -> None:
    index = CandidateIndex()
    current: dict[str, Candidate] = {}
    route = request(model, max_price)
    for change in changes:
        if isinstance(change, str):
            index.discard(change)
            current.pop(change, None)
        else:
            index.put(change)
            current[change.miner_id] = change
        assert index.best(model, route) == choose(current.values(), route)
        assert index.has_room(model) == any(
            c.free_slots > 0 and not c.draining and model in c.models for c in current.values()
        )
        picked = index.best(model, route)
        if picked is not None:
            assert picked.free_slots > 0
            assert not picked.draining
            assert model in picked.models
            taken = index.take_slot(picked.miner_id)
            current[picked.miner_id] = replace(picked, free_slots=picked.free_slots - 1)
            assert taken == current[picked.miner_id]
