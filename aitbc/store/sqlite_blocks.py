"""Blocks in SQLite: each seals the ledger rows and receipts that committed since the previous one.

A block row keeps its signed header and the last ledger `seq` and receipt `seq` it covers; its
transactions and receipts are the rows after the previous block's and up to its own, so nothing is stored
twice. A receipt commits in the transaction of the settle that paid it, so a block that ends after a
settle also holds its receipt: the receipts covered are exactly those of the settles covered.
"""

from __future__ import annotations

import json

import aiosqlite

from aitbc.domain.accounts import MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID
from aitbc.domain.blocks import Block, BlockHeader
from aitbc.domain.ledger import Transaction
from aitbc.domain.receipts import Receipt
from aitbc.store.base import BlockBuilder, LedgerStats


async def _tip(db: aiosqlite.Connection) -> tuple[BlockHeader | None, int, int]:
    async with db.execute(
        "SELECT header, tx_to_seq, receipt_to_seq FROM blocks ORDER BY height DESC LIMIT 1"
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None, 0, 0
    header, _ = BlockHeader.from_json(json.loads(row["header"]))
    return header, row["tx_to_seq"], row["receipt_to_seq"]


async def seal(db: aiosqlite.Connection, build: BlockBuilder, max_transactions: int, now_micros: int) -> Block | None:
    """Seal the next block of at most `max_transactions`; genesis (empty) first. None when nothing is new."""
    previous, tx_from, receipt_from = await _tip(db)
    async with db.execute(
        "SELECT seq, body FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?", (tx_from, max_transactions)
    ) as cursor:
        rows = list(await cursor.fetchall())
    if previous is not None and not rows:
        return None
    tx_to = rows[-1]["seq"] if rows else tx_from
    transactions = [Transaction.from_json(json.loads(row["body"])) for row in rows]
    settled = {tx.job_id for tx in transactions if tx.kind.value == "settle"}
    async with db.execute(
        "SELECT seq, job_id, body FROM receipts WHERE seq > ? ORDER BY seq", (receipt_from,)
    ) as cursor:
        candidates = list(await cursor.fetchall())
    picked = [row for row in candidates if row["job_id"] in settled]
    receipt_to = picked[-1]["seq"] if picked else receipt_from
    receipts = [Receipt.from_json(json.loads(row["body"])) for row in picked]
    block = build(previous, transactions, receipts)
    header = {**block.header.to_json(), "coordinator_signature": block.coordinator_signature}
    await db.execute(
        "INSERT INTO blocks (height, block_hash, header, tx_to_seq, receipt_to_seq, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (block.height, block.block_hash, json.dumps(header), tx_to, receipt_to, now_micros),
    )
    return block


async def receipt_block(db: aiosqlite.Connection, receipt_id: str) -> int | None:
    # receipt_to_seq never decreases with height, so the first block reaching the receipt's seq sealed it.
    async with db.execute(
        "SELECT b.height FROM receipts AS r JOIN blocks AS b ON b.receipt_to_seq >= r.seq"
        " WHERE r.receipt_id = ? ORDER BY b.receipt_to_seq, b.height LIMIT 1",
        (receipt_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row["height"])


async def read_blocks(db: aiosqlite.Connection, from_height: int, limit: int) -> list[Block]:
    """Blocks from `from_height` on, with their transactions and receipts."""
    async with db.execute(
        "SELECT height, header, tx_to_seq, receipt_to_seq FROM blocks WHERE height >= ? - 1 ORDER BY height LIMIT ?",
        (from_height, limit + 1),
    ) as cursor:
        rows = list(await cursor.fetchall())
    blocks = []
    tx_from = receipt_from = 0
    for row in rows:
        if row["height"] >= from_height:
            header, signature = BlockHeader.from_json(json.loads(row["header"]))
            async with db.execute(
                "SELECT body FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq", (tx_from, row["tx_to_seq"])
            ) as cursor:
                transactions = [Transaction.from_json(json.loads(r["body"])) for r in await cursor.fetchall()]
            async with db.execute(
                "SELECT body FROM receipts WHERE seq > ? AND seq <= ? ORDER BY seq",
                (receipt_from, row["receipt_to_seq"]),
            ) as cursor:
                receipts = [Receipt.from_json(json.loads(r["body"])) for r in await cursor.fetchall()]
            blocks.append(Block(header, signature, tuple(transactions), tuple(receipts)))
        tx_from, receipt_from = row["tx_to_seq"], row["receipt_to_seq"]
    return blocks[:limit]


async def read_stats(db: aiosqlite.Connection) -> LedgerStats:
    async with db.execute(
        "SELECT (SELECT coalesce(max(height), -1) FROM blocks),"
        " (SELECT count(*) FROM ledger), (SELECT count(*) FROM receipts),"
        " (SELECT coalesce(-sum(available), 0) FROM accounts WHERE account_id = ?),"
        " (SELECT coalesce(sum(held), 0) FROM accounts), (SELECT coalesce(sum(spent), 0) FROM accounts),"
        " (SELECT coalesce(sum(earned), 0) FROM accounts WHERE account_id = ?)",
        (MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return LedgerStats(*(int(value) for value in row))
