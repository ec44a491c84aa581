"""Connected miners: sessions, attach and detach, leases, and the signal that miners changed.

A lease is renewed by any message from its miner. One timer per miner is
re-armed lazily from `last_seen`, so a busy stream does not reschedule a
timer for every message; when it runs out, `on_lease_expired` hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

from aitbc.coordinator.access import check_miner_owner, owns_miner
from aitbc.coordinator.candidates import CandidateCache
from aitbc.coordinator.clock import Clock, Timer
from aitbc.coordinator.miners import Assignment, MinerInfo, MinerSession, ModelOffer, model_offers
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.candidate_index import CandidateIndex
from aitbc.domain.catalog import Catalog
from aitbc.domain.errors import AitbcError, Reason, invalid_argument
from aitbc.domain.keys import Principal
from aitbc.domain.routing import Candidate

log = logging.getLogger(__name__)


class MinerRegistry:
    def __init__(
        self,
        catalog: Catalog,
        reputation: ReputationBook,
        clock: Clock,
        *,
        lease_timeout: float,
        on_lease_expired: Callable[[MinerSession, str], None],
    ) -> None:
        self._catalog = catalog
        self._reputation = reputation
        self._clock = clock
        self._lease_timeout = lease_timeout
        self._on_lease_expired = on_lease_expired
        self._admitting = True
        self._sessions: dict[str, MinerSession] = {}
        self._lease_timers: dict[str, Timer] = {}
        self._candidates = CandidateCache(self._sessions, reputation, clock)
        # Set (and replaced) whenever a miner joins, leaves or frees a slot.
        self._changed = asyncio.Event()

    def __iter__(self) -> Iterator[MinerSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, miner_id: str) -> MinerSession | None:
        return self._sessions.get(miner_id)

    def holder(self, job_id: str, miner_id: str, attempt: int) -> tuple[MinerSession, Assignment] | None:
        """The miner and its lease on (job_id, attempt), if it still holds it."""
        session = self._sessions.get(miner_id)
        assignment = session.holding(job_id, attempt) if session is not None else None
        return (session, assignment) if session is not None and assignment is not None else None

    def attestation(self, job_id: str, miner_id: str, attempt: int) -> tuple[bytes, str] | None:
        """The miner's key and its checked signature of the job, while it still holds the job's lease."""
        held = self.holder(job_id, miner_id, attempt)
        if held is None:
            return None
        session, assignment = held
        if not (session.info.public_key and assignment.signature):
            return None
        return session.info.public_key, assignment.signature

    # Joining

    def refuse_newcomers(self) -> None:
        """From now on miners are turned away: they back off and find this coordinator's successor."""
        self._admitting = False

    def check(self, info: MinerInfo) -> dict[str, str]:
        """Validate what a miner says of itself; returns its advertised model names mapped to catalog ids."""
        if not self._admitting:
            raise AitbcError(Reason.SHUTTING_DOWN, "the coordinator is shutting down; connect again later")
        info.validate()
        return self._catalog_models(info)

    def admit(self, principal: Principal, info: MinerInfo, models: dict[str, str], *, polls: bool) -> MinerSession:
        """A new session for a checked miner; the caller detaches any previous one first (see `previous`)."""
        session = MinerSession(
            info,
            principal,
            self._clock.now(),
            models=models,
            seen_at=self._clock.monotonic(),
            polls=polls,
        )
        self._sessions[info.miner_id] = session
        self._candidates.added(session)
        self._reputation.seen(session)
        self._arm_lease(session)
        self.signal_changed()
        return session

    def previous(self, principal: Principal, miner_id: str) -> MinerSession | None:
        """The miner's current session, which only its owner may replace."""
        existing = self._sessions.get(miner_id)
        if existing is not None:
            check_miner_owner(principal, miner_id, existing.owner_id)
        return existing

    def readvertise(self, session: MinerSession, info: MinerInfo, models: dict[str, str]) -> None:
        """A re-registration: new capabilities, the same leases."""
        session.advertise(info, models)
        self.renew(session)
        self._reputation.seen(session)

    def _catalog_models(self, info: MinerInfo) -> dict[str, str]:
        """The advertised names the catalog knows, mapped to catalog ids; at least one must be known."""
        known = {name: model_id for name in info.models if (model_id := self._catalog.canonical(name)) is not None}
        unknown = sorted(info.models - known.keys())
        if not known:
            raise invalid_argument("models", f"none of {unknown} is in the model catalog; add them to models.json")
        if unknown:
            log.warning("miner %s advertises models the catalog does not know: %s", info.miner_id, unknown)
        return known

    def polling_session(self, principal: Principal, miner_id: str) -> MinerSession:
        """A registered polling miner of the caller's; a call from it renews its leases."""
        session = self._sessions.get(miner_id)
        if session is None or not session.polls or not owns_miner(principal, session.owner_id):
            raise AitbcError(
                Reason.MINER_NOT_FOUND,
                f"miner {miner_id!r} is not registered (or its lease expired); register it first",
                field="miner_id",
            )
        self.renew(session)
        return session

    # Leaving

    def remove(self, session: MinerSession, reason: str) -> list[Assignment]:
        """Forget a miner and close its stream; returns the leases it held, now released."""
        if self._sessions.get(session.miner_id) is session:
            del self._sessions[session.miner_id]
            self._candidates.removed(session.miner_id)
            if (timer := self._lease_timers.pop(session.miner_id, None)) is not None:
                timer.cancel()
            # Listings show a connected miner's last heartbeat live; this keeps the last one once it is gone.
            seen = self._clock.now() - timedelta(seconds=self._clock.monotonic() - session.last_seen)
            self._reputation.last_seen_at(session.miner_id, seen)
            log.info("miner %s disconnected: %s", session.miner_id, reason)
            self.signal_changed()
        session.close()
        held = list(session.assignments.values())
        for assignment in held:
            session.release(assignment)
        return held

    def release(self, session: MinerSession, assignment: Assignment) -> None:
        if session.release(assignment):
            self.signal_changed()

    # Leases

    def renew(self, session: MinerSession) -> None:
        session.renew(self._clock.monotonic())

    def _arm_lease(self, session: MinerSession) -> None:
        delay = session.last_seen + self._lease_timeout - self._clock.monotonic()
        self._lease_timers[session.miner_id] = self._clock.call_later(delay, lambda: self._check_lease(session))

    def _check_lease(self, session: MinerSession) -> None:
        if session.closed or self._sessions.get(session.miner_id) is not session:
            return
        if self._clock.monotonic() < session.last_seen + self._lease_timeout:
            self._arm_lease(session)
            return
        reason = f"no heartbeat for {self._lease_timeout:g}s"
        log.warning("miner %s lost its leases: %s", session.miner_id, reason)
        self._reputation.lease_expired(session.miner_id)
        self._on_lease_expired(session, reason)

    # What routing and listings see

    def signal_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, seconds: float) -> None:
        """Until a miner joins, leaves or frees a slot, or `seconds` pass."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await self._clock.wait_for(changed.wait(), max(seconds, 0.0))

    async def wait_for(self, miner_id: str, seconds: float) -> bool:
        """Whether `miner_id` is connected within `seconds`."""
        deadline = self._clock.monotonic() + seconds
        while miner_id not in self._sessions and (left := deadline - self._clock.monotonic()) > 0:
            await self.wait_changed(left)
        return miner_id in self._sessions

    def candidate(self, session: MinerSession) -> Candidate:
        return self._candidates.get(session)

    def candidates(self, *, pushed_only: bool = False) -> list[Candidate]:
        listed = self._candidates.all()
        if not pushed_only:
            return listed
        return [c for c in listed if not ((s := self._sessions.get(c.miner_id)) is not None and s.polls)]

    def takers(self) -> CandidateIndex:
        """Stream miners that could take a job now (a free slot, not draining): what a dispatch pass routes among.

        Kept up to date as sessions change (aitbc/coordinator/candidates.py), so a pass costs
        O(jobs placed * log miners), not O(miners), when thousands are connected and idle."""
        return self._candidates.takers()

    def offers(self) -> dict[str, ModelOffer]:
        return {offer.model: offer for offer in model_offers(list(self._sessions.values()))}
