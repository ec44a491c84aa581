"""The SQLite side of money: holds, settlements and mints, each inside a transaction the caller opened.

Every write here runs within the transaction `SqliteThread.write` opened (BEGIN IMMEDIATE … COMMIT), so a hold commits
with its job, a settlement with the job's terminal state, and a crash at any point leaves either both or
neither. The arithmetic is the domain's (`aitbc.domain.money.settle`, `aitbc.domain.ledger`); this module
only writes what it computes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime

from aitbc.domain.accounts import MINT_ACCOUNT_ID, address_of
from aitbc.domain.ledger import Transaction, hold, mint
from aitbc.domain.money import TokenPrices
from aitbc.domain.receipts import Receipt
from aitbc.store.base import AccountRecord, HoldRequest, LedgerEntry, SettleRequest
from aitbc.store.settlement import account_moves, check_hold, plan_settlement
from aitbc.store.sqlite_rows import micros, moment

ACCOUNT_COLUMNS = "account_id, address, available, held, spent, earned"
# The open hold of the job being updated, as a subquery of the terminal transition's RETURNING clause.
# Past any seq: a newest-first page without a cursor starts below it.
_NO_CURSOR = 2**63 - 1
OPEN_HOLD = "SELECT 1 FROM holds WHERE holds.job_id = jobs.job_id AND holds.settled_attempt IS NULL"


def account_from_row(row: sqlite3.Row) -> AccountRecord:
    return AccountRecord(
        account_id=row["account_id"],
        address=row["address"],
        available=row["available"],
        held=row["held"],
        spent=row["spent"],
        earned=row["earned"],
    )


def read_account(db: sqlite3.Connection, account_id: str) -> AccountRecord:
    with closing(db.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?", (account_id,))) as cursor:
        row = cursor.fetchone()
    return AccountRecord(account_id, address_of(account_id)) if row is None else account_from_row(row)


def _ensure_accounts(db: sqlite3.Connection, account_ids: set[str], now: datetime) -> None:
    db.executemany(
        "INSERT OR IGNORE INTO accounts (account_id, address, created_at) VALUES (?, ?, ?)",
        [(account_id, address_of(account_id), micros(now)) for account_id in sorted(account_ids)],
    )


def _apply(db: sqlite3.Connection, tx: Transaction, account_ids: set[str], now: datetime) -> bool:
    """Record `tx` and move its postings; False (and nothing moved) if its id was applied before."""
    with closing(
        db.execute(
            "INSERT INTO ledger (tx_id, kind, job_id, body, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (tx_id) DO NOTHING RETURNING seq",
            (tx.tx_id, tx.kind.value, tx.job_id, tx.canonical_bytes().decode(), micros(now)),
        )
    ) as cursor:
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    _ensure_accounts(db, account_ids, now)
    for column, amount, address in account_moves(tx):
        db.execute(f"UPDATE accounts SET {column} = {column} + ? WHERE address = ?", (amount, address))
    return True


def place_hold(db: sqlite3.Connection, job_id: str, request: HoldRequest, now: datetime) -> None:
    check_hold(request, read_account(db, request.account_id).available)
    tx = hold(job_id, address_of(request.account_id), request.amount)
    _apply(db, tx, {request.account_id}, now)
    db.execute(
        "INSERT INTO holds (job_id, account_id, amount, input_per_1k, output_per_1k) VALUES (?, ?, ?, ?, ?)",
        (job_id, request.account_id, request.amount, request.prices.input_per_1k, request.prices.output_per_1k),
    )


def settle_hold(db: sqlite3.Connection, job_id: str, attempt: int, request: SettleRequest, now: datetime) -> bool:
    """Close the job's open hold, if it has one (a free job has none; a settled one no longer); True if a
    receipt was issued."""
    with closing(
        db.execute(
            "SELECT account_id, amount, input_per_1k, output_per_1k FROM holds"
            " WHERE job_id = ? AND settled_attempt IS NULL",
            (job_id,),
        )
    ) as cursor:
        row = cursor.fetchone()
    if row is None:
        return False
    prices = TokenPrices(row["input_per_1k"], row["output_per_1k"])
    plan = plan_settlement(job_id, row["account_id"], row["amount"], prices, request)
    _apply(db, plan.transaction, plan.accounts, now)
    db.execute(
        "UPDATE holds SET settled_attempt = ?, charge = ? WHERE job_id = ?", (attempt, plan.settlement.charge, job_id)
    )
    receipt = plan.receipt
    if receipt is None:
        return False
    db.execute(
        "INSERT INTO receipts (receipt_id, job_id, client, body, created_at) VALUES (?, ?, ?, ?, ?)",
        (receipt.receipt_id, job_id, receipt.body.client, receipt.canonical_bytes().decode(), micros(now)),
    )
    db.execute("UPDATE jobs SET receipt_id = ? WHERE job_id = ?", (receipt.receipt_id, job_id))
    return True


def read_receipt(db: sqlite3.Connection, receipt_id: str) -> Receipt | None:
    with closing(db.execute("SELECT body FROM receipts WHERE receipt_id = ?", (receipt_id,))) as cursor:
        row = cursor.fetchone()
    return None if row is None else Receipt.from_json(json.loads(row["body"]))


def read_receipts(db: sqlite3.Connection, client: str | None, limit: int) -> list[Receipt]:
    where, args = ("WHERE client = ?", (client,)) if client is not None else ("", ())
    with closing(db.execute(f"SELECT body FROM receipts {where} ORDER BY seq DESC LIMIT ?", (*args, limit))) as cursor:
        rows = cursor.fetchall()
    return [Receipt.from_json(json.loads(row["body"])) for row in rows]


def credit(db: sqlite3.Connection, account_id: str, amount: int, tx_id: str, now: datetime) -> None:
    _apply(db, mint(tx_id, address_of(account_id), amount), {MINT_ACCOUNT_ID, account_id}, now)


def read_ledger(db: sqlite3.Connection, after_seq: int, limit: int) -> list[LedgerEntry]:
    with closing(
        db.execute("SELECT seq, body, created_at FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
    ) as cursor:
        return _entries(cursor.fetchall())


def read_ledger_before(db: sqlite3.Connection, before_seq: int | None, limit: int) -> list[LedgerEntry]:
    before = _NO_CURSOR if before_seq is None else before_seq
    with closing(
        db.execute("SELECT seq, body, created_at FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?", (before, limit))
    ) as cursor:
        return _entries(cursor.fetchall())


def read_receipts_before(db: sqlite3.Connection, before_seq: int | None, limit: int) -> list[tuple[int, Receipt]]:
    before = _NO_CURSOR if before_seq is None else before_seq
    with closing(
        db.execute("SELECT seq, body FROM receipts WHERE seq < ? ORDER BY seq DESC LIMIT ?", (before, limit))
    ) as cursor:
        rows = cursor.fetchall()
    return [(row["seq"], Receipt.from_json(json.loads(row["body"]))) for row in rows]


def _entries(rows: Iterable[sqlite3.Row]) -> list[LedgerEntry]:
    entries = []
    for row in rows:
        time = moment(row["created_at"])
        assert time is not None
        entries.append(LedgerEntry(row["seq"], Transaction.from_json(json.loads(row["body"])), time))
    return entries
