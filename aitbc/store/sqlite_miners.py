"""Miner statistics (reputation) in SQLite: one row per miner ever seen, rewritten whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing

from aitbc.store.base import MinerRecord
from aitbc.store.sqlite_rows import MINER_COLUMNS, miner_from_row, miner_row, placeholders


def read_miners(db: sqlite3.Connection) -> list[MinerRecord]:
    with closing(db.execute(f"SELECT {MINER_COLUMNS} FROM miner_stats ORDER BY miner_id")) as cursor:
        rows = cursor.fetchall()
    return [miner_from_row(row) for row in rows]


def read_miner(db: sqlite3.Connection, miner_id: str) -> MinerRecord | None:
    row = db.execute(f"SELECT {MINER_COLUMNS} FROM miner_stats WHERE miner_id = ?", (miner_id,)).fetchone()
    return None if row is None else miner_from_row(row)


def write_miners(db: sqlite3.Connection, miners: Sequence[MinerRecord]) -> None:
    db.executemany(
        f"INSERT OR REPLACE INTO miner_stats ({MINER_COLUMNS}) VALUES ({placeholders(MINER_COLUMNS)})",
        [miner_row(miner) for miner in miners],
    )
