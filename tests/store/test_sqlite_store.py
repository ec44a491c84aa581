"""The store contract: tests taking `store` run on SQLite and PostgreSQL (tests/store/conftest.py); those
opening a file are about SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aitbc.domain.events import EventKind, JobEvent
from aitbc.domain.jobs import JobRecord, JobSpec, SamplingParams
from aitbc.domain.keys import Role, hash_key
from aitbc.domain.states import JobState
from aitbc.store.base import JobChanges, JobMovedOnError, Store
from aitbc.store.migrations import SCHEMA_VERSION
from aitbc.store.sqlite import SqliteStore

NOW = datetime(2026, 1, 24, 15, 0, tzinfo=UTC)


def _job(job_id: str = "job_1") -> JobRecord:
    spec = JobSpec(prompt="p", model="m", params=SamplingParams())
    return JobRecord(job_id, "owner", JobState.PENDING, spec, NOW, NOW)


def _event(job_id: str, seq: int, state: JobState | None = JobState.PENDING, text: str = "") -> JobEvent:
    kind = EventKind.STATE if state else EventKind.TOKENS
    return JobEvent(job_id=job_id, seq=seq, time=NOW, kind=kind, state=state, text=text, token_count=len(text))


async def test_schema_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "a.db")
    assert await store.schema_version() == SCHEMA_VERSION
    await store.close()
    # Reopening is a no-op migration.
    store = await SqliteStore.open(tmp_path / "a.db")
    await store.close()
    with sqlite3.connect(tmp_path / "a.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "a.db") as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteStore.open(tmp_path / "a.db")


async def test_job_round_trip_and_events(store: Store) -> None:
    running = replace(_job(), state=JobState.RUNNING)  # output is stored only for a job on a miner
    await store.create_job(running, _event("job_1", 1))
    assert await store.get_job("job_1") == running
    await store.append_events([_event("job_1", 2, None, "hi")])
    events = await store.events("job_1")
    assert [(e.seq, e.kind, e.text) for e in events] == [(1, EventKind.STATE, ""), (2, EventKind.TOKENS, "hi")]
    assert [e.seq for e in await store.events("job_1", from_seq=2)] == [2]
    with pytest.raises(JobMovedOnError):
        await store.append_events([_event("job_1", 2, None, "dup")])
    assert [e.text for e in await store.events("job_1")] == ["", "hi"]


async def test_compare_and_set_lets_exactly_one_racer_win(store: Store) -> None:
    await store.create_job(_job(), _event("job_1", 1))

    async def claim(miner: str, seq: int) -> JobRecord | None:
        return await store.transition(
            "job_1",
            from_states={JobState.PENDING},
            attempt=0,
            to=JobState.ASSIGNED,
            changes=JobChanges(miner_id=miner, attempt=1),
            now=NOW,
            event=_event("job_1", seq, JobState.ASSIGNED),
        )

    results = await asyncio.gather(*(claim(f"m{n}", 2) for n in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].state is JobState.ASSIGNED
    assert winners[0].attempt == 1
    assert len(await store.events("job_1")) == 2  # the losers wrote no event
    # A stale attempt cannot move the job either.
    stale = await store.transition(
        "job_1",
        from_states={JobState.ASSIGNED},
        attempt=0,
        to=JobState.RUNNING,
        changes=JobChanges(),
        now=NOW,
        event=_event("job_1", 3, JobState.RUNNING),
    )
    assert stale is None


async def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "a.db")
    principal = await store.add_api_key(hash_key("secret"), Role.CLIENT, "acct", NOW)
    assert await store.principal_for(hash_key("secret")) == principal
    assert await store.principal_for(hash_key("other")) is None
    await store.close()
    with sqlite3.connect(tmp_path / "a.db") as raw:
        dump = "\n".join(raw.iterdump())
    assert "secret" not in dump


async def test_api_keys_revocation_and_last_use(store: Store) -> None:
    first = await store.add_api_key(hash_key("one"), Role.CLIENT, "acct", NOW)
    later = NOW.replace(hour=16)
    second = await store.add_api_key(hash_key("two"), Role.MINER, "acct", later)
    await store.add_api_key(hash_key("three"), Role.CLIENT, "other", later)
    assert [key.key_id for key in await store.api_keys(owner_id="acct")] == [first.key_id, second.key_id]
    assert len(await store.api_keys(owner_id=None)) == 3

    await store.record_key_use({first.key_id: later})
    await store.record_key_use({first.key_id: NOW})  # an older use changes nothing
    used = await store.api_key(first.key_id)
    assert used is not None
    assert (used.last_used_at, used.revoked_at) == (later, None)

    revoked = await store.revoke_api_key(first.key_id, later)
    assert revoked is not None
    assert revoked.revoked_at == later
    again = await store.revoke_api_key(first.key_id, later.replace(hour=17))
    assert again is not None
    assert again.revoked_at == later  # revoked once, for good
    assert await store.principal_for(hash_key("one")) is None
    assert await store.principal_for(hash_key("two")) == second
    assert await store.revoke_api_key("key_missing", later) is None
