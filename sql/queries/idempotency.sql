-- name: claim_idempotency_keys
-- Claim keys for a batch; RETURNING lists the ones this transaction won. A key held by
-- another open transaction makes this statement wait for it: when that one commits we
-- lose (and replay its results), when it rolls back we win. An expired key is taken over.
-- The caller sends each (scope, key) once; keys are taken in a fixed order so concurrent
-- batches lock them in the same order.
INSERT INTO idempotency_keys AS k (scope, key, fingerprint, created_at)
SELECT scope, key, fingerprint, now()
FROM unnest(%(scopes)s::text[], %(keys)s::text[], %(fingerprints)s::text[])
     AS t(scope, key, fingerprint)
ORDER BY scope, key
ON CONFLICT (scope, key) DO UPDATE
    SET fingerprint = excluded.fingerprint, created_at = excluded.created_at, results = NULL
    WHERE k.created_at < excluded.created_at - make_interval(secs => %(ttl_seconds)s)
RETURNING k.scope, k.key;

-- name: save_idempotency_results
UPDATE idempotency_keys AS k
SET results = t.results
FROM unnest(%(scopes)s::text[], %(keys)s::text[], %(results)s::jsonb[]) AS t(scope, key, results)
WHERE k.scope = t.scope AND k.key = t.key;

-- name: load_idempotency_results
SELECT k.scope, k.key, k.fingerprint, k.results
FROM idempotency_keys AS k
JOIN unnest(%(scopes)s::text[], %(keys)s::text[]) AS t(scope, key)
  ON k.scope = t.scope AND k.key = t.key;

-- name: prune_idempotency_keys
DELETE FROM idempotency_keys
WHERE created_at < now() - make_interval(secs => %(ttl_seconds)s);
