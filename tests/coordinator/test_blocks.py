"""Blocks: sealed on the clock, verifiable from genesis, each receipt provably in the block of its settle."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from aitbc.cli import main
from aitbc.coordinator.clock import ManualClock
from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.settlement import COORDINATOR_KEY_FILE
from aitbc.domain.blocks import receipt_proof
from aitbc.domain.chain import verify_chain
from aitbc.domain.ledger import TxKind
from aitbc.domain.verify import verify_receipt
from aitbc.key_files import load_or_create_private_key
from aitbc.store.urls import open_store
from tests.coordinator.test_parts import ADMIN, CLIENT, next_command
from tests.coordinator.test_settlement import CONFIG, attached, priced_spec


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def target(home: Path, store_target: Path | str) -> Path | str:
    """On both stores (`store_target` is parametrised): SQLite's file is in `home`, where `aitbc ledger` reads it."""
    return home / "aitbc.db" if isinstance(store_target, Path) else store_target


@pytest.fixture
async def coordinator(home: Path, target: Path | str, clock: ManualClock) -> AsyncIterator[Coordinator]:
    store = await open_store(target)
    config = replace(CONFIG, signing_key=load_or_create_private_key(home / COORDINATOR_KEY_FILE), block_interval=5)
    coordinator = Coordinator(store, config, clock=clock)
    await coordinator.start()
    try:
        yield coordinator
    finally:
        await coordinator.shutdown(0)
        await store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def seal_due(coordinator: Coordinator, clock: ManualClock) -> None:
    """Let a due seal run to its end: one turn of the loop on SQLite's thread, several round trips on PostgreSQL."""
    await clock.advance(0)
    ticking = coordinator._blocks._ticking
    if ticking is not None:
        await ticking


async def run_a_priced_job(coordinator: Coordinator) -> str:
    session = await attached(coordinator)
    job = await coordinator.submit(CLIENT, priced_spec())
    await next_command(session)
    await coordinator.reports.done(
        session, job.job_id, 1, output="answer", prompt_tokens=3, completion_tokens=40, finish_reason="stop"
    )
    return (await coordinator.get(CLIENT, job.job_id)).receipt_id


async def test_blocks_seal_the_ledger_and_prove_each_receipt(coordinator: Coordinator, clock: ManualClock) -> None:
    store = coordinator._store
    [genesis] = await store.blocks()
    assert (genesis.height, genesis.header.tx_count) == (0, 0)
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    receipt_id = await run_a_priced_job(coordinator)
    await clock.advance(5)
    await seal_due(coordinator, clock)  # the tick's task has run
    blocks = await store.blocks()
    assert [block.height for block in blocks] == [0, 1]
    sealed = blocks[1]
    assert [tx.kind for tx in sealed.transactions] == [TxKind.MINT, TxKind.HOLD, TxKind.SETTLE]
    assert [receipt.receipt_id for receipt in sealed.receipts] == [receipt_id]
    assert sealed.header.previous_hash == genesis.block_hash
    report = verify_chain(blocks, coordinator_key=coordinator.public_key)
    assert report.ok, report.problem
    receipt, proof = await coordinator.receipt(receipt_id)
    assert proof == receipt_proof(sealed, receipt_id)
    checks = verify_receipt(receipt, coordinator_key=coordinator.public_key, output_text="answer", proof=proof)
    assert checks.ok, checks.checks
    assert checks.skipped == ("miner_signature",)
    await clock.advance(5)
    await clock.advance(0)
    assert len(await store.blocks()) == 2  # nothing new, no empty block


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)  # `aitbc ledger verify` reads SQLite only
async def test_aitbc_ledger_verify_replays_the_blocks_and_finds_a_tampered_balance(
    coordinator: Coordinator, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await coordinator.credit(ADMIN, CLIENT.owner_id, 1_000)
    await run_a_priced_job(coordinator)
    await coordinator._blocks.seal_pending()
    await coordinator.credit(ADMIN, CLIENT.owner_id, 5)  # not sealed yet: replayed after the blocks
    assert await asyncio.to_thread(main, ["ledger", "verify", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "blocks            2 of 2 verified" in out
    assert "unsealed          1 transactions replayed" in out
    with sqlite3.connect(home / "aitbc.db") as db:
        db.execute("UPDATE accounts SET available = available + 1 WHERE account_id = ?", (CLIENT.owner_id,))
    assert await asyncio.to_thread(main, ["ledger", "verify", "--home", str(home)]) == 1
    assert "the ledger gives" in capsys.readouterr().out
    with sqlite3.connect(home / "aitbc.db") as db:
        db.execute("UPDATE ledger SET body = replace(body, '\"amount\":1000', '\"amount\":1001') WHERE seq = 1")
    assert await asyncio.to_thread(main, ["ledger", "verify", "--home", str(home)]) == 1
    assert "cannot be read: transaction 'mint:" in capsys.readouterr().out


async def test_enough_waiting_entries_seal_a_block_before_the_timer(target: Path | str, clock: ManualClock) -> None:
    store = await open_store(target)
    config = replace(CONFIG, block_interval=60, block_max_transactions=3)
    coordinator = Coordinator(store, config, clock=clock)
    await coordinator.start()
    try:
        for _ in range(2):
            await coordinator.credit(ADMIN, CLIENT.owner_id, 10)
        await clock.advance(0)
        assert [block.height for block in await store.blocks()] == [0]  # two waiting: the timer's to seal
        await coordinator.credit(ADMIN, CLIENT.owner_id, 10)
        await seal_due(coordinator, clock)  # the early seal's task has run; no time passed
        blocks = await store.blocks()
        assert [(block.height, block.header.tx_count) for block in blocks] == [(0, 0), (1, 3)]
        await coordinator.credit(ADMIN, CLIENT.owner_id, 10)
        await clock.advance(60)  # one waiting: the timer still seals it
        await seal_due(coordinator, clock)
        assert [block.header.tx_count for block in await store.blocks()] == [0, 3, 1]
    finally:
        await coordinator.shutdown(0)
        await store.close()
