-- depends: 0006_view_fingerprints
-- The per-client rate limit (ENGAGEMENT_RATE_LIMIT), shared by every worker and host: hits
-- per client, limit period and time bucket (period / 10 wide; `bucket` counts buckets since
-- the epoch). Each worker adds its hits here about every 50 ms (rate_limit_flush) and reads
-- back the service-wide counts of those clients. `client_key` is a keyed hash (HMAC with
-- ENGAGEMENT_SESSION_SECRET) of the client's address (IPv6 by its /64), never the address.
-- UNLOGGED: counts that live a minute need no WAL; a crash empties the table, which only
-- forgets the current minute. Rows are pruned once `expires_at` (epoch ms) is past.
CREATE UNLOGGED TABLE rate_limit_counters (
    client_key text NOT NULL,
    period     integer NOT NULL,
    bucket     bigint NOT NULL,
    hits       integer NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (client_key, period, bucket)
);
CREATE INDEX rate_limit_counters_expires_at_idx ON rate_limit_counters (expires_at);
