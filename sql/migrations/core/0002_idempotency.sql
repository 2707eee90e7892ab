-- depends: 0001_core
-- Idempotency-Key of the public track endpoints: one row per (operation, key), written in
-- the same transaction as the events it guards, so a crash leaves both or neither. `results`
-- holds what that transaction stored, replayed to a retry. Rows older than
-- ENGAGEMENT_IDEMPOTENCY_TTL_SECONDS are taken over as new and pruned by the prune-dedup job.

CREATE TABLE idempotency_keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    results     jsonb NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
