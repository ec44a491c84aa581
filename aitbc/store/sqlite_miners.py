"""Miner statistics (reputation) in SQLite: one row per miner ever seen, rewritten whole."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

from aitbc.domain.reputation import MinerStats
from aitbc.store.base import MinerRecord
from aitbc.store.sqlite_rows import micros, moment, placeholders

_COLUMNS = (
    "miner_id, owner_id, completions, failures, cancellations, lease_expiries, tokens_per_second, ttft_seconds,"
    " updated_at, last_seen, models, backend"
)


def read_miners(db: sqlite3.Connection) -> list[MinerRecord]:
    with closing(db.execute(f"SELECT {_COLUMNS} FROM miner_stats ORDER BY miner_id")) as cursor:
        rows = cursor.fetchall()
    return [
        MinerRecord(
            miner_id=row["miner_id"],
            owner_id=row["owner_id"],
            stats=MinerStats(
                completions=row["completions"],
                failures=row["failures"],
                cancellations=row["cancellations"],
                lease_expiries=row["lease_expiries"],
                tokens_per_second=row["tokens_per_second"],
                ttft_seconds=row["ttft_seconds"],
                updated_at=moment(row["updated_at"]),
            ),
            last_seen=moment(row["last_seen"]) or datetime.fromtimestamp(0, UTC),
            models=tuple(json.loads(row["models"])),
            backend=row["backend"],
        )
        for row in rows
    ]


def write_miner(db: sqlite3.Connection, miner: MinerRecord) -> None:
    stats = miner.stats
    db.execute(
        f"INSERT OR REPLACE INTO miner_stats ({_COLUMNS}) VALUES ({placeholders(_COLUMNS)})",
        (
            miner.miner_id,
            miner.owner_id,
            stats.completions,
            stats.failures,
            stats.cancellations,
            stats.lease_expiries,
            stats.tokens_per_second,
            stats.ttft_seconds,
            micros(stats.updated_at) if stats.updated_at else None,
            micros(miner.last_seen),
            json.dumps(list(miner.models)),
            miner.backend,
        ),
    )
