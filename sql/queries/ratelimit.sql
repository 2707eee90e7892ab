-- name: rate_limit_flush
-- One worker's rate-limit hits since its last flush, and the service-wide counts of those
-- clients read back, in one statement. Rows come sorted by key (two workers never lock
-- rows in opposite orders). The SELECT sees the table as it was before this statement's
-- upsert, so the caller adds the hits it sent to what comes back. Rows with hits = 0 only
-- ask for a client's counts (a client this worker refused, waiting to be let in again).
WITH input AS (
    SELECT * FROM unnest(%(keys)s::text[], %(periods)s::int[], %(buckets)s::bigint[],
                         %(hits)s::int[], %(expires)s::bigint[], %(since)s::bigint[])
        AS t(client_key, period, bucket, hits, expires_at, since)
), upsert AS (
    INSERT INTO rate_limit_counters AS c (client_key, period, bucket, hits, expires_at)
    SELECT client_key, period, bucket, hits, expires_at FROM input WHERE hits > 0
    ORDER BY client_key, period, bucket
    ON CONFLICT (client_key, period, bucket) DO UPDATE SET hits = c.hits + excluded.hits
), wanted AS (
    SELECT client_key, period, min(since) AS since FROM input GROUP BY client_key, period
)
SELECT c.client_key, c.period, c.bucket, c.hits
FROM wanted w JOIN rate_limit_counters c
  ON c.client_key = w.client_key AND c.period = w.period AND c.bucket >= w.since;

-- name: prune_rate_limit_counters
DELETE FROM rate_limit_counters WHERE expires_at < %(now_ms)s;
