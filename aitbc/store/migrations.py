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
)

SCHEMA_VERSION = len(MIGRATIONS)
