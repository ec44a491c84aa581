"""Each connected miner's routing `Candidate`, recomputed only when something it is made of changes.

Building a candidate reads the miner's reputation (a decayed score) and its
speed; doing that for every connected miner on every submit and every
dispatch pass made both cost O(miners), 396 ms per submit with 10,000 idle
miners. Instead each candidate is cached and marked stale by what changes it:

- its session (a slot reserved or released, draining, closed, re-advertised),
  which tells the cache itself (`MinerSession.watch`);
- its reputation record (an outcome, a reappearance), through
  `ReputationBook.watch`;
- time, since scores decay: each cached score carries the moment before
  which it cannot change (`MinerStats.score_steady_until`), kept in a heap;
- a dispatch plan, which takes slots in the index before the sessions do.

`refresh` (called by every read) recomputes just those, so reads return
exactly what building every candidate afresh would, at O(changed) cost. The
takers among them are kept ranked per model in a `CandidateIndex`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from datetime import datetime

from aitbc.coordinator.clock import Clock
from aitbc.coordinator.miners import MinerSession
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.candidate_index import CandidateIndex
from aitbc.domain.routing import Candidate

# Rebuild the heap of score expiries once stale entries outnumber live ones by this much.
_EXPIRY_SLACK = 64


class CandidateCache:
    def __init__(self, sessions: Mapping[str, MinerSession], reputation: ReputationBook, clock: Clock) -> None:
        # The registry's own dict of sessions, read here, never written.
        self._sessions = sessions
        self._reputation = reputation
        self._clock = clock
        # In the order of `sessions` (added on admit, deleted on remove), so listings keep their order.
        self._candidates: dict[str, Candidate] = {}
        self._index = CandidateIndex()
        self._dirty: set[str] = set()
        self._expiries: list[tuple[datetime, int, str]] = []
        self._expiry_of: dict[str, int] = {}  # miner id -> its live entry's sequence number in `_expiries`
        self._sequence = itertools.count()
        self._last_now: datetime | None = None
        reputation.watch(self.changed)

    def changed(self, miner_id: str) -> None:
        self._dirty.add(miner_id)

    def added(self, session: MinerSession) -> None:
        """A session the registry just admitted: it starts reporting its changes here."""
        session.watch(self.changed)
        self._recompute(session.miner_id, self._clock.now())

    def removed(self, miner_id: str) -> None:
        self._candidates.pop(miner_id, None)
        self._index.discard(miner_id)
        self._expiry_of.pop(miner_id, None)
        self._dirty.discard(miner_id)

    # Reads

    def get(self, session: MinerSession) -> Candidate:
        self.refresh()
        if self._sessions.get(session.miner_id) is session:
            return self._candidates[session.miner_id]
        return self._build(session, self._clock.now())  # a session the registry no longer holds

    def all(self) -> list[Candidate]:
        self.refresh()
        return list(self._candidates.values())

    def takers(self) -> CandidateIndex:
        """The stream miners that could take a job now, ranked per model; a dispatch plan takes slots in it."""
        self.refresh()
        return self._index

    def refresh(self) -> None:
        now = self._clock.now()
        if self._last_now is not None and now < self._last_now:
            self._dirty.update(self._candidates)  # the wall clock went back: scores may be other than cached
        self._last_now = now
        while self._expiries and self._expiries[0][0] <= now:
            _, sequence, miner_id = heapq.heappop(self._expiries)
            if self._expiry_of.get(miner_id) == sequence:
                del self._expiry_of[miner_id]
                self._dirty.add(miner_id)
        self._dirty.update(self._index.pop_taken())
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for miner_id in dirty:
            self._recompute(miner_id, now)

    # Inside

    def _build(self, session: MinerSession, now: datetime) -> Candidate:
        stats = self._reputation.stats(session.miner_id)
        return session.candidate(reputation=stats.score(now), tokens_per_second=stats.tokens_per_second)

    def _recompute(self, miner_id: str, now: datetime) -> None:
        session = self._sessions.get(miner_id)
        if session is None:
            self.removed(miner_id)
            return
        candidate = self._build(session, now)
        self._candidates[miner_id] = candidate
        if session.polls:
            self._index.discard(miner_id)  # polling miners claim jobs themselves; nothing is pushed to them
        else:
            self._index.put(candidate)
        until = self._reputation.stats(miner_id).score_steady_until(now)
        if until is None:
            self._expiry_of.pop(miner_id, None)
            return
        sequence = next(self._sequence)
        self._expiry_of[miner_id] = sequence
        heapq.heappush(self._expiries, (until, sequence, miner_id))
        if len(self._expiries) > 2 * len(self._expiry_of) + _EXPIRY_SLACK:
            live = self._expiry_of
            self._expiries = [entry for entry in self._expiries if live.get(entry[2]) == entry[1]]
            heapq.heapify(self._expiries)
