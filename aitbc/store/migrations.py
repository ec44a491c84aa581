"""Schema migrations, applied in order; `PRAGMA user_version` records the last one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: keys, jobs, events. Times are integer microseconds since the epoch, UTC.
    """
    CREATE TABLE api_keys (
        key_hash   TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL CHECK (role IN ('client', 'miner', 'admin')),
        owner_id   TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        job_id            TEXT PRIMARY KEY,
        owner_id          TEXT NOT NULL,
        state             TEXT NOT NULL
            CHECK (state IN ('pending', 'assigned', 'running', 'completed', 'failed', 'canceled')),
        prompt            TEXT NOT NULL,
        model             TEXT NOT NULL,
        max_tokens        INTEGER NOT NULL,
        temperature       REAL NOT NULL,
        top_p             REAL NOT NULL,
        stream            INTEGER NOT NULL,
        stop              TEXT NOT NULL DEFAULT '[]',    -- JSON list of strings
        messages          TEXT NOT NULL DEFAULT '[]',    -- JSON list of {role, content}
        raw               INTEGER NOT NULL DEFAULT 0,
        finish_reason     TEXT NOT NULL DEFAULT '',
        result            TEXT NOT NULL DEFAULT '',
        miner_id          TEXT NOT NULL DEFAULT '',
        attempt           INTEGER NOT NULL DEFAULT 0,
        prompt_tokens     INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        error             TEXT NOT NULL DEFAULT '',
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        started_at        INTEGER,
        completed_at      INTEGER
    );
    CREATE INDEX jobs_by_owner ON jobs (owner_id, created_at DESC, job_id DESC);
    CREATE INDEX jobs_by_state ON jobs (state, created_at);
    CREATE TABLE job_events (
        job_id            TEXT NOT NULL REFERENCES jobs (job_id),
        seq               INTEGER NOT NULL,
        time              INTEGER NOT NULL,
        kind              TEXT NOT NULL CHECK (kind IN ('state', 'tokens')),
        state             TEXT,
        text              TEXT NOT NULL DEFAULT '',
        token_count       INTEGER NOT NULL DEFAULT 0,
        miner_id          TEXT NOT NULL DEFAULT '',
        attempt           INTEGER NOT NULL DEFAULT 0,
        error             TEXT NOT NULL DEFAULT '',
        prompt_tokens     INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        finish_reason     TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    """,
    # 2: scheduling (priority, price cap, idempotency, TTL, routing) and miner reputation.
    """
    ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN max_price REAL;
    ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
    ALTER TABLE jobs ADD COLUMN expires_at INTEGER;
    ALTER TABLE jobs ADD COLUMN estimated_cost REAL NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN miner_reputation INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (owner_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE miner_stats (
        miner_id          TEXT PRIMARY KEY,
        owner_id          TEXT NOT NULL,
        completions       REAL NOT NULL DEFAULT 0,
        failures          REAL NOT NULL DEFAULT 0,
        cancellations     REAL NOT NULL DEFAULT 0,
        lease_expiries    REAL NOT NULL DEFAULT 0,
        tokens_per_second REAL NOT NULL DEFAULT 0,
        ttft_seconds      REAL NOT NULL DEFAULT 0,
        updated_at        INTEGER,
        last_seen         INTEGER NOT NULL,
        models            TEXT NOT NULL DEFAULT '[]',  -- JSON list, as last advertised
        backend           TEXT NOT NULL DEFAULT ''
    );
    """,
    # 3: attempts that ended through no fault of the job (a coordinator restart, a draining miner, a failing
    # store) and do not count against its attempt cap; one row rewritten to check that the store takes writes.
    """
    ALTER TABLE jobs ADD COLUMN excused_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at INTEGER NOT NULL
    );
    """,
    # 4: revoked keys (never un-revoked: revoked_at is set once) and when each key was last used (written behind).
    """
    ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER;
    ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
    CREATE INDEX api_keys_by_owner ON api_keys (owner_id, created_at);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
