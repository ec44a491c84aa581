"""Every job of an account, as it changes: the fan-out behind `WatchAccountJobs`.

`JobTable` hands each event it applies to `publish`, which never waits and
never fails the job path. Each subscriber owns a bounded queue: one that falls
`max_queued` updates behind is dropped, and its stream ends with
WATCH_TOO_SLOW once it has read what was queued, instead of slowing the miner
or buffering without bound.

State changes are passed on as they happen. Token events are coalesced into
`JobProgress`: at most one per job per `progress_interval`, the last one
delivered by a timer, and never after the job's next state change (which
carries the usage itself). The feed is live only: nothing is replayed to a new
subscriber, whose first update is `FeedStarted`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime

from aitbc.coordinator.clock import Clock, Timer
from aitbc.coordinator.live_job import LiveJob
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.events import EventKind, JobEvent

log = logging.getLogger(__name__)

# Progress updates per job per second, at most: enough for a progress bar, far fewer than tokens.
DEFAULT_PROGRESS_INTERVAL = 0.25
DEFAULT_MAX_QUEUED = 256


@dataclass(frozen=True, slots=True)
class FeedStarted:
    """The first update of every subscription: what happens from `time` on reaches it."""

    time: datetime


@dataclass(frozen=True, slots=True)
class JobProgress:
    """A running job's output so far, as of its event `seq` (a token event)."""

    job_id: str
    seq: int
    time: datetime
    completion_tokens: int
    # 0..99: completion tokens against max_tokens, as `JobRecord.progress`.
    progress: int


FeedUpdate = FeedStarted | JobEvent | JobProgress


class _Subscriber:
    def __init__(self, owner_id: str | None, max_queued: int) -> None:
        # None: every account's jobs (an admin key).
        self.owner_id = owner_id
        self._max_queued = max_queued
        self._queue: deque[FeedUpdate] = deque()
        self._changed = asyncio.Event()
        self.dropped = False

    def offer(self, update: FeedUpdate) -> bool:
        """Queue `update`; False (and dropped for good) when the subscriber is `max_queued` behind."""
        if len(self._queue) >= self._max_queued:
            self.dropped = True
        else:
            self._queue.append(update)
        self._changed.set()
        return not self.dropped

    async def updates(self) -> AsyncIterator[FeedUpdate]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            if self.dropped:
                raise AitbcError(
                    Reason.WATCH_TOO_SLOW,
                    f"the stream fell {self._max_queued} updates behind and was dropped; "
                    "read faster, then watch again (ListJobs tells what changed meanwhile)",
                )
            self._changed.clear()
            await self._changed.wait()


@dataclass(slots=True)
class _PendingProgress:
    """A job's latest token event not yet reported, and the timer that will report it."""

    live: LiveJob
    event: JobEvent
    timer: Timer


class AccountFeed:
    def __init__(
        self,
        clock: Clock,
        *,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self._clock = clock
        self._progress_interval = progress_interval
        self._max_queued = max_queued
        # By account; under None those that follow every account.
        self._subscribers: dict[str | None, set[_Subscriber]] = {}
        # When each running job last had its progress reported (monotonic), and what waits to be.
        self._last_progress: dict[str, float] = {}
        self._pending: dict[str, _PendingProgress] = {}

    async def subscribe(self, owner_id: str | None) -> AsyncGenerator[FeedUpdate, None]:
        """`FeedStarted`, then updates of `owner_id`'s jobs (every job if None) until the caller stops.

        Raises AitbcError(WATCH_TOO_SLOW) after the last queued update once the subscriber was dropped.
        """
        subscriber = _Subscriber(owner_id, self._max_queued)
        self._subscribers.setdefault(owner_id, set()).add(subscriber)
        try:
            yield FeedStarted(self._clock.now())
            async for update in subscriber.updates():
                yield update
        finally:
            self._remove(subscriber)

    def follows(self, owner_id: str) -> bool:
        """Whether anyone here watches `owner_id`'s jobs (the owner, or an admin watching everyone's)."""
        return bool(self._subscribers.get(owner_id) or self._subscribers.get(None))

    def publish(self, live: LiveJob, event: JobEvent) -> None:
        """Pass on an event `live` just appended. Called by the job table; never raises."""
        try:
            if event.kind is EventKind.TOKENS:
                self._tokens(live, event)
            else:
                self._state_change(live, event)
        except Exception:
            log.exception("the account feed failed to pass on %s of %s", event.seq, event.job_id)

    def _state_change(self, live: LiveJob, event: JobEvent) -> None:
        # Progress must not arrive after the state change that supersedes it.
        pending = self._pending.pop(event.job_id, None)
        if pending is not None:
            pending.timer.cancel()
        if event.is_final:
            self._last_progress.pop(event.job_id, None)
        self._send(live.record.owner_id, event)

    def _tokens(self, live: LiveJob, event: JobEvent) -> None:
        owner_id = live.record.owner_id
        if not self.watched(owner_id):
            return
        pending = self._pending.get(event.job_id)
        if pending is not None:
            pending.event = event  # its timer reports the newest
            return
        due = self._last_progress.get(event.job_id, float("-inf")) + self._progress_interval
        now = self._clock.monotonic()
        if now >= due:
            self._report_progress(live, event)
        else:
            timer = self._clock.call_later(due - now, lambda: self._flush(event.job_id))
            self._pending[event.job_id] = _PendingProgress(live, event, timer)

    def _flush(self, job_id: str) -> None:
        pending = self._pending.pop(job_id, None)
        if pending is not None:
            self._report_progress(pending.live, pending.event)

    def _report_progress(self, live: LiveJob, event: JobEvent) -> None:
        self._last_progress[event.job_id] = self._clock.monotonic()
        # No other event came after `event` (a state change would have cancelled this report).
        record = replace(live.record, completion_tokens=live.tokens)
        update = JobProgress(event.job_id, event.seq, event.time, live.tokens, record.progress)
        self._send(live.record.owner_id, update)

    def watched(self, owner_id: str) -> bool:
        """Whether anyone follows `owner_id`'s jobs (its own subscribers, or an admin's)."""
        return owner_id in self._subscribers or None in self._subscribers

    def _send(self, owner_id: str, update: FeedUpdate) -> None:
        for subscriber in [*self._subscribers.get(owner_id, ()), *self._subscribers.get(None, ())]:
            if not subscriber.offer(update):
                self._remove(subscriber)
                log.warning("dropped an account feed subscriber %d updates behind", self._max_queued)

    def _remove(self, subscriber: _Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.owner_id)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[subscriber.owner_id]
