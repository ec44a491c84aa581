"""The pending-job queue: strict priority classes, round-robin over owners, bounded.

Dispatch order of one model's jobs:

1. Priority classes are strict: every HIGH job goes before any NORMAL one and
   every NORMAL before any LOW, so LOW work waits for as long as HIGH or
   NORMAL work for the model exists (who may submit HIGH is the service
   layer's decision).
2. Within a class, requeued jobs (`push(front=True)`: their miner went away)
   go first, the most recently requeued first.
3. Then owners take turns. They wait in a rotation; dispatch takes the next
   job of the owner at the front and moves that owner to the back. An owner
   without queued jobs leaves the rotation, and one that arrives or comes back
   joins at the back, so it is served once every owner already waiting has had
   one turn. A single job from client B behind a 10,000-job burst from client
   A is therefore one of the next 2 picks; two backlogged clients of one class
   alternate (requeues aside), so over any run of picks their counts differ
   by at most 1.
4. Within an owner: first in, first out.

Turns are kept per model and class: a miner only takes models it serves, so
each model's jobs are shared out among the owners waiting for that model.
Across models (for a miner serving several) the model whose next job ranks
first by (priority class, order of enqueueing) goes next; a requeued job
ranks as older than any other.

Bounds: `check_admission` refuses a new job when its owner already has
`max_per_owner` queued jobs or the queue holds `max_total`, with QUEUE_FULL
and a retry-after. `push` itself never refuses: by then the job is durable (a
submit that passed admission, a job recovered at startup, a requeue) and
dropping it would lose an acknowledged job. Submits in flight between their
check and their push can overshoot a bound by their number.

Costs do not grow with the number of queued jobs: push, remove, take and
finding a model's next job are O(1), `peek` is O(limit + models). `position`
is O(owners waiting for the model + the owner's jobs ahead), for status
queries rather than dispatch.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.priority import Priority

DEFAULT_RETRY_AFTER_SECONDS = 5.0


class QueueFullError(AitbcError):
    """QUEUE_FULL: the job was not queued; the client may retry after `retry_after_seconds`."""

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(Reason.QUEUE_FULL, message, retry_after_seconds=retry_after_seconds)


@dataclass(slots=True)
class _Lane:
    """The queued jobs of one model and priority class. Each job maps to its enqueue order."""

    requeued: OrderedDict[str, int] = field(default_factory=OrderedDict)  # next out first
    rotation: OrderedDict[str, OrderedDict[str, int]] = field(default_factory=OrderedDict)  # owner -> FIFO, never empty
    size: int = 0

    def order(self) -> Iterator[tuple[int, str]]:
        """(enqueue order, job id) in dispatch order: what taking the next job over and over would give."""
        for job_id, order in self.requeued.items():
            yield order, job_id
        turns: deque[Iterator[tuple[str, int]]] = deque()
        # The first round walks the rotation lazily, so peeking at a few jobs costs a few steps.
        for jobs in self.rotation.values():
            owner_jobs = iter(jobs.items())
            job_id, order = next(owner_jobs)
            yield order, job_id
            turns.append(owner_jobs)
        while turns:
            owner_jobs = turns.popleft()
            following = next(owner_jobs, None)
            if following is not None:
                yield following[1], following[0]
                turns.append(owner_jobs)


@dataclass(frozen=True, slots=True)
class _Placement:
    model: str
    priority: Priority
    owner_id: str
    requeued: bool


class FairQueue:
    """Pending jobs by model, in the dispatch order the module docstring states."""

    def __init__(self, *, max_per_owner: int = 1000, max_total: int = 100_000) -> None:
        if max_per_owner < 1 or max_total < 1:
            raise ValueError(f"queue bounds must be positive, got {max_per_owner} per owner and {max_total} in all")
        self.max_per_owner = max_per_owner
        self.max_total = max_total
        self._lanes: dict[tuple[str, Priority], _Lane] = {}
        self._placements: dict[str, _Placement] = {}
        self._owner_counts: dict[str, int] = {}
        self._arrivals = itertools.count()
        self._requeues = itertools.count(-1, -1)  # below every arrival: a requeued job ranks as the oldest

    def __len__(self) -> int:
        return len(self._placements)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._placements

    def owner_count(self, owner_id: str) -> int:
        return self._owner_counts.get(owner_id, 0)

    def check_admission(self, owner_id: str, *, retry_after_seconds: float = DEFAULT_RETRY_AFTER_SECONDS) -> None:
        """Raise QueueFullError if a new job from `owner_id` would pass a bound.

        The queue cannot tell when room will free up; the caller may pass an
        estimate (from its dispatch rate) instead of the default constant.
        """
        queued = self.owner_count(owner_id)
        if queued >= self.max_per_owner:
            raise QueueFullError(
                f"client {owner_id!r} has {queued} queued jobs, the per-client limit; retry later",
                retry_after_seconds=retry_after_seconds,
            )
        if len(self) >= self.max_total:
            raise QueueFullError(
                f"the queue holds {len(self)} jobs, its total limit; retry later",
                retry_after_seconds=retry_after_seconds,
            )

    def push(
        self, job_id: str, *, owner_id: str, model: str, priority: Priority = Priority.NORMAL, front: bool = False
    ) -> None:
        """Queue a job; `front` (a requeue) puts it ahead of everything of its priority. Never refuses.

        Pushing a job that is already queued does nothing.
        """
        if job_id in self._placements:
            return
        lane = self._lanes.setdefault((model, priority), _Lane())
        if front:
            lane.requeued[job_id] = next(self._requeues)
            lane.requeued.move_to_end(job_id, last=False)
        else:
            lane.rotation.setdefault(owner_id, OrderedDict())[job_id] = next(self._arrivals)
        lane.size += 1
        self._placements[job_id] = _Placement(model, priority, owner_id, front)
        self._owner_counts[owner_id] = self.owner_count(owner_id) + 1

    def remove(self, job_id: str) -> None:
        """Forget a job that leaves without being dispatched (canceled); its owner keeps its turn."""
        self._discard(job_id, dispatched=False)

    def take(self, job_id: str) -> None:
        """Remove a job because it was dispatched: its owner has had its turn and moves to the back.

        Every dispatch, pushed or claimed by a polling miner, must come through
        here rather than `remove`, or the owner would keep the front of the
        rotation and starve the others. An unknown job is ignored.
        """
        self._discard(job_id, dispatched=True)

    def models(self) -> list[str]:
        return sorted({model for model, _ in self._lanes})

    def next_model(self, models: Iterable[str]) -> str | None:
        """Of `models`, the one whose next job dispatch takes first; None if none has queued jobs."""
        heads = [(head, model) for model in set(models) if (head := next(self._order(model), None)) is not None]
        return min(heads)[1] if heads else None

    def peek(self, models: Iterable[str], limit: int) -> list[str]:
        """Up to `limit` queued jobs of `models` in dispatch order, left queued."""
        if limit <= 0:
            return []
        # merge() yields the least of the streams' current heads each time, exactly the cross-model rule.
        merged = heapq.merge(*(self._order(model) for model in sorted(set(models))))
        return [job_id for _, _, job_id in itertools.islice(merged, limit)]

    def position(self, job_id: str) -> int | None:
        """How many jobs of the same model dispatch takes before this one (0: next); None if not queued."""
        placement = self._placements.get(job_id)
        if placement is None:
            return None
        ahead = sum(
            lane.size
            for priority in Priority
            if priority < placement.priority and (lane := self._lanes.get((placement.model, priority)))
        )
        lane = self._lanes[placement.model, placement.priority]
        if placement.requeued:
            return ahead + _index(lane.requeued, job_id)
        ahead += len(lane.requeued)
        # Before the job's turn every owner gives one job per full round (`rank` rounds), and owners ahead of
        # the job's owner in the rotation one more in the job's own round.
        rank = _index(lane.rotation[placement.owner_id], job_id)
        before_owner = True
        for owner_id, jobs in lane.rotation.items():
            before_owner = before_owner and owner_id != placement.owner_id
            ahead += min(len(jobs), rank) + (before_owner and len(jobs) > rank)
        return ahead

    def _order(self, model: str) -> Iterator[tuple[Priority, int, str]]:
        for priority in Priority:
            lane = self._lanes.get((model, priority))
            if lane is not None:
                for order, job_id in lane.order():
                    yield priority, order, job_id

    def _discard(self, job_id: str, *, dispatched: bool) -> None:
        placement = self._placements.pop(job_id, None)
        if placement is None:
            return
        key = (placement.model, placement.priority)
        lane = self._lanes[key]
        if placement.requeued:
            del lane.requeued[job_id]
        else:
            jobs = lane.rotation[placement.owner_id]
            del jobs[job_id]
            if not jobs:
                del lane.rotation[placement.owner_id]
            elif dispatched:
                lane.rotation.move_to_end(placement.owner_id)
        lane.size -= 1
        if not lane.size:
            del self._lanes[key]
        remaining = self._owner_counts.pop(placement.owner_id) - 1
        if remaining:
            self._owner_counts[placement.owner_id] = remaining


def _index(jobs: Iterable[str], job_id: str) -> int:
    return next(index for index, queued in enumerate(jobs) if queued == job_id)
