"""PostgreSQL schema migrations, applied in order; `schema_migrations` records each one applied.

They are the SQLite migrations (`aitbc.store.migrations`) translated, one for one and with the same column
names, so that the row conversions of `aitbc.store.sqlite_rows` read both stores' rows. Times are BIGINT
microseconds since the epoch (UTC) and money BIGINT µcr; JSON fields stay TEXT, because the ledger and
receipt bodies are canonical bytes (RFC 8785) that JSONB would reorder, and the others are read whole.
`seq` columns are identities. Migrations run at start in one transaction under an advisory lock, so that two
coordinators starting on one database do not race.
"""

from __future__ import annotations

# pg_advisory_xact_lock keys (any 64-bit numbers, unique to this application).
MIGRATION_LOCK = 0x41495442_43000001  # "AITBC" 1: migrating
LEDGER_LOCK = 0x41495442_43000002  # "AITBC" 2: appending to the ledger, receipts and blocks

POSTGRES_MIGRATIONS: tuple[str, ...] = (
    # 1: keys, jobs, events.
    """
    CREATE TABLE api_keys (
        key_hash   TEXT PRIMARY KEY,
        key_id     TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL CHECK (role IN ('client', 'miner', 'admin')),
        owner_id   TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE jobs (
        job_id            TEXT PRIMARY KEY,
        owner_id          TEXT NOT NULL,
        state             TEXT NOT NULL
            CHECK (state IN ('pending', 'assigned', 'running', 'completed', 'failed', 'canceled')),
        prompt            TEXT NOT NULL,
        model             TEXT NOT NULL,
        max_tokens        INTEGER NOT NULL,
        temperature       DOUBLE PRECISION NOT NULL,
        top_p             DOUBLE PRECISION NOT NULL,
        stream            SMALLINT NOT NULL,
        stop              TEXT NOT NULL DEFAULT '[]',
        messages          TEXT NOT NULL DEFAULT '[]',
        raw               SMALLINT NOT NULL DEFAULT 0,
        finish_reason     TEXT NOT NULL DEFAULT '',
        result            TEXT NOT NULL DEFAULT '',
        miner_id          TEXT NOT NULL DEFAULT '',
        attempt           INTEGER NOT NULL DEFAULT 0,
        prompt_tokens     BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        error             TEXT NOT NULL DEFAULT '',
        created_at        BIGINT NOT NULL,
        updated_at        BIGINT NOT NULL,
        started_at        BIGINT,
        completed_at      BIGINT
    );
    CREATE INDEX jobs_by_owner ON jobs (owner_id, created_at DESC, job_id DESC);
    CREATE INDEX jobs_by_state ON jobs (state, created_at);
    CREATE TABLE job_events (
        job_id            TEXT NOT NULL REFERENCES jobs (job_id),
        seq               BIGINT NOT NULL,
        time              BIGINT NOT NULL,
        kind              TEXT NOT NULL CHECK (kind IN ('state', 'tokens')),
        state             TEXT,
        text              TEXT NOT NULL DEFAULT '',
        token_count       INTEGER NOT NULL DEFAULT 0,
        miner_id          TEXT NOT NULL DEFAULT '',
        attempt           INTEGER NOT NULL DEFAULT 0,
        error             TEXT NOT NULL DEFAULT '',
        prompt_tokens     BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        finish_reason     TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, seq)
    );
    """,
    # 2: scheduling and miner reputation. Money is integer µcr here (SQLite's REAL columns hold the same ints).
    """
    ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE jobs ADD COLUMN max_price BIGINT;
    ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
    ALTER TABLE jobs ADD COLUMN expires_at BIGINT;
    ALTER TABLE jobs ADD COLUMN estimated_cost BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN miner_reputation INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs (owner_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE miner_stats (
        miner_id          TEXT PRIMARY KEY,
        owner_id          TEXT NOT NULL,
        completions       DOUBLE PRECISION NOT NULL DEFAULT 0,
        failures          DOUBLE PRECISION NOT NULL DEFAULT 0,
        cancellations     DOUBLE PRECISION NOT NULL DEFAULT 0,
        lease_expiries    DOUBLE PRECISION NOT NULL DEFAULT 0,
        tokens_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,
        ttft_seconds      DOUBLE PRECISION NOT NULL DEFAULT 0,
        updated_at        BIGINT,
        last_seen         BIGINT NOT NULL,
        models            TEXT NOT NULL DEFAULT '[]',
        backend           TEXT NOT NULL DEFAULT ''
    );
    """,
    # 3: excused attempts; the probe row.
    """
    ALTER TABLE jobs ADD COLUMN excused_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at BIGINT NOT NULL
    );
    """,
    # 4: revoked keys and last use.
    """
    ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
    ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
    CREATE INDEX api_keys_by_owner ON api_keys (owner_id, created_at);
    """,
    # 5: accounts, the double-entry ledger and job holds (docs/settlement.md).
    """
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        address    TEXT NOT NULL UNIQUE,
        available  BIGINT NOT NULL DEFAULT 0,
        held       BIGINT NOT NULL DEFAULT 0,
        spent      BIGINT NOT NULL DEFAULT 0,
        earned     BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        CHECK (account_id = 'mint' OR (available >= 0 AND held >= 0))
    );
    CREATE TABLE ledger (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tx_id      TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL CHECK (kind IN ('mint', 'hold', 'release', 'settle')),
        job_id     TEXT,
        body       TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE holds (
        job_id          TEXT PRIMARY KEY REFERENCES jobs (job_id),
        account_id      TEXT NOT NULL REFERENCES accounts (account_id),
        amount          BIGINT NOT NULL CHECK (amount > 0),
        input_per_1k    BIGINT NOT NULL,
        output_per_1k   BIGINT NOT NULL,
        settled_attempt INTEGER,
        charge          BIGINT
    );
    CREATE INDEX open_holds ON holds (account_id) WHERE settled_attempt IS NULL;
    """,
    # 6: receipts.
    """
    ALTER TABLE jobs ADD COLUMN receipt_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE receipts (
        seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        receipt_id TEXT NOT NULL UNIQUE,
        job_id     TEXT NOT NULL UNIQUE REFERENCES jobs (job_id),
        client     TEXT NOT NULL,
        body       TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX receipts_by_client ON receipts (client, seq DESC);
    """,
    # 7: blocks.
    """
    CREATE TABLE blocks (
        height         BIGINT PRIMARY KEY,
        block_hash     TEXT NOT NULL UNIQUE,
        header         TEXT NOT NULL,
        tx_to_seq      BIGINT NOT NULL,
        receipt_to_seq BIGINT NOT NULL,
        created_at     BIGINT NOT NULL
    );
    """,
    # 8: a receipt's block, recent completions.
    """
    CREATE INDEX blocks_by_receipt_seq ON blocks (receipt_to_seq, height);
    CREATE INDEX jobs_by_completion ON jobs (completed_at) WHERE state = 'completed';
    """,
    # 9: results: deletion tombstones, checksums, share links, plans.
    """
    ALTER TABLE jobs ADD COLUMN result_deleted_at BIGINT;
    CREATE TABLE result_checksums (
        job_id      TEXT PRIMARY KEY REFERENCES jobs (job_id),
        files       TEXT NOT NULL,
        recorded_at BIGINT NOT NULL
    );
    CREATE TABLE share_links (
        share_id   TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        job_id     TEXT NOT NULL REFERENCES jobs (job_id),
        owner_id   TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE INDEX share_links_by_job ON share_links (job_id, created_at);
    CREATE TABLE account_plans (
        account_id TEXT PRIMARY KEY,
        plan       TEXT NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX jobs_results_kept ON jobs (completed_at) WHERE result_deleted_at IS NULL;
    """,
    # 10: webhooks and their delivery outbox. `events` is JSONB: the outbox insert asks whether it holds one.
    """
    CREATE TABLE webhooks (
        webhook_id  TEXT PRIMARY KEY,
        owner_id    TEXT NOT NULL,
        url         TEXT NOT NULL,
        events      JSONB NOT NULL,
        signing_key TEXT NOT NULL,
        created_at  BIGINT NOT NULL
    );
    CREATE INDEX webhooks_by_owner ON webhooks (owner_id, created_at);
    CREATE TABLE webhook_deliveries (
        delivery_id      TEXT PRIMARY KEY,
        webhook_id       TEXT NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
        event            TEXT NOT NULL,
        job_id           TEXT NOT NULL DEFAULT '',
        payload          TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        last_status_code INTEGER NOT NULL DEFAULT 0,
        last_latency_ms  BIGINT NOT NULL DEFAULT 0,
        last_error       TEXT NOT NULL DEFAULT '',
        created_at       BIGINT NOT NULL,
        next_attempt_at  BIGINT,
        delivered_at     BIGINT
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);
    """,
    # 11: replicas (docs/scaling.md). `jobs.replica_id` names the coordinator process running the attempt;
    # `replicas` holds each process's liveness lease and the miners connected to it. Every stored event
    # notifies `aitbc_job` with "job_id seq kind replica" (ids, never payloads: listeners read the events from
    # the table); the replica is the writing connection's application_name, so a replica skips its own writes.
    """
    ALTER TABLE jobs ADD COLUMN replica_id TEXT NOT NULL DEFAULT '';
    CREATE TABLE replicas (
        replica_id  TEXT PRIMARY KEY,
        address     TEXT NOT NULL DEFAULT '',
        started_at  BIGINT NOT NULL,
        lease_until BIGINT NOT NULL,
        miners      TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX jobs_on_miners ON jobs (replica_id) WHERE state IN ('assigned', 'running');
    CREATE FUNCTION aitbc_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify(
            'aitbc_job', concat_ws(' ', NEW.job_id, NEW.seq, NEW.kind, current_setting('application_name'))
        );
        RETURN NULL;
    END $$;
    CREATE TRIGGER job_events_notify AFTER INSERT ON job_events FOR EACH ROW EXECUTE FUNCTION aitbc_notify_job();
    """,
    # 12: each replica's roster of connected miners, one row per miner, for listings network-wide (ListMiners,
    # the explorer, readiness). Written when the roster changes, not with every lease renewal;
    # `replicas.roster_version` tells the others when to read a replica's rows again.
    """
    ALTER TABLE replicas ADD COLUMN roster_version BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE replica_miners (
        miner_id   TEXT PRIMARY KEY,
        replica_id TEXT NOT NULL,
        summary    TEXT NOT NULL
    );
    CREATE INDEX replica_miners_by_replica ON replica_miners (replica_id);
    """,
)

POSTGRES_SCHEMA_VERSION = len(POSTGRES_MIGRATIONS)

SCHEMA_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
