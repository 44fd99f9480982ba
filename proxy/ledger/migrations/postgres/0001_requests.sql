-- One row per request the proxy served, answered or failed. Money is exact (numeric).
CREATE TABLE requests (
    id                text PRIMARY KEY,
    created_at        timestamptz NOT NULL,
    requested_model   text,
    tier              text,
    score             double precision,
    model             text,
    provider          text,
    stream            boolean NOT NULL DEFAULT false,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cached_tokens     integer NOT NULL DEFAULT 0,
    usage_estimated   boolean NOT NULL DEFAULT false,
    cost_usd          numeric(20, 12),
    baseline_cost_usd numeric(20, 12),
    latency_ms        double precision NOT NULL DEFAULT 0,
    ttft_ms           double precision,
    http_status       smallint NOT NULL DEFAULT 200,
    status            text NOT NULL DEFAULT 'ok',
    error             text
);

CREATE INDEX requests_created_at ON requests (created_at);
