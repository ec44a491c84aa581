"""The miners that could take a job now, kept ranked per model, so that routing a job costs O(log n).

`routing.choose` scores every candidate to find the best eligible one; with
thousands of idle miners connected, that made each dispatch pass cost
O(miners) even to place one job. A `CandidateIndex` keeps each miner's
`Candidate` in one heap per model it serves, ordered by `routing.rank_key`
(best first). Picking a miner for a job walks that heap in rank order and
stops at the first miner eligible for the job, which is `choose`'s pick, as
`rank_key` is a total order (it ends with the unique miner id): one step in
the common case, more only for jobs that most miners cannot take (a tight
`max_price`, a hardware minimum).

Only takers are in the heaps: miners with a free slot that are not draining.
`put` replaces a miner's candidate; the entries it replaces stay in the heaps
and are skipped (and dropped from the top, or by a rebuild once they
outnumber the live ones), so an update costs O(models * log n).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace

from aitbc.domain.routing import Candidate, RouteRequest, eligible_now, rank_key

# Rebuild a model's heap once it holds this many times its live entries (plus a constant, for small heaps).
_STALE_FACTOR = 2
_STALE_SLACK = 32


class _Entry:
    """One candidate in its models' heaps; `heapq` is a min-heap, so "less" means "ranks higher"."""

    __slots__ = ("candidate", "key")

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.key = rank_key(candidate)

    def __lt__(self, other: _Entry) -> bool:
        return self.key > other.key


def is_taker(candidate: Candidate) -> bool:
    """Could take some job now: a free slot and not draining (a closed miner's candidate says draining)."""
    return candidate.free_slots > 0 and not candidate.draining


class CandidateIndex:
    """Takers by model, best ranked first; what `scheduler.plan_assignments` routes among."""

    def __init__(self, candidates: Iterable[Candidate] = ()) -> None:
        self._current: dict[str, _Entry] = {}  # every miner put here, taker or not
        self._heaps: dict[str, list[_Entry]] = {}
        self._live: Counter[str] = Counter()  # takers per model
        self._taken: set[str] = set()
        for candidate in candidates:
            self.put(candidate)

    def __len__(self) -> int:
        """The takers."""
        return sum(1 for entry in self._current.values() if is_taker(entry.candidate))

    def __iter__(self) -> Iterator[Candidate]:
        """The takers, in no particular order."""
        return (entry.candidate for entry in list(self._current.values()) if is_taker(entry.candidate))

    def get(self, miner_id: str) -> Candidate | None:
        entry = self._current.get(miner_id)
        return None if entry is None else entry.candidate

    def put(self, candidate: Candidate) -> None:
        """Add or replace a miner's candidate (a miner that is no taker is kept out of the heaps)."""
        self._forget(candidate.miner_id)
        entry = _Entry(candidate)
        self._current[candidate.miner_id] = entry
        if not is_taker(candidate):
            return
        for model in candidate.models:
            heap = self._heaps.setdefault(model, [])
            heapq.heappush(heap, entry)
            self._live[model] += 1
            if len(heap) > _STALE_FACTOR * self._live[model] + _STALE_SLACK:
                heap[:] = [e for e in heap if self._is_live(e)]
                heapq.heapify(heap)

    def discard(self, miner_id: str) -> None:
        self._forget(miner_id)
        self._current.pop(miner_id, None)

    # What a dispatch plan asks

    def has_room(self, model: str) -> bool:
        """Some taker serves `model`."""
        return self._top(model) is not None

    def best(self, model: str, request: RouteRequest) -> Candidate | None:
        """`routing.choose`'s pick for `request` among the takers serving `model`."""
        if self._top(model) is None:
            return None
        heap = self._heaps[model]
        # Best-first walk of the heap's tree, so nothing moves: each node ranks above its children.
        frontier: list[tuple[_Entry, int]] = [(heap[0], 0)]
        while frontier:
            entry, at = heapq.heappop(frontier)
            if self._is_live(entry) and eligible_now(entry.candidate, request):
                return entry.candidate
            for child in (2 * at + 1, 2 * at + 2):
                if child < len(heap):
                    heapq.heappush(frontier, (heap[child], child))
        return None

    def take_slot(self, miner_id: str) -> Candidate:
        """Count one of the miner's free slots as taken by the plan; returns the candidate as it is now."""
        candidate = self._current[miner_id].candidate
        updated = replace(candidate, free_slots=candidate.free_slots - 1)
        self.put(updated)
        self._taken.add(miner_id)
        return updated

    def pop_taken(self) -> set[str]:
        """The miners whose slots plans took since the last call: their candidates say less than their sessions."""
        taken, self._taken = self._taken, set()
        return taken

    # Inside

    def _is_live(self, entry: _Entry) -> bool:
        return self._current.get(entry.candidate.miner_id) is entry

    def _forget(self, miner_id: str) -> None:
        old = self._current.get(miner_id)
        if old is not None and is_taker(old.candidate):
            for model in old.candidate.models:
                self._live[model] -= 1
                if not self._live[model]:
                    del self._live[model]

    def _top(self, model: str) -> _Entry | None:
        """The best live entry for `model`, dropping stale ones above it."""
        heap = self._heaps.get(model)
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)
        if not heap:
            self._heaps.pop(model, None)
            return None
        return heap[0]
