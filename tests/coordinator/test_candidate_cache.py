"""The registry's cached candidates and taker index against candidates built afresh, as sessions change.

Real parts: a SQLite store behind the reputation book, a ManualClock, sessions admitted by the registry.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.miners import Assignment, MinerInfo, MinerSession
from aitbc.coordinator.registry import MinerRegistry
from aitbc.coordinator.reputation_book import ReputationBook
from aitbc.domain.catalog import ModelEntry
from aitbc.domain.keys import Principal, Role
from aitbc.domain.routing import Candidate, RouteRequest, choose
from aitbc.store.sqlite import SqliteStore
from tests.conftest import TEST_CATALOG

MINER = Principal(key_id="m1", role=Role.MINER, owner_id="miner-owner")
ROUTES = {model: RouteRequest(ModelEntry(model), prompt_tokens=1, max_tokens=8, max_price=None) for model in "mx"}


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[MinerRegistry, ReputationBook, ManualClock]]:
    store = await SqliteStore.open(tmp_path / "aitbc.db")
    clock = ManualClock()
    reputation = ReputationBook(store, clock, write_delay=3600)
    registry = MinerRegistry(TEST_CATALOG, reputation, clock, lease_timeout=1e9, on_lease_expired=lambda *_: None)
    try:
        yield registry, reputation, clock
    finally:
        await store.close()


def admit(
    registry: MinerRegistry, miner_id: str, models: str = "m", slots: int = 1, *, polls: bool = False
) -> MinerSession:
    info = MinerInfo(miner_id=miner_id, models=frozenset(models), max_concurrency=slots)
    return registry.admit(MINER, info, registry.check(info), polls=polls)


def fresh(registry: MinerRegistry, reputation: ReputationBook, clock: ManualClock, session: MinerSession) -> Candidate:
    stats = reputation.stats(session.miner_id)
    return session.candidate(reputation=stats.score(clock.now()), tokens_per_second=stats.tokens_per_second)


def job(n: int) -> Assignment:
    return Assignment(job_id=f"j{n}", attempt=1, resume_tokens=0, assigned_at=ManualClock().now())


async def test_takers_are_never_full_draining_closed_or_for_another_model(
    parts: tuple[MinerRegistry, ReputationBook, ManualClock],
) -> None:
    registry, _, _ = parts
    full = admit(registry, "full")
    draining = admit(registry, "draining")
    closed = admit(registry, "closed")
    admit(registry, "other", "x")
    admit(registry, "polling", polls=True)
    busy = job(1)
    full.reserve(busy)
    draining.set_draining(True)
    registry.remove(closed, "test")
    assert registry.takers().best("m", ROUTES["m"]) is None
    assert not registry.takers().has_room("m")
    assert [c.miner_id for c in registry.takers()] == ["other"]

    registry.release(full, busy)  # frees its slot: offered again
    picked = registry.takers().best("m", ROUTES["m"])
    assert picked is not None
    assert picked.miner_id == "full"
    draining.set_draining(False)
    picked = registry.takers().best("m", ROUTES["m"])
    assert picked is not None
    assert picked.miner_id == "full"
    full.reserve(job(2))
    picked = registry.takers().best("m", ROUTES["m"])
    assert picked is not None
    assert picked.miner_id == "draining"


async def test_a_plan_taking_a_slot_is_undone_when_no_session_reserved_it(
    parts: tuple[MinerRegistry, ReputationBook, ManualClock],
) -> None:
    registry, _, _ = parts
    admit(registry, "only")
    plan = registry.takers()
    plan.take_slot("only")  # planned, but the job was gone by the time it was assigned: nothing reserved
    assert not plan.has_room("m")
    assert registry.takers().has_room("m")  # the next read goes by the session again


async def test_cached_candidates_match_fresh_ones_through_random_changes(
    parts: tuple[MinerRegistry, ReputationBook, ManualClock],
) -> None:
    registry, reputation, clock = parts
    rng = random.Random(13)
    held: dict[str, list[Assignment]] = {}
    jobs = iter(range(10**6))
    for step in range(600):
        sessions = list(registry)
        action = rng.randrange(9)
        session = rng.choice(sessions) if sessions else None
        if action == 0 or session is None:
            miner_id = f"m{rng.randrange(12)}"
            previous = registry.get(miner_id)
            if previous is not None:
                registry.remove(previous, "replaced")
            admit(registry, miner_id, rng.choice(["m", "x", "mx"]), rng.randint(1, 3), polls=rng.random() < 0.1)
            held[miner_id] = []
        elif action == 1 and session.free_slots > 0:
            assignment = job(next(jobs))
            session.reserve(assignment)
            held.setdefault(session.miner_id, []).append(assignment)
        elif action == 2 and held.get(session.miner_id):
            registry.release(session, held[session.miner_id].pop())
        elif action == 3:
            session.set_draining(rng.random() < 0.5)
        elif action == 4:
            reputation.completed(session.miner_id, tokens_per_second=rng.uniform(1, 50), ttft_seconds=0.1)
        elif action == 5:
            rng.choice([reputation.failed, reputation.lease_expired, reputation.caused_cancellation])(session.miner_id)
        elif action == 6:
            await clock.advance(rng.choice([0.001, 1, 60, 3600, 6 * 3600]))
        elif action == 7 and rng.random() < 0.3:
            registry.remove(session, "gone")
        elif action == 8:
            taken = registry.takers().best("m", ROUTES["m"])
            if taken is not None:
                registry.takers().take_slot(taken.miner_id)
        live = list(registry)
        assert registry.candidates() == [fresh(registry, reputation, clock, s) for s in live], step
        for s in live:
            assert registry.candidate(s) == fresh(registry, reputation, clock, s)
        pushed = [fresh(registry, reputation, clock, s) for s in live if not s.polls]
        for model, route in ROUTES.items():
            assert registry.takers().best(model, route) == choose(pushed, route), (step, model)
    assert len(list(registry)) > 3
    assert clock.now() - ManualClock().now() > timedelta(hours=1)
