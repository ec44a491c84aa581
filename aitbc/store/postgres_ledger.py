"""The PostgreSQL side of money and blocks: holds, settlements, mints, receipts and sealing.

Each function runs on a connection inside the caller's transaction (`Connections.write`), so a hold commits
with its job and a settlement with the job's terminal state. What to write is computed by
`aitbc.store.settlement`, the same code the SQLite store uses.

Every transaction that appends to the ledger or the receipts, and every block seal, first takes one
transaction-scoped advisory lock (`LEDGER_LOCK`). Identity values are handed out at insert time but become
visible at commit, so without it a ledger row with a lower `seq` could commit after a block sealed past it
and never be sealed; under the lock `seq` order is commit order, and two coordinators sealing at once seal
one block after the other. The lock is always taken before any account row is touched, so it cannot deadlock
with them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aitbc.domain.accounts import MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID, address_of
from aitbc.domain.blocks import Block, BlockHeader
from aitbc.domain.ledger import Transaction, hold, mint
from aitbc.domain.money import TokenPrices
from aitbc.domain.receipts import Receipt
from aitbc.store.base import AccountRecord, BlockBuilder, HoldRequest, LedgerEntry, LedgerStats, SettleRequest
from aitbc.store.postgres_migrations import LEDGER_LOCK
from aitbc.store.postgres_pool import pg
from aitbc.store.settlement import account_moves, check_hold, plan_settlement
from aitbc.store.sqlite_ledger import ACCOUNT_COLUMNS, account_from_row
from aitbc.store.sqlite_rows import micros, moment

_NO_CURSOR = 2**63 - 1
OPEN_HOLD = "SELECT 1 FROM holds WHERE holds.job_id = jobs.job_id AND holds.settled_attempt IS NULL"

Connection = Any  # asyncpg.Connection (asyncpg ships no type information)


async def lock_ledger(db: Connection) -> None:
    await db.execute("SELECT pg_advisory_xact_lock($1)", LEDGER_LOCK)


async def read_account(db: Connection, account_id: str, *, for_update: bool = False) -> AccountRecord:
    lock = " FOR UPDATE" if for_update else ""
    row = await db.fetchrow(pg(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?{lock}"), account_id)
    return AccountRecord(account_id, address_of(account_id)) if row is None else account_from_row(row)


async def read_accounts(db: Connection) -> list[AccountRecord]:
    rows = await db.fetch(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY account_id")
    return [account_from_row(row) for row in rows]


async def _apply(db: Connection, tx: Transaction, account_ids: set[str], now: datetime) -> bool:
    """Record `tx` and move its postings; False (and nothing moved) if its id was applied before. The caller
    holds the ledger lock."""
    inserted = await db.fetchval(
        pg(
            "INSERT INTO ledger (tx_id, kind, job_id, body, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (tx_id) DO NOTHING RETURNING seq"
        ),
        tx.tx_id,
        tx.kind.value,
        tx.job_id,
        tx.canonical_bytes().decode(),
        micros(now),
    )
    if inserted is None:
        return False
    await db.executemany(
        pg("INSERT INTO accounts (account_id, address, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"),
        [(account_id, address_of(account_id), micros(now)) for account_id in sorted(account_ids)],
    )
    for column, amount, address in account_moves(tx):
        await db.execute(pg(f"UPDATE accounts SET {column} = {column} + ? WHERE address = ?"), amount, address)
    return True


async def place_hold(db: Connection, job_id: str, request: HoldRequest, now: datetime) -> None:
    await lock_ledger(db)
    check_hold(request, (await read_account(db, request.account_id, for_update=True)).available)
    await _apply(db, hold(job_id, address_of(request.account_id), request.amount), {request.account_id}, now)
    await db.execute(
        pg("INSERT INTO holds (job_id, account_id, amount, input_per_1k, output_per_1k) VALUES (?, ?, ?, ?, ?)"),
        job_id,
        request.account_id,
        request.amount,
        request.prices.input_per_1k,
        request.prices.output_per_1k,
    )


async def settle_hold(db: Connection, job_id: str, attempt: int, request: SettleRequest, now: datetime) -> bool:
    """Close the job's open hold, if it has one; True if a receipt was issued."""
    await lock_ledger(db)
    row = await db.fetchrow(
        pg(
            "SELECT account_id, amount, input_per_1k, output_per_1k FROM holds"
            " WHERE job_id = ? AND settled_attempt IS NULL FOR UPDATE"
        ),
        job_id,
    )
    if row is None:
        return False
    prices = TokenPrices(row["input_per_1k"], row["output_per_1k"])
    plan = plan_settlement(job_id, row["account_id"], row["amount"], prices, request)
    await _apply(db, plan.transaction, plan.accounts, now)
    await db.execute(
        pg("UPDATE holds SET settled_attempt = ?, charge = ? WHERE job_id = ?"),
        attempt,
        plan.settlement.charge,
        job_id,
    )
    receipt = plan.receipt
    if receipt is None:
        return False
    await db.execute(
        pg("INSERT INTO receipts (receipt_id, job_id, client, body, created_at) VALUES (?, ?, ?, ?, ?)"),
        receipt.receipt_id,
        job_id,
        receipt.body.client,
        receipt.canonical_bytes().decode(),
        micros(now),
    )
    await db.execute(pg("UPDATE jobs SET receipt_id = ? WHERE job_id = ?"), receipt.receipt_id, job_id)
    return True


async def credit(db: Connection, account_id: str, amount: int, tx_id: str, now: datetime) -> None:
    await lock_ledger(db)
    await _apply(db, mint(tx_id, address_of(account_id), amount), {MINT_ACCOUNT_ID, account_id}, now)


async def read_receipt(db: Connection, receipt_id: str) -> Receipt | None:
    body = await db.fetchval(pg("SELECT body FROM receipts WHERE receipt_id = ?"), receipt_id)
    return None if body is None else Receipt.from_json(json.loads(body))


async def read_receipts(db: Connection, client: str | None, limit: int) -> list[Receipt]:
    where, args = ("WHERE client = ?", (client,)) if client is not None else ("", ())
    rows = await db.fetch(pg(f"SELECT body FROM receipts {where} ORDER BY seq DESC LIMIT ?"), *args, limit)
    return [Receipt.from_json(json.loads(row["body"])) for row in rows]


async def read_receipts_before(db: Connection, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
    before = _NO_CURSOR if before_seq is None else before_seq
    rows = await db.fetch(pg("SELECT seq, body FROM receipts WHERE seq < ? ORDER BY seq DESC LIMIT ?"), before, limit)
    return [(int(row["seq"]), Receipt.from_json(json.loads(row["body"]))) for row in rows]


async def read_ledger(db: Connection, after_seq: int, limit: int) -> list[LedgerEntry]:
    sql = "SELECT seq, body, created_at FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?"
    return _entries(await db.fetch(pg(sql), after_seq, limit))


async def read_ledger_before(db: Connection, before_seq: int | None, limit: int) -> list[LedgerEntry]:
    before = _NO_CURSOR if before_seq is None else before_seq
    sql = "SELECT seq, body, created_at FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?"
    return _entries(await db.fetch(pg(sql), before, limit))


def _entries(rows: list[Any]) -> list[LedgerEntry]:
    entries = []
    for row in rows:
        time = moment(row["created_at"])
        assert time is not None
        entries.append(LedgerEntry(int(row["seq"]), Transaction.from_json(json.loads(row["body"])), time))
    return entries


# Blocks: the same layout as SQLite's (aitbc/store/sqlite_blocks.py).


async def seal(db: Connection, build: BlockBuilder, max_transactions: int, now_micros: int) -> Block | None:
    """Seal the next block of at most `max_transactions`; genesis (empty) first. None when nothing is new.

    Under the ledger lock: no ledger row is being appended meanwhile, and a second sealer waits for this one
    and then builds on its block."""
    await lock_ledger(db)
    tip = await db.fetchrow("SELECT header, tx_to_seq, receipt_to_seq FROM blocks ORDER BY height DESC LIMIT 1")
    previous, tx_from, receipt_from = (None, 0, 0)
    if tip is not None:
        previous, _ = BlockHeader.from_json(json.loads(tip["header"]))
        tx_from, receipt_from = int(tip["tx_to_seq"]), int(tip["receipt_to_seq"])
    rows = await db.fetch(
        pg("SELECT seq, body FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?"), tx_from, max_transactions
    )
    if previous is not None and not rows:
        return None
    tx_to = int(rows[-1]["seq"]) if rows else tx_from
    transactions = [Transaction.from_json(json.loads(row["body"])) for row in rows]
    settled = {tx.job_id for tx in transactions if tx.kind.value == "settle"}
    candidates = await db.fetch(pg("SELECT seq, job_id, body FROM receipts WHERE seq > ? ORDER BY seq"), receipt_from)
    picked = [row for row in candidates if row["job_id"] in settled]
    receipt_to = int(picked[-1]["seq"]) if picked else receipt_from
    receipts = [Receipt.from_json(json.loads(row["body"])) for row in picked]
    block = build(previous, transactions, receipts)
    header = {**block.header.to_json(), "coordinator_signature": block.coordinator_signature}
    await db.execute(
        pg(
            "INSERT INTO blocks (height, block_hash, header, tx_to_seq, receipt_to_seq, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        ),
        block.height,
        block.block_hash,
        json.dumps(header),
        tx_to,
        receipt_to,
        now_micros,
    )
    return block


async def receipt_block(db: Connection, receipt_id: str) -> int | None:
    height = await db.fetchval(
        pg(
            "SELECT b.height FROM receipts AS r JOIN blocks AS b ON b.receipt_to_seq >= r.seq"
            " WHERE r.receipt_id = ? ORDER BY b.receipt_to_seq, b.height LIMIT 1"
        ),
        receipt_id,
    )
    return None if height is None else int(height)


async def read_blocks(db: Connection, from_height: int, limit: int) -> list[Block]:
    rows = await db.fetch(
        pg(
            "SELECT height, header, tx_to_seq, receipt_to_seq FROM blocks WHERE height >= ?::bigint - 1"
            " ORDER BY height LIMIT ?"
        ),
        from_height,
        limit + 1,
    )
    blocks = []
    tx_from = receipt_from = 0
    for row in rows:
        if row["height"] >= from_height:
            header, signature = BlockHeader.from_json(json.loads(row["header"]))
            transactions = await db.fetch(
                pg("SELECT body FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq"), tx_from, row["tx_to_seq"]
            )
            receipts = await db.fetch(
                pg("SELECT body FROM receipts WHERE seq > ? AND seq <= ? ORDER BY seq"),
                receipt_from,
                row["receipt_to_seq"],
            )
            blocks.append(
                Block(
                    header,
                    signature,
                    tuple(Transaction.from_json(json.loads(r["body"])) for r in transactions),
                    tuple(Receipt.from_json(json.loads(r["body"])) for r in receipts),
                )
            )
        tx_from, receipt_from = row["tx_to_seq"], row["receipt_to_seq"]
    return blocks[:limit]


async def read_stats(db: Connection) -> LedgerStats:
    row = await db.fetchrow(
        pg(
            "SELECT (SELECT coalesce(max(height), -1) FROM blocks),"
            " (SELECT count(*) FROM ledger), (SELECT count(*) FROM receipts),"
            " (SELECT coalesce(-sum(available), 0) FROM accounts WHERE account_id = ?),"
            " (SELECT coalesce(sum(held), 0) FROM accounts), (SELECT coalesce(sum(spent), 0) FROM accounts),"
            " (SELECT coalesce(sum(earned), 0) FROM accounts WHERE account_id = ?)"
        ),
        MINT_ACCOUNT_ID,
        NETWORK_FEE_ACCOUNT_ID,
    )
    assert row is not None
    return LedgerStats(*(int(value) for value in row))
