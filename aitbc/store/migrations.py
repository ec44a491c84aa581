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
    # 5: accounts, the double-entry ledger and job holds (docs/settlement.md). Balances are materialised per
    # account and bucket, updated in the same transaction as the ledger row that moves them, so that
    # "all balances sum to zero" and "held = open holds" are checkable with one query each; the ledger rows
    # (canonical JSON of each transaction) replay to the same balances. tx_id is unique ("hold:<job>",
    # "settle:<job>", "mint:..."): a retried settlement cannot apply twice.
    """
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        address    TEXT NOT NULL UNIQUE,
        available  INTEGER NOT NULL DEFAULT 0,
        held       INTEGER NOT NULL DEFAULT 0,
        spent      INTEGER NOT NULL DEFAULT 0,  -- charges paid as a client
        earned     INTEGER NOT NULL DEFAULT 0,  -- earnings as a miner (and fees, for the fee account)
        created_at INTEGER NOT NULL,
        CHECK (account_id = 'mint' OR (available >= 0 AND held >= 0))
    );
    CREATE TABLE ledger (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order transactions applied in
        tx_id      TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL CHECK (kind IN ('mint', 'hold', 'release', 'settle')),
        job_id     TEXT,
        body       TEXT NOT NULL,  -- RFC 8785 JSON of the transaction
        created_at INTEGER NOT NULL
    );
    CREATE TABLE holds (
        job_id         TEXT PRIMARY KEY REFERENCES jobs (job_id),
        account_id     TEXT NOT NULL REFERENCES accounts (account_id),
        amount         INTEGER NOT NULL CHECK (amount > 0),
        input_per_1k   INTEGER NOT NULL,
        output_per_1k  INTEGER NOT NULL,
        -- Set once, in the transaction that moves the job to its terminal state: (job, attempt) settled.
        settled_attempt INTEGER,
        charge          INTEGER
    );
    CREATE INDEX open_holds ON holds (account_id) WHERE settled_attempt IS NULL;
    """,
    # 6: receipts, written in the transaction that settles the job they are for; the job names its receipt.
    """
    ALTER TABLE jobs ADD COLUMN receipt_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE receipts (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        receipt_id TEXT NOT NULL UNIQUE,
        job_id     TEXT NOT NULL UNIQUE REFERENCES jobs (job_id),
        client     TEXT NOT NULL,  -- the client's address
        body       TEXT NOT NULL,  -- RFC 8785 JSON of the signed receipt
        created_at INTEGER NOT NULL
    );
    CREATE INDEX receipts_by_client ON receipts (client, seq DESC);
    """,
    # 7: blocks. Each covers the ledger rows and receipts after the previous block's, up to its own
    # `tx_to_seq` and `receipt_to_seq`; the signed header is its canonical JSON with the signature.
    """
    CREATE TABLE blocks (
        height         INTEGER PRIMARY KEY,
        block_hash     TEXT NOT NULL UNIQUE,
        header         TEXT NOT NULL,
        tx_to_seq      INTEGER NOT NULL,
        receipt_to_seq INTEGER NOT NULL,
        created_at     INTEGER NOT NULL
    );
    """,
    # 8: what public reads look up: a receipt's block, and the jobs completed in a recent window.
    """
    CREATE INDEX blocks_by_receipt_seq ON blocks (receipt_to_seq, height);
    CREATE INDEX jobs_by_completion ON jobs (completed_at) WHERE state = 'completed';
    """,
    # 9: results (docs/results.md): when a job's prompt, result and logs were deleted (the row stays as a
    # tombstone); the checksums of its result package recorded when it finished (JSON {path: sha256});
    # share links by the sha256 of their token; each account's plan (none: free), which sets retention.
    """
    ALTER TABLE jobs ADD COLUMN result_deleted_at INTEGER;
    CREATE TABLE result_checksums (
        job_id      TEXT PRIMARY KEY REFERENCES jobs (job_id),
        files       TEXT NOT NULL,
        recorded_at INTEGER NOT NULL
    );
    CREATE TABLE share_links (
        share_id   TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        job_id     TEXT NOT NULL REFERENCES jobs (job_id),
        owner_id   TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX share_links_by_job ON share_links (job_id, created_at);
    CREATE TABLE account_plans (
        account_id TEXT PRIMARY KEY,
        plan       TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX jobs_results_kept ON jobs (completed_at) WHERE result_deleted_at IS NULL;
    """,
    # 10: history and webhooks (docs/history.md): webhooks per account, and the outbox of their deliveries, which a
    # job's terminal transition fills in its own transaction; each row keeps its last attempt's outcome.
    """
    CREATE TABLE webhooks (
        webhook_id TEXT PRIMARY KEY,
        owner_id   TEXT NOT NULL,
        url        TEXT NOT NULL,
        events     TEXT NOT NULL,  -- JSON list of event names
        signing_key TEXT NOT NULL,  -- the HMAC key: the coordinator signs with it, so it is kept as is
        created_at INTEGER NOT NULL
    );
    CREATE INDEX webhooks_by_owner ON webhooks (owner_id, created_at);
    CREATE TABLE webhook_deliveries (
        delivery_id      TEXT PRIMARY KEY,
        webhook_id       TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
        event            TEXT NOT NULL,
        job_id           TEXT NOT NULL DEFAULT '',
        payload          TEXT NOT NULL,  -- the event's JSON without its id
        status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_status_code INTEGER NOT NULL DEFAULT 0,
        last_latency_ms  INTEGER NOT NULL DEFAULT 0,
        last_error       TEXT NOT NULL DEFAULT '',
        created_at       INTEGER NOT NULL,
        next_attempt_at  INTEGER,
        delivered_at     INTEGER
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);
    """,
    # 11: replicas (docs/scaling.md). Which coordinator process runs each attempt, and the processes' liveness
    # leases. Only PostgreSQL is shared by several coordinators; SQLite keeps the same schema so that the stores
    # stay one for one, and its single coordinator writes its id like any other.
    """
    ALTER TABLE jobs ADD COLUMN replica_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE replicas (
        replica_id  TEXT PRIMARY KEY,
        address     TEXT NOT NULL DEFAULT '',
        started_at  INTEGER NOT NULL,
        lease_until INTEGER NOT NULL,
        miners      TEXT NOT NULL DEFAULT '[]'  -- JSON: the stream miners connected to it, as routing sees them
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
