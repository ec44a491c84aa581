"""The SQLite side of money: holds, settlements and mints, each inside a transaction the caller opened.

Every function here runs within `SqliteStore._transaction` (BEGIN IMMEDIATE … COMMIT), so a hold commits
with its job, a settlement with the job's terminal state, and a crash at any point leaves either both or
neither. The arithmetic is the domain's (`aitbc.domain.money.settle`, `aitbc.domain.ledger`); this module
only writes what it computes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime

import aiosqlite

from aitbc.domain.accounts import MINT_ACCOUNT_ID, NETWORK_FEE_ACCOUNT_ID, address_of
from aitbc.domain.ledger import Bucket, Transaction, TxKind, closing_transaction, hold, mint
from aitbc.domain.money import Settlement, TokenPrices, Usage, settle
from aitbc.domain.receipts import RECEIPT_OUTCOMES, Receipt, receipt_body
from aitbc.store.base import (
    AccountRecord,
    HoldRequest,
    InsufficientFundsError,
    LedgerEntry,
    ReceiptDraft,
    SettleRequest,
)
from aitbc.store.sqlite_rows import micros, moment

ACCOUNT_COLUMNS = "account_id, address, available, held, spent, earned"
# The open hold of the job being updated, as a subquery of the terminal transition's RETURNING clause.
# Past any seq: a newest-first page without a cursor starts below it.
_NO_CURSOR = 2**63 - 1
OPEN_HOLD = "SELECT 1 FROM holds WHERE holds.job_id = jobs.job_id AND holds.settled_attempt IS NULL"


def account_from_row(row: aiosqlite.Row) -> AccountRecord:
    return AccountRecord(
        account_id=row["account_id"],
        address=row["address"],
        available=row["available"],
        held=row["held"],
        spent=row["spent"],
        earned=row["earned"],
    )


async def read_account(db: aiosqlite.Connection, account_id: str) -> AccountRecord:
    async with db.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?", (account_id,)) as cursor:
        row = await cursor.fetchone()
    return AccountRecord(account_id, address_of(account_id)) if row is None else account_from_row(row)


async def _ensure_accounts(db: aiosqlite.Connection, account_ids: set[str], now: datetime) -> None:
    await db.executemany(
        "INSERT OR IGNORE INTO accounts (account_id, address, created_at) VALUES (?, ?, ?)",
        [(account_id, address_of(account_id), micros(now)) for account_id in sorted(account_ids)],
    )


async def _apply(db: aiosqlite.Connection, tx: Transaction, account_ids: set[str], now: datetime) -> bool:
    """Record `tx` and move its postings; False (and nothing moved) if its id was applied before."""
    async with db.execute(
        "INSERT INTO ledger (tx_id, kind, job_id, body, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (tx_id) DO NOTHING RETURNING seq",
        (tx.tx_id, tx.kind.value, tx.job_id, tx.canonical_bytes().decode(), micros(now)),
    ) as cursor:
        inserted = await cursor.fetchone()
    if inserted is None:
        return False
    await _ensure_accounts(db, account_ids, now)
    for posting in tx.postings:
        column = "available" if posting.bucket is Bucket.AVAILABLE else "held"
        await db.execute(
            f"UPDATE accounts SET {column} = {column} + ? WHERE address = ?", (posting.amount, posting.account)
        )
    if tx.kind is TxKind.SETTLE:
        amounts = tx.settled()
        await db.execute("UPDATE accounts SET spent = spent + ? WHERE address = ?", (amounts.charge, amounts.client))
        await db.execute(
            "UPDATE accounts SET earned = earned + ? WHERE address = ?", (amounts.miner_earnings, amounts.miner)
        )
        await db.execute(
            "UPDATE accounts SET earned = earned + ? WHERE address = ?", (amounts.fee, tx.postings[3].account)
        )
    return True


async def place_hold(db: aiosqlite.Connection, job_id: str, request: HoldRequest, now: datetime) -> None:
    available = (await read_account(db, request.account_id)).available
    if available < request.amount:
        raise InsufficientFundsError(request.account_id, request.amount, available)
    tx = hold(job_id, address_of(request.account_id), request.amount)
    await _apply(db, tx, {request.account_id}, now)
    await db.execute(
        "INSERT INTO holds (job_id, account_id, amount, input_per_1k, output_per_1k) VALUES (?, ?, ?, ?, ?)",
        (job_id, request.account_id, request.amount, request.prices.input_per_1k, request.prices.output_per_1k),
    )


async def settle_hold(
    db: aiosqlite.Connection, job_id: str, attempt: int, request: SettleRequest, now: datetime
) -> bool:
    """Close the job's open hold, if it has one (a free job has none; a settled one no longer); True if a
    receipt was issued."""
    async with db.execute(
        "SELECT account_id, amount, input_per_1k, output_per_1k FROM holds"
        " WHERE job_id = ? AND settled_attempt IS NULL",
        (job_id,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return False
    prices = TokenPrices(row["input_per_1k"], row["output_per_1k"])
    # No miner to pay (its account is unknown): the client is charged nothing rather than paying no one.
    usage = request.usage if request.miner_account_id is not None else Usage(0, 0)
    settlement = settle(request.outcome, hold=row["amount"], usage=usage, prices=prices, fee_bps=request.fee_bps)
    client = row["account_id"]
    miner = request.miner_account_id
    tx = closing_transaction(
        job_id, client=address_of(client), miner=None if miner is None else address_of(miner), settlement=settlement
    )
    involved = {client, NETWORK_FEE_ACCOUNT_ID} | ({miner} if miner is not None else set())
    await _apply(db, tx, involved, now)
    await db.execute(
        "UPDATE holds SET settled_attempt = ?, charge = ? WHERE job_id = ?", (attempt, settlement.charge, job_id)
    )
    # A receipt goes with a charge only: it is sealed in the block of the settle transaction that paid it.
    if request.receipt is None or tx.kind is not TxKind.SETTLE or settlement.outcome not in RECEIPT_OUTCOMES:
        return False
    receipt = _issue(request.receipt(), usage, prices, request.fee_bps, settlement)
    await db.execute(
        "INSERT INTO receipts (receipt_id, job_id, client, body, created_at) VALUES (?, ?, ?, ?, ?)",
        (receipt.receipt_id, job_id, receipt.body.client, receipt.canonical_bytes().decode(), micros(now)),
    )
    await db.execute("UPDATE jobs SET receipt_id = ? WHERE job_id = ?", (receipt.receipt_id, job_id))
    return True


def receipt_id_of(job_id: str) -> str:
    """One receipt per job, so its id follows from the job's."""
    return "rcpt_" + job_id.removeprefix("job_")


def _issue(draft: ReceiptDraft, usage: Usage, prices: TokenPrices, fee_bps: int, settlement: Settlement) -> Receipt:
    body = receipt_body(
        receipt_id=receipt_id_of(draft.job_id),
        job_id=draft.job_id,
        attempt=draft.attempt,
        client=draft.client,
        miner=draft.miner,
        model=draft.model,
        usage=usage,
        prices=prices,
        fee_bps=fee_bps,
        settlement=settlement,
        input_hash=draft.input_hash,
        output_hash=draft.output_hash,
        started_at=draft.started_at,
        completed_at=draft.completed_at,
        miner_public_key=draft.miner_public_key,
        miner_signature=draft.miner_signature,
    )
    return body.issue(draft.coordinator_seed)


async def read_receipt(db: aiosqlite.Connection, receipt_id: str) -> Receipt | None:
    async with db.execute("SELECT body FROM receipts WHERE receipt_id = ?", (receipt_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else Receipt.from_json(json.loads(row["body"]))


async def read_receipts(db: aiosqlite.Connection, client: str | None, limit: int) -> list[Receipt]:
    where, args = ("WHERE client = ?", (client,)) if client is not None else ("", ())
    async with db.execute(f"SELECT body FROM receipts {where} ORDER BY seq DESC LIMIT ?", (*args, limit)) as cursor:
        rows = await cursor.fetchall()
    return [Receipt.from_json(json.loads(row["body"])) for row in rows]


async def credit(db: aiosqlite.Connection, account_id: str, amount: int, tx_id: str, now: datetime) -> None:
    await _apply(db, mint(tx_id, address_of(account_id), amount), {MINT_ACCOUNT_ID, account_id}, now)


async def read_ledger(db: aiosqlite.Connection, after_seq: int, limit: int) -> list[LedgerEntry]:
    async with db.execute(
        "SELECT seq, body, created_at FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
    ) as cursor:
        return _entries(await cursor.fetchall())


async def read_ledger_before(db: aiosqlite.Connection, before_seq: int | None, limit: int) -> list[LedgerEntry]:
    before = _NO_CURSOR if before_seq is None else before_seq
    async with db.execute(
        "SELECT seq, body, created_at FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?", (before, limit)
    ) as cursor:
        return _entries(await cursor.fetchall())


async def read_receipts_before(
    db: aiosqlite.Connection, before_seq: int | None, limit: int
) -> list[tuple[int, Receipt]]:
    before = _NO_CURSOR if before_seq is None else before_seq
    async with db.execute(
        "SELECT seq, body FROM receipts WHERE seq < ? ORDER BY seq DESC LIMIT ?", (before, limit)
    ) as cursor:
        rows = await cursor.fetchall()
    return [(row["seq"], Receipt.from_json(json.loads(row["body"]))) for row in rows]


def _entries(rows: Iterable[sqlite3.Row]) -> list[LedgerEntry]:
    entries = []
    for row in rows:
        time = moment(row["created_at"])
        assert time is not None
        entries.append(LedgerEntry(row["seq"], Transaction.from_json(json.loads(row["body"])), time))
    return entries
