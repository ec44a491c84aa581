from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.dispatch import MinerCapacity, PendingQueue, choose_miner, plan_assignments


def miner(miner_id: str, models: set[str], free: int, draining: bool = False) -> MinerCapacity:
    return MinerCapacity(miner_id, frozenset(models), free, draining)


def test_choose_prefers_most_free_slots_and_skips_ineligible() -> None:
    miners = [miner("busy", {"a"}, 0), miner("one", {"a"}, 1), miner("three", {"a"}, 3), miner("other", {"b"}, 9)]
    assert choose_miner("a", miners) is miners[2]
    assert choose_miner("c", miners) is None
    assert choose_miner("a", [miner("draining", {"a"}, 5, draining=True)]) is None


def test_plan_is_oldest_first_and_respects_slots() -> None:
    queue = PendingQueue()
    for n, model in enumerate(["a", "b", "a", "a", "c"]):
        queue.push(f"j{n}", model)
    miners = [miner("ma", {"a"}, 2), miner("mb", {"b"}, 1)]
    assert plan_assignments(queue, miners) == [("j0", "ma"), ("j1", "mb"), ("j2", "ma")]
    assert len(queue) == 2  # j3 waits for a slot, j4 for a miner that serves c
    assert plan_assignments(queue, miners) == []


def test_removed_and_requeued_jobs() -> None:
    queue = PendingQueue()
    for n in range(3):
        queue.push(f"j{n}", "a")
    queue.remove("j0")
    queue.push("back", "a", front=True)
    assert "j0" not in queue
    assert plan_assignments(queue, [miner("m", {"a"}, 10)]) == [("back", "m"), ("j1", "m"), ("j2", "m")]


@given(
    jobs=st.lists(st.sampled_from(["a", "b", "c"]), max_size=40),
    miners=st.lists(
        st.tuples(st.sets(st.sampled_from(["a", "b", "c"]), min_size=1), st.integers(0, 4), st.booleans()), max_size=5
    ),
)
def test_plan_properties(jobs: list[str], miners: list[tuple[set[str], int, bool]]) -> None:
    queue = PendingQueue()
    for n, model in enumerate(jobs):
        queue.push(f"j{n}", model)
    capacities = [miner(f"m{i}", models, free, draining) for i, (models, free, draining) in enumerate(miners)]
    before = {m.miner_id: m.free_slots for m in capacities}
    plan = plan_assignments(queue, capacities)

    by_id = {m.miner_id: m for m in capacities}
    assigned = [job for job, _ in plan]
    assert len(set(assigned)) == len(assigned)  # no job twice
    for job, miner_id in plan:
        chosen = by_id[miner_id]
        assert jobs[int(job[1:])] in chosen.models  # serves the model
        assert not chosen.draining
    for miner_id, free in before.items():
        used = sum(1 for _, m in plan if m == miner_id)
        assert used <= max(free, 0)  # never over capacity
        assert by_id[miner_id].free_slots == free - used
    # Per model, jobs leave in submission order.
    for model in "abc":
        order = [int(job[1:]) for job in assigned if jobs[int(job[1:])] == model]
        assert order == sorted(order)
    # Work-conserving: whatever is left has no miner that could take it now.
    for model in queue.models():
        assert choose_miner(model, capacities) is None
    assert len(queue) + len(plan) == len(jobs)
