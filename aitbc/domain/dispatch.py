"""Dispatch rules: which pending job goes to which connected miner.

Pure data and decisions; the coordinator applies them. The rule for now:
jobs leave in submission order (per model, oldest head first across models);
a job goes to a miner that serves its model, is not draining and has a free
slot, preferring the one with the most free slots so load spreads out.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(slots=True)
class MinerCapacity:
    """What dispatch needs to know about one connected miner."""

    miner_id: str
    models: frozenset[str]
    free_slots: int
    draining: bool = False

    def can_take(self, model: str) -> bool:
        return not self.draining and self.free_slots > 0 and model in self.models


def choose_miner(model: str, miners: Iterable[MinerCapacity]) -> MinerCapacity | None:
    eligible = [miner for miner in miners if miner.can_take(model)]
    return max(eligible, key=lambda miner: miner.free_slots, default=None)


class PendingQueue:
    """Pending jobs in submission order, bucketed by model.

    Buckets keep dispatch cost proportional to the assignments made, not to
    the number of waiting jobs: a backlog for a model nobody serves is never
    scanned.
    """

    def __init__(self) -> None:
        self._order = itertools.count()
        self._by_model: dict[str, deque[tuple[int, str]]] = {}
        self._model_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._model_of)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._model_of

    def push(self, job_id: str, model: str, *, front: bool = False) -> None:
        """Queue a job; `front` puts a requeued job ahead of newer ones."""
        if job_id in self._model_of:
            return
        bucket = self._by_model.setdefault(model, deque())
        if front:
            oldest = bucket[0][0] if bucket else next(self._order)
            bucket.appendleft((oldest - 1, job_id))
        else:
            bucket.append((next(self._order), job_id))
        self._model_of[job_id] = model

    def remove(self, job_id: str) -> None:
        """Forget a job (canceled while pending); its bucket entry is skipped lazily."""
        self._model_of.pop(job_id, None)

    def models(self) -> list[str]:
        return [model for model, bucket in self._by_model.items() if bucket]

    def _head(self, model: str) -> tuple[int, str] | None:
        bucket = self._by_model.get(model)
        while bucket:
            order, job_id = bucket[0]
            if self._model_of.get(job_id) == model:
                return order, job_id
            bucket.popleft()
        return None

    def pop_head(self, model: str) -> str:
        head = self._head(model)
        if head is None:
            raise KeyError(model)
        self._by_model[model].popleft()
        del self._model_of[head[1]]
        return head[1]

    def peek(self, models: Iterable[str], limit: int) -> list[str]:
        """Up to `limit` queued jobs for any of `models`, oldest first, leaving them queued."""
        buckets = [
            [(order, job_id) for order, job_id in self._by_model.get(model, ()) if self._model_of.get(job_id) == model]
            for model in set(models)
        ]
        return [job_id for _, job_id in itertools.islice(heapq.merge(*buckets), limit)]

    def iter_heads(self, models: Iterable[str]) -> Iterator[tuple[int, str, str]]:
        for model in models:
            head = self._head(model)
            if head is not None:
                yield head[0], head[1], model


def plan_assignments(queue: PendingQueue, miners: list[MinerCapacity]) -> list[tuple[str, str]]:
    """Take as many jobs off `queue` as the miners can start now.

    Returns (job_id, miner_id) pairs, oldest job first, and decrements the
    miners' free slots as it goes.
    """
    servable = {model for model in queue.models() if any(miner.can_take(model) for miner in miners)}
    heads = list(queue.iter_heads(servable))
    heapq.heapify(heads)
    plan: list[tuple[str, str]] = []
    while heads:
        _, job_id, model = heapq.heappop(heads)
        miner = choose_miner(model, miners)
        if miner is None:
            continue  # every miner for this model is full now; its bucket waits
        queue.pop_head(model)
        miner.free_slots -= 1
        plan.append((job_id, miner.miner_id))
        following = next(queue.iter_heads([model]), None)
        if following is not None:
            heapq.heappush(heads, following)
    return plan
