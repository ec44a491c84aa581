"""Money is conserved: random submits, completions, cancels, failures, expiries and restarts, checked after each.

Drives the Coordinator directly (as test_parts.py does) over a real SQLite file, and the same sequences over a
PostgreSQL database. After every step, one read snapshot of the store (a second connection: WAL, or a
REPEATABLE READ transaction, gives it a consistent view even while a write is in flight) must show: no
balance below zero but the issuer's; balances and holds adding up to the credits minted; the stored balances
equal to a replay of the ledger through the domain's `Balances`; every priced job that ended closed by
exactly one transaction, and every priced job still running holding its hold.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import MinerInfo, MinerSession
from aitbc.domain.accounts import MINT_ACCOUNT_ID
from aitbc.domain.balances import Balances
from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.jobs import DEFAULT_TTL
from aitbc.domain.keys import Principal, Role
from aitbc.domain.ledger import Transaction
from aitbc.store.base import Store
from aitbc.store.urls import open_store
from tests.coordinator.test_parts import ADMIN, MINER
from tests.coordinator.test_settlement import CONFIG, priced_spec
from tests.support.postgres import PostgresCluster

CLIENTS = (CLIENT_A := Principal("ka", Role.CLIENT, "client-a"), Principal("kb", Role.CLIENT, "client-b"))

steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(0, 1), st.integers(1, 400)),
        st.tuples(st.just("attach")),
        st.tuples(st.just("complete"), st.integers(0, 7), st.integers(0, 60), st.integers(0, 500)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("fail"), st.integers(0, 7), st.booleans()),
        st.tuples(st.just("expire")),
        st.tuples(st.just("restart")),
        st.tuples(st.just("credit"), st.integers(0, 1), st.integers(1, 3_000)),
    ),
    min_size=1,
    max_size=20,
)


@dataclass
class World:
    path: Path | str  # a SQLite file, or a PostgreSQL database's URL
    clock: ManualClock = field(default_factory=ManualClock)
    sessions: list[MinerSession] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    owners: dict[str, Principal] = field(default_factory=dict)
    minted: int = 0
    miners: int = 0
    store: Store | None = None
    coordinator: Coordinator | None = None

    async def start(self) -> Coordinator:
        self.store = await open_store(self.path)
        self.coordinator = Coordinator(self.store, CONFIG, clock=self.clock)
        await self.coordinator.start()
        return self.coordinator

    async def stop(self) -> None:
        assert self.coordinator is not None
        assert self.store is not None
        await self.coordinator.shutdown(0)
        await self.store.close()
        self.sessions = []

    def leases(self) -> list[tuple[MinerSession, str, int]]:
        self.sessions = [session for session in self.sessions if not session.closed]
        return sorted(
            (
                (session, job_id, lease.attempt)
                for session in self.sessions
                for job_id, lease in session.assignments.items()
            ),
            key=lambda held: (held[0].miner_id, held[1]),
        )

    async def step(self, coordinator: Coordinator, step: tuple[object, ...]) -> Coordinator:
        match step:
            case ("submit", int(client), int(max_tokens)):
                try:
                    job = await coordinator.submit(CLIENTS[client], priced_spec(max_tokens), queue_if_unavailable=True)
                    self.jobs.append(job.job_id)
                    self.owners[job.job_id] = CLIENTS[client]
                except AitbcError as error:
                    if error.reason is not Reason.INSUFFICIENT_FUNDS:
                        raise
            case ("attach",):
                self.miners += 1
                info = MinerInfo(miner_id=f"miner-{self.miners}", models=frozenset({"priced"}), max_concurrency=2)
                session = await coordinator.attach_miner(MINER, info)
                self.sessions.append(session)
                # The attach woke the dispatcher's own task; a pass of ours runs after it, so both are done here.
                await coordinator._dispatcher.dispatch_now()
            case ("complete", int(pick), int(prompt), int(completion)) if leases := self.leases():
                session, job_id, attempt = leases[pick % len(leases)]
                await coordinator.reports.done(
                    session, job_id, attempt, output="x", prompt_tokens=prompt, completion_tokens=completion,
                    finish_reason="stop",
                )  # fmt: skip
            case ("fail", int(pick), bool(retryable)) if leases := self.leases():
                session, job_id, attempt = leases[pick % len(leases)]
                await coordinator.reports.failed(session, job_id, attempt, error="boom", retryable=retryable)
            case ("cancel", int(pick)) if self.jobs:
                await self.cancel(coordinator, self.jobs[pick % len(self.jobs)])
            case ("expire",):
                # Past every TTL, and past every miner's lease: jobs expire, silent miners lose their jobs.
                await self.clock.advance(DEFAULT_TTL.total_seconds() + 1)
                await coordinator.reports.wait_detached()
                # Expiring runs in tasks of their own: wait for those (never for a job, which might not end).
                await asyncio.gather(*list(coordinator._clients.expiries._running), return_exceptions=True)
            case ("restart",):
                await self.stop()
                return await self.start()
            case ("credit", int(client), int(amount)):
                await coordinator.credit(ADMIN, CLIENTS[client].owner_id, amount)
                self.minted += amount
        return coordinator

    async def cancel(self, coordinator: Coordinator, job_id: str) -> None:
        held = next(((s, a) for s, j, a in self.leases() if j == job_id), None)
        task = asyncio.create_task(coordinator.cancel(self.owners[job_id], job_id))
        if held is not None:
            coordinator.reports.cancel_acknowledged(held[0], job_id, held[1], 3)  # the miner's ack, 3 tokens in
        for _ in range(100):  # let the cancel run its course on the event loop
            if task.done():
                break
            await asyncio.sleep(0)
        if not task.done():  # no ack reached it: the cancel gives up after its timeout, on the manual clock
            await self.clock.advance(CONFIG.cancel_ack_timeout)
        try:
            await task
        except AitbcError as error:  # finished already
            if error.reason is not Reason.JOB_NOT_CANCELABLE:
                raise


_ACCOUNTS = "SELECT account_id, address, available, held FROM accounts"
_LEDGER = "SELECT body FROM ledger ORDER BY seq"
_JOBS = (
    "SELECT jobs.job_id, state, holds.settled_attempt FROM jobs LEFT JOIN holds USING (job_id) WHERE model = 'priced'"
)
_RECEIPTS = "SELECT job_id FROM receipts"
Rows = list[tuple[Any, ...]]


def read_money(path: Path | str) -> tuple[Rows, Rows, Rows, Rows]:
    """Accounts, ledger bodies, priced jobs and receipts, read in one snapshot, from either store."""
    if isinstance(path, Path):
        with sqlite3.connect(path) as db:
            db.execute("BEGIN")  # one snapshot for every read below
            found = [db.execute(sql).fetchall() for sql in (_ACCOUNTS, _LEDGER, _JOBS, _RECEIPTS)]
            db.rollback()
        return found[0], found[1], found[2], found[3]

    async def read() -> tuple[Rows, Rows, Rows, Rows]:
        db = await asyncpg.connect(path)
        try:
            async with db.transaction(isolation="repeatable_read", readonly=True):
                fetched = [
                    [tuple(row) for row in await db.fetch(sql)] for sql in (_ACCOUNTS, _LEDGER, _JOBS, _RECEIPTS)
                ]
        finally:
            await db.close()
        return fetched[0], fetched[1], fetched[2], fetched[3]

    # On a thread of its own: the caller may be inside a running event loop.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, read()).result()


def check_money(path: Path | str, minted: int) -> None:
    accounts, bodies, jobs, receipt_rows = read_money(path)
    ledger = [json.loads(body) for (body,) in bodies]
    receipts = {job_id for (job_id,) in receipt_rows}
    for account_id, _, available, held in accounts:
        assert account_id == MINT_ACCOUNT_ID or (available >= 0 and held >= 0), account_id
    assert sum(available + held for _, _, available, held in accounts) == 0
    assert sum(available + held for account, _, available, held in accounts if account != MINT_ACCOUNT_ID) == minted
    replayed = Balances().apply(*(Transaction.from_json(body) for body in ledger))
    replayed.check_invariants()
    for _, address, available, held in accounts:
        assert (replayed.of(address).available, replayed.of(address).held) == (available, held)
    closing = [body["job_id"] for body in ledger if body["tx_id"].startswith("settle:")]
    assert receipts == {body["job_id"] for body in ledger if body["kind"] == "settle"}  # a receipt per charge
    assert len(closing) == len(set(closing))
    for job_id, state, settled_attempt in jobs:
        finished = state in ("completed", "failed", "canceled")
        assert (job_id in closing) is finished, (job_id, state)
        assert (settled_attempt is not None) is finished, (job_id, state)


# Derandomized: CI runs the same 40 sequences every time, so a red run is reproducible here.
@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_money_is_conserved_through_any_sequence_of_events(steps: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(conserve(Path(directory) / "aitbc.db", steps))


async def conserve(path: Path | str, steps: list[tuple[object, ...]]) -> None:
    world = World(path)
    coordinator = await world.start()
    try:
        await world.step(coordinator, ("credit", 0, 1_500))
        check_money(path, world.minted)
        for step in steps:
            coordinator = await world.step(coordinator, step)
            check_money(path, world.minted)
    finally:
        await world.stop()
    check_money(path, world.minted)


# The same 40 sequences on PostgreSQL, each on a fresh database of the session's cluster.
@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_money_is_conserved_on_postgresql(postgres_cluster: PostgresCluster, steps: list[tuple[object, ...]]) -> None:
    async def run() -> None:
        await conserve(await postgres_cluster.new_database(), steps)

    asyncio.run(run())
