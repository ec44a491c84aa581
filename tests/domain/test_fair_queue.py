from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.fair_queue import DEFAULT_RETRY_AFTER_SECONDS, FairQueue, QueueFullError
from aitbc.domain.priority import Priority, parse_priority


def dispatch(queue: FairQueue, models: Iterable[str], count: int | None = None) -> list[str]:
    """Take jobs one at a time as the dispatcher does: the next model's next job."""
    models = list(models)
    taken: list[str] = []
    while count is None or len(taken) < count:
        model = queue.next_model(models)
        if model is None:
            break
        job_id = queue.peek([model], 1)[0]
        queue.take(job_id)
        taken.append(job_id)
    return taken


def test_parse_priority() -> None:
    assert parse_priority("") is Priority.NORMAL
    assert parse_priority(" High ") is Priority.HIGH
    assert parse_priority("low") is Priority.LOW
    with pytest.raises(AitbcError) as caught:
        parse_priority("urgent")
    assert (caught.value.reason, caught.value.field) == (Reason.INVALID_ARGUMENT, "priority")


def test_a_single_job_is_not_starved_by_a_burst() -> None:
    queue = FairQueue(max_per_owner=20_000)
    for n in range(10_000):
        queue.push(f"a{n}", owner_id="A", model="m")
    queue.push("b0", owner_id="B", model="m")
    assert queue.position("b0") == 1
    assert queue.peek(["m"], 2) == ["a0", "b0"]
    assert dispatch(queue, ["m"], 2) == ["a0", "b0"]
    assert queue.position("a9999") == 9998


def test_fifo_within_an_owner_and_round_robin_across_owners() -> None:
    queue = FairQueue()
    for job_id, owner in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B"), ("c1", "C"), ("b2", "B")]:
        queue.push(job_id, owner_id=owner, model="m")
    assert dispatch(queue, ["m"]) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_a_returning_owner_joins_the_back_of_the_rotation() -> None:
    queue = FairQueue()
    queue.push("a1", owner_id="A", model="m")
    queue.push("b1", owner_id="B", model="m")
    queue.push("b2", owner_id="B", model="m")
    assert dispatch(queue, ["m"], 1) == ["a1"]  # A has nothing left and leaves the rotation
    queue.push("a2", owner_id="A", model="m")
    assert dispatch(queue, ["m"]) == ["b1", "a2", "b2"]


def test_take_ends_the_owners_turn_and_remove_does_not() -> None:
    def queue_of_a_then_b() -> FairQueue:
        queue = FairQueue()
        for job_id, owner in [("a1", "A"), ("a2", "A"), ("b1", "B")]:
            queue.push(job_id, owner_id=owner, model="m")
        return queue

    taken = queue_of_a_then_b()
    taken.take("a1")
    assert taken.peek(["m"], 9) == ["b1", "a2"]
    removed = queue_of_a_then_b()
    removed.remove("a1")
    assert removed.peek(["m"], 9) == ["a2", "b1"]
    claimed_out_of_order = queue_of_a_then_b()
    claimed_out_of_order.take("a2")  # a polling miner may claim any job it was shown
    assert claimed_out_of_order.peek(["m"], 9) == ["b1", "a1"]


def test_priority_classes_are_strict() -> None:
    queue = FairQueue()
    queue.push("low", owner_id="A", model="m", priority=Priority.LOW)
    queue.push("normal", owner_id="A", model="m")
    queue.push("high", owner_id="B", model="m", priority=Priority.HIGH)
    assert [queue.position(job) for job in ("high", "normal", "low")] == [0, 1, 2]
    assert dispatch(queue, ["m"]) == ["high", "normal", "low"]


def test_requeued_jobs_go_first_in_their_class() -> None:
    queue = FairQueue()
    queue.push("high", owner_id="A", model="m", priority=Priority.HIGH)
    queue.push("a1", owner_id="A", model="m")
    queue.push("again", owner_id="B", model="m", front=True)
    queue.push("again2", owner_id="C", model="m", front=True)
    queue.push("a1", owner_id="A", model="m", front=True)  # already queued: nothing changes
    assert dispatch(queue, ["m"]) == ["high", "again2", "again", "a1"]


def test_models_interleave_by_priority_then_age() -> None:
    queue = FairQueue()
    queue.push("x1", owner_id="A", model="x")
    queue.push("y1", owner_id="A", model="y")
    queue.push("x2", owner_id="A", model="x")
    queue.push("y-high", owner_id="B", model="y", priority=Priority.HIGH)
    queue.push("x-requeued", owner_id="B", model="x", front=True)
    assert queue.models() == ["x", "y"]
    assert queue.next_model(["x", "y", "unknown"]) == "y"
    assert queue.peek(["x", "y"], 9) == ["y-high", "x-requeued", "x1", "y1", "x2"]
    assert dispatch(queue, ["x", "y"]) == ["y-high", "x-requeued", "x1", "y1", "x2"]
    assert queue.next_model(["x"]) is None
    assert queue.models() == []


def test_bounds_per_owner_and_in_total() -> None:
    queue = FairQueue(max_per_owner=2, max_total=3)
    for n in range(2):
        queue.check_admission("A")
        queue.push(f"a{n}", owner_id="A", model="m")
    with pytest.raises(QueueFullError) as per_owner:
        queue.check_admission("A")
    assert per_owner.value.reason is Reason.QUEUE_FULL
    assert per_owner.value.retry_after_seconds == DEFAULT_RETRY_AFTER_SECONDS
    assert "per-client limit" in per_owner.value.message
    queue.check_admission("B")
    queue.push("b0", owner_id="B", model="m")
    with pytest.raises(QueueFullError, match="total limit") as total:
        queue.check_admission("C", retry_after_seconds=30.0)
    assert total.value.retry_after_seconds == 30.0
    queue.push("a2", owner_id="A", model="m", front=True)  # a requeue is never refused
    assert (len(queue), queue.owner_count("A")) == (4, 3)
    for job_id in ("a0", "a1", "a2"):
        queue.remove(job_id)
    queue.check_admission("A")
    assert queue.owner_count("A") == 0
    with pytest.raises(ValueError, match="positive"):
        FairQueue(max_total=0)


def test_membership_and_unknown_ids() -> None:
    queue = FairQueue()
    queue.push("j", owner_id="A", model="m")
    assert "j" in queue
    assert "k" not in queue
    queue.remove("k")
    queue.take("k")
    assert queue.position("k") is None
    assert queue.peek(["m"], 0) == []
    assert queue.peek(["other"], 5) == []
    queue.remove("j")
    assert len(queue) == 0
    assert "j" not in queue


owners = st.sampled_from("ABC")
models = st.sampled_from("xy")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), owners, models, st.sampled_from(Priority), st.booleans()),
        st.tuples(st.just("remove"), st.integers(0, 60)),
        st.tuples(st.just("take")),
    ),
    max_size=60,
)


def build(ops: list[tuple[object, ...]]) -> FairQueue:
    queue = FairQueue()
    pushed: list[str] = []
    for op in ops:
        match op:
            case ("push", str(owner), str(model), Priority() as priority, bool(front)):
                job_id = f"j{len(pushed)}"
                pushed.append(job_id)
                queue.push(job_id, owner_id=owner, model=model, priority=priority, front=front)
            case ("remove", int(index)):
                if index < len(pushed):
                    queue.remove(pushed[index])
            case ("take",):
                dispatch(queue, "xy", 1)
    return queue


@settings(max_examples=100)
@given(operations)
def test_positions_and_peek_match_the_actual_dispatch_order(ops: list[tuple[object, ...]]) -> None:
    queue = build(ops)
    size = len(queue)
    peeked = queue.peek(["x", "y"], size + 1)
    per_model = {model: queue.peek([model], size) for model in "xy"}
    positions = {model: [queue.position(job_id) for job_id in jobs] for model, jobs in per_model.items()}
    taken = dispatch(queue, ["x", "y"])
    assert taken == peeked
    assert len(taken) == size
    for model, jobs in per_model.items():
        assert positions[model] == list(range(len(jobs)))
        assert [job_id for job_id in taken if job_id in jobs] == jobs
    assert len(queue) == 0


@settings(max_examples=100)
@given(st.lists(st.sampled_from(["A", "B", "take"]), max_size=80))
def test_two_backlogged_clients_share_within_one_job(events: list[str]) -> None:
    queue = FairQueue()
    backlogged_picks: list[str] = []  # picks made while both clients had queued jobs
    for n, event in enumerate(events):
        if event != "take":
            queue.push(f"{event}{n}", owner_id=event, model="m")
            continue
        both = queue.owner_count("A") > 0 and queue.owner_count("B") > 0
        taken = dispatch(queue, ["m"], 1)
        if both:
            backlogged_picks.append(taken[0][0])
        else:
            backlogged_picks.clear()  # a window ends when one client runs dry
        for start, end in itertools.combinations(range(len(backlogged_picks) + 1), 2):
            window = backlogged_picks[start:end]
            assert abs(window.count("A") - window.count("B")) <= 1
