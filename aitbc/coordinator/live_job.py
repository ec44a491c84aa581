"""A job that is not finished yet: its record and its events, in memory.

Watchers pull from the shared event list at their own pace, so a slow
watcher holds no queue of its own and never slows the miner or other
watchers down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord
from aitbc.domain.routing import RouteRequest


class LiveJob:
    def __init__(self, record: JobRecord, events: Sequence[JobEvent], route: RouteRequest) -> None:
        self.record = record
        # What routing needs to know of the job, worked out once.
        self.route = route
        # Held while an event is numbered, stored and appended, so sequence
        # numbers have no gaps and the store and memory agree on the order.
        self.lock = asyncio.Lock()
        self._events: list[JobEvent] = []
        self._text: list[str] = []
        self.tokens = 0
        # A client asked to cancel and the miner has not acknowledged yet: shown as `canceling`.
        self.cancel_requested = False
        # Clients watching it here. With replicas, a copy reads another replica's token chunks only while
        # someone here watches (or asks: `Replicas.fresh`); state changes it always reads.
        self.watchers = 0
        # Made when a follower waits, set and dropped by the next append: a job nobody is waiting on (a queued
        # one, or a chunk no watcher is behind) costs no Event per event.
        self._grown: asyncio.Event | None = None
        for event in events:
            self.append(event)

    @property
    def next_seq(self) -> int:
        return len(self._events) + 1

    @property
    def text(self) -> str:
        return "".join(self._text)

    def append(self, event: JobEvent) -> None:
        if event.seq != self.next_seq:
            raise ValueError(f"event {event.seq} of {event.job_id} out of order; expected {self.next_seq}")
        self._events.append(event)
        if event.kind is EventKind.TOKENS:
            self._text.append(event.text)
            self.tokens += event.token_count
        grown = self._grown
        if grown is not None:
            self._grown = None
            grown.set()

    def since(self, seq: int) -> list[JobEvent]:
        return self._events[max(seq, 1) - 1 :]

    async def follow(self, from_seq: int) -> AsyncGenerator[JobEvent, None]:
        """Events from `from_seq` on, live, until the final state."""
        seq = max(from_seq, 1)
        while True:
            batch = self.since(seq)
            for event in batch:
                yield event
                if event.is_final:
                    return
            seq += len(batch)
            if not batch:
                # Nothing can be appended between reading the batch and this wait: no await comes between.
                if self._grown is None:
                    self._grown = asyncio.Event()
                await self._grown.wait()
