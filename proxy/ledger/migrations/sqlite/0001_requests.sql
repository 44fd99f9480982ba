-- The embedded ledger: the same columns as Postgres. Money is stored as decimal text so it stays
-- exact (SQLite has no exact numeric type); created_at is ISO 8601 in UTC, so it sorts as text.
CREATE TABLE requests (
    id                TEXT PRIMARY KEY,
    created_at        TEXT NOT NULL,
    requested_model   TEXT,
    tier              TEXT,
    score             REAL,
    model             TEXT,
    provider          TEXT,
    stream            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    usage_estimated   INTEGER NOT NULL DEFAULT 0,
    cost_usd          TEXT,
    baseline_cost_usd TEXT,
    latency_ms        REAL NOT NULL DEFAULT 0,
    ttft_ms           REAL,
    http_status       INTEGER NOT NULL DEFAULT 200,
    status            TEXT NOT NULL DEFAULT 'ok',
    error             TEXT
);

CREATE INDEX requests_created_at ON requests (created_at);
