from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.catalog import ModelEntry
from aitbc.domain.fair_queue import FairQueue
from aitbc.domain.priority import Priority
from aitbc.domain.routing import Candidate, Price, RouteRequest, choose, could_ever_serve
from aitbc.domain.scheduler import plan_assignments

# A job of either model costs its max_tokens / 1000 times the output price: 1 credit (10**6 µcr) at catalog prices.
MODELS = {
    "x": ModelEntry("x", price_output_per_1k=1_000_000),
    "y": ModelEntry("y", min_tier=2, price_output_per_1k=1_000_000),
}


def miner(
    miner_id: str,
    models: str = "xy",
    free: int = 1,
    *,
    tier: int = 2,
    draining: bool = False,
    reputation: int = 5000,
    price: int | None = None,
) -> Candidate:
    return Candidate(
        miner_id=miner_id,
        models=frozenset(models),
        tier=tier,
        max_vram_bytes=0,
        free_slots=free,
        max_concurrency=max(free, 1),
        draining=draining,
        reputation=reputation,
        tokens_per_second=0.0,
        prices={} if price is None else {model: Price(0, price) for model in MODELS},
    )


class Jobs:
    """A queue plus each job's route request, as the coordinator would hold them."""

    def __init__(self) -> None:
        self.queue = FairQueue()
        self.requests: dict[str, RouteRequest] = {}

    def add(
        self,
        job_id: str,
        model: str = "x",
        *,
        owner: str = "A",
        max_price: int | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> None:
        self.requests[job_id] = RouteRequest(MODELS[model], prompt_tokens=0, max_tokens=1000, max_price=max_price)
        self.queue.push(job_id, owner_id=owner, model=model, priority=priority)

    def plan(self, candidates: list[Candidate], lookahead: int = 32) -> list[tuple[str, str]]:
        return plan_assignments(self.queue, candidates, self.requests.__getitem__, lookahead=lookahead)


def test_plan_fills_free_slots_in_dispatch_order() -> None:
    jobs = Jobs()
    for job_id, model, owner in [("a1", "x", "A"), ("a2", "x", "A"), ("b1", "x", "B"), ("y1", "y", "A")]:
        jobs.add(job_id, model, owner=owner)
    plan = jobs.plan([miner("big", "x", 2), miner("small", "xy", 1)])
    assert plan == [("a1", "small"), ("b1", "big"), ("a2", "big")]  # equal load: the greater id wins
    assert jobs.queue.peek(["x", "y"], 9) == ["y1"]
    assert jobs.plan([miner("big", "x", 2)]) == []  # nobody else serves y


def test_a_picky_job_does_not_block_its_model() -> None:
    jobs = Jobs()
    jobs.add("picky", max_price=500_000)  # only the cheap miner fits, and it is busy
    jobs.add("easy1")
    jobs.add("easy2")
    cheap_but_busy, pricey = miner("cheap", free=0, price=400_000), miner("pricey", free=1)
    assert jobs.plan([cheap_but_busy, pricey]) == [("easy1", "pricey")]
    assert jobs.queue.position("picky") == 0
    assert jobs.plan([cheap_but_busy, pricey], lookahead=1) == []
    assert jobs.plan([miner("cheap", free=2, price=400_000)]) == [("picky", "cheap"), ("easy2", "cheap")]


def test_never_a_draining_miner_and_the_best_ranked_first() -> None:
    jobs = Jobs()
    for n in range(3):
        jobs.add(f"j{n}")
    candidates = [miner("draining", free=5, draining=True), miner("good", reputation=9000), miner("ok", free=3)]
    assert jobs.plan(candidates) == [("j0", "good"), ("j1", "ok"), ("j2", "ok")]


def test_models_take_turns_by_age_and_priority() -> None:
    jobs = Jobs()
    jobs.add("x1", "x")
    jobs.add("y1", "y")
    jobs.add("x2", "x")
    jobs.add("y-high", "y", priority=Priority.HIGH)
    assert [job for job, _ in jobs.plan([miner("m", free=3)])] == ["y-high", "x1", "y1"]


def test_lookahead_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lookahead"):
        Jobs().plan([], lookahead=0)


job_lists = st.lists(
    st.tuples(
        st.sampled_from("xy"), st.sampled_from("ABC"), st.sampled_from([None, None, 500_000, 1_000_000, 3_000_000])
    ),
    min_size=1,
    max_size=40,
)
candidate_lists = st.lists(
    st.tuples(
        st.sampled_from(["x", "y", "xy"]),
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from([False, False, True]),  # draining
        st.integers(0, 10_000),
        st.sampled_from([None, 400_000, 2_000_000]),
    ),
    min_size=1,
    max_size=5,
)


def setup(job_specs: list[tuple[str, str, int | None]]) -> Jobs:
    jobs = Jobs()
    for n, (model, owner, max_price) in enumerate(job_specs):
        jobs.add(f"j{n}", model, owner=owner, max_price=max_price)
    return jobs


@settings(max_examples=80)
@given(job_lists, candidate_lists, st.integers(1, 6), st.randoms(use_true_random=False))
def test_plan_properties(
    job_specs: list[tuple[str, str, int | None]],
    miner_specs: list[tuple[str, int, int, bool, int, int | None]],
    lookahead: int,
    rng: random.Random,
) -> None:
    candidates = [
        miner(f"m{i}", models, free, tier=tier, draining=draining, reputation=reputation, price=price)
        for i, (models, free, tier, draining, reputation, price) in enumerate(miner_specs)
    ]
    jobs = setup(job_specs)
    plan = jobs.plan(candidates, lookahead)

    by_id = {candidate.miner_id: candidate for candidate in candidates}
    assigned = [job_id for job_id, _ in plan]
    assert len(set(assigned)) == len(assigned)  # each job once
    assert not any(job_id in jobs.queue for job_id in assigned)  # and off the queue
    assert len(jobs.queue) + len(plan) == len(job_specs)
    used = Counter(miner_id for _, miner_id in plan)
    for miner_id, count in used.items():
        assert count <= by_id[miner_id].free_slots  # never over capacity
    for job_id, miner_id in plan:
        assert could_ever_serve(by_id[miner_id], jobs.requests[job_id])  # eligible: model, tier, price, not draining

    # Work-conserving up to the lookahead: no job in any model's window fits the slots that are left.
    left = [replace(m, free_slots=m.free_slots - used[m.miner_id]) for m in candidates]
    for model in "xy":
        for job_id in jobs.queue.peek([model], lookahead):
            assert choose(left, jobs.requests[job_id]) is None

    # Deterministic, whatever order the candidates come in.
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    assert setup(job_specs).plan(shuffled, lookahead) == plan
