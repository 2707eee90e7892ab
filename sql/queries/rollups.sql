-- name: lock_rollups
SELECT pg_advisory_xact_lock(7361003);

-- name: lock_rollups_session
SELECT pg_advisory_lock(7361003);

-- name: unlock_rollups_session
SELECT pg_advisory_unlock(7361003);

-- name: claim_invalidations
-- Takes every log row this transaction can see; rows of transactions still running stay
-- for the next run. Rolled back with the recomputation if that fails.
DELETE FROM rollup_invalidations RETURNING relation, bucket, recorded_at;

-- name: rollup_lag
-- Seconds since the oldest change the rollup tables have not counted yet was logged (0 when
-- they are current). The first log row by id, not min(recorded_at): one index probe, even
-- when the log has grown for hours without a refresher.
SELECT coalesce(greatest(extract(epoch FROM now() - (
           SELECT recorded_at FROM rollup_invalidations ORDER BY id LIMIT 1)), 0), 0)::float8;

-- name: clear_views_hourly
DELETE FROM project_views_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_views_hourly
INSERT INTO project_views_hourly (bucket, project_id, source, views)
SELECT b.bucket, v.project_id, v.source, count(*)
FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)
JOIN project_views AS v ON v.created_at >= b.bucket AND v.created_at < b.bucket + INTERVAL '1 hour'
GROUP BY b.bucket, v.project_id, v.source;

-- name: clear_clicks_hourly
DELETE FROM project_clicks_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_clicks_hourly
INSERT INTO project_clicks_hourly (bucket, project_id, source, position, clicks)
SELECT b.bucket, c.project_id, c.source, c.position, count(*)
FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)
JOIN project_clicks AS c ON c.created_at >= b.bucket AND c.created_at < b.bucket + INTERVAL '1 hour'
GROUP BY b.bucket, c.project_id, c.source, c.position;

-- name: clear_likes_hourly
DELETE FROM project_likes_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_likes_hourly
INSERT INTO project_likes_hourly (bucket, project_id, likes, unlikes)
SELECT b.bucket, l.project_id,
       count(*) FILTER (WHERE l.action = 1), count(*) FILTER (WHERE l.action = -1)
FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)
JOIN project_likes AS l ON l.created_at >= b.bucket AND l.created_at < b.bucket + INTERVAL '1 hour'
GROUP BY b.bucket, l.project_id;

-- name: clear_site_views_hourly
DELETE FROM site_views_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_site_views_hourly
-- Runs after fill_views_hourly in the same transaction: the per-project counts are current.
INSERT INTO site_views_hourly (bucket, source, views)
SELECT bucket, source, sum(views)::bigint
FROM project_views_hourly
WHERE bucket = ANY(%(buckets)s::timestamptz[])
GROUP BY bucket, source;

-- name: clear_feed_clicks_hourly
DELETE FROM feed_clicks_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_feed_clicks_hourly
-- From raw events: project_clicks_hourly has no variant.
INSERT INTO feed_clicks_hourly (bucket, source, position, variant, clicks)
SELECT b.bucket, c.source, c.position, c.variant, count(*)
FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)
JOIN project_clicks AS c ON c.created_at >= b.bucket AND c.created_at < b.bucket + INTERVAL '1 hour'
GROUP BY b.bucket, c.source, c.position, c.variant;

-- name: clear_impressions_hourly
DELETE FROM project_impressions_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_impressions_hourly
INSERT INTO project_impressions_hourly (bucket, project_id, source, position, variant, impressions)
SELECT b.bucket, i.project_id, i.source, i.position, i.variant, count(*)
FROM unnest(%(buckets)s::timestamptz[]) AS b(bucket)
JOIN project_impressions AS i
  ON i.created_at >= b.bucket AND i.created_at < b.bucket + INTERVAL '1 hour'
GROUP BY b.bucket, i.project_id, i.source, i.position, i.variant;

-- name: clear_feed_impressions_hourly
DELETE FROM feed_impressions_hourly WHERE bucket = ANY(%(buckets)s::timestamptz[]);

-- name: fill_feed_impressions_hourly
-- Runs after fill_impressions_hourly in the same transaction: the per-project counts are current.
INSERT INTO feed_impressions_hourly (bucket, source, position, variant, impressions)
SELECT bucket, source, position, variant, sum(impressions)::bigint
FROM project_impressions_hourly
WHERE bucket = ANY(%(buckets)s::timestamptz[])
GROUP BY bucket, source, position, variant;

-- name: clear_feed_impressions_daily
-- The days of the touched hours, recomputed whole from the (already current) hourly table.
DELETE FROM feed_impressions_daily
WHERE day IN (SELECT DISTINCT date_trunc('day', b, 'UTC')
              FROM unnest(%(buckets)s::timestamptz[]) AS b);

-- name: fill_feed_impressions_daily
INSERT INTO feed_impressions_daily (day, source, position, variant, impressions)
SELECT d.day, h.source, h.position, h.variant, sum(h.impressions)::bigint
FROM (SELECT DISTINCT date_trunc('day', b, 'UTC') AS day
      FROM unnest(%(buckets)s::timestamptz[]) AS b) AS d
JOIN feed_impressions_hourly AS h ON h.bucket >= d.day AND h.bucket < d.day + INTERVAL '24 hours'
GROUP BY d.day, h.source, h.position, h.variant;

-- name: clear_feed_clicks_daily
DELETE FROM feed_clicks_daily
WHERE day IN (SELECT DISTINCT date_trunc('day', b, 'UTC')
              FROM unnest(%(buckets)s::timestamptz[]) AS b);

-- name: fill_feed_clicks_daily
INSERT INTO feed_clicks_daily (day, source, position, variant, clicks)
SELECT d.day, h.source, h.position, h.variant, sum(h.clicks)::bigint
FROM (SELECT DISTINCT date_trunc('day', b, 'UTC') AS day
      FROM unnest(%(buckets)s::timestamptz[]) AS b) AS d
JOIN feed_clicks_hourly AS h ON h.bucket >= d.day AND h.bucket < d.day + INTERVAL '24 hours'
GROUP BY d.day, h.source, h.position, h.variant;

-- name: cagg_materialised_lag
-- Per continuous aggregate: how far what it has materialised (its source's invalidation
-- threshold, which every refresh moves up to the newest data) is behind the bucket of the
-- newest raw event (real-time aggregation serves what lies past the threshold); the
-- largest, in seconds. Aggregates with no data, and data already materialised, add nothing.
WITH newest(source, at) AS (
    VALUES ('project_views', (SELECT max(created_at) FROM project_views)),
           ('project_clicks', (SELECT max(created_at) FROM project_clicks)),
           ('project_likes', (SELECT max(created_at) FROM project_likes)),
           ('project_impressions', (SELECT max(created_at) FROM project_impressions)))
SELECT coalesce(max(extract(epoch FROM greatest(
           least(time_bucket(v.width, now()), time_bucket(v.width, n.at))
           - _timescaledb_functions.to_timestamp(t.watermark),
           INTERVAL '0'))), 0)
FROM unnest(%(views)s::text[], %(sources)s::text[], %(widths)s::interval[])
     AS v(name, source, width)
JOIN newest AS n ON n.source = v.source AND n.at IS NOT NULL
JOIN _timescaledb_catalog.continuous_agg AS ca
  ON ca.user_view_schema = current_schema() AND ca.user_view_name = v.name
LEFT JOIN _timescaledb_catalog.continuous_aggs_invalidation_threshold AS t
  ON t.hypertable_id = ca.raw_hypertable_id;

-- name: cagg_refresh_window
-- The refresh window of a continuous aggregate with buckets of %(width)s reading %(table)s:
-- from the start of its oldest chunk, but no earlier than the retention cutoff plus
-- %(margin)s, rounded up to a whole bucket, to the end of the current bucket. No row when
-- that holds no whole bucket or the hypertable has no chunk (see engagement/db/migrations.py).
-- The current bucket is materialised too, as the rollup tables of the other profiles hold
-- the current hour as of refresh-rollups' last run: readers of the current hour then read
-- its rows, not every raw event of it aggregated again (a trending run at 10,000 projects
-- took 0.51 s with the current hour real-time, 0.07 s with it materialised). Events after
-- a refresh are logged as invalidations and counted by the next one; real-time
-- aggregation still shows buckets past the newest one materialised (a new hour, until the
-- first refresh in it).
SELECT w.start, w.stop
FROM (SELECT time_bucket(%(width)s::interval, greatest(
                 min(range_start),
                 now() - %(retention)s::interval + %(margin)s::interval)
               + %(width)s::interval - INTERVAL '1 microsecond') AS start,
             time_bucket(%(width)s::interval, now()) + %(width)s::interval AS stop
      FROM timescaledb_information.chunks
      WHERE hypertable_schema = current_schema() AND hypertable_name = %(table)s
      HAVING min(range_start) IS NOT NULL) AS w
WHERE w.start < w.stop;

-- name: cagg_rewritten_from
-- Where a refresh of the continuous aggregate %(view)s from %(start)s on may change what its
-- readers see, or may materialise what they saw change unlogged, rounded down to its hour:
-- the earliest invalidation TimescaleDB has logged that reaches into that range (still in
-- its raw hypertable's log, or moved to its own), or the raw hypertable's invalidation
-- threshold, from which on events are not logged (readers see them in real time, and the
-- refresh materialises them); %(start)s at the earliest. Not the aggregate's watermark: that
-- ends at its last bucket with data, and would have every refresh rewrite the hours since.
-- Internal times are Unix microseconds.
SELECT time_bucket(INTERVAL '1 hour', _timescaledb_functions.to_timestamp(greatest(least(
           (SELECT min(h.lowest_modified_value)
            FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log AS h
            WHERE h.hypertable_id = ca.raw_hypertable_id
              AND h.greatest_modified_value >= w.lo),
           (SELECT min(m.lowest_modified_value)
            FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log AS m
            WHERE m.materialization_id = ca.mat_hypertable_id
              AND m.greatest_modified_value >= w.lo),
           t.watermark), w.lo)))
FROM _timescaledb_catalog.continuous_agg AS ca
JOIN _timescaledb_catalog.continuous_aggs_invalidation_threshold AS t
  ON t.hypertable_id = ca.raw_hypertable_id
CROSS JOIN (SELECT _timescaledb_functions.to_unix_microseconds(%(start)s::timestamptz) AS lo) AS w
WHERE ca.user_view_schema = current_schema() AND ca.user_view_name = %(view)s;

-- name: log_trending_hours
-- Profile timescale (caggs/0205): the hours [%(start)s, %(stop)s) a refresh of the hourly
-- views or likes may rewrite, logged as changed for the trending job, as rollups/0204 and
-- 0205 log them by trigger on the other profiles: the earliest for its window totals,
-- each for its blocks. Only hours a trending window may still count: those after the
-- start of the previous window (%(previous_hours)s hours before the current hour).
WITH hours AS (
    SELECT generate_series(greatest(%(start)s::timestamptz,
                                    date_trunc('hour', now(), 'UTC')
                                    - make_interval(hours => %(previous_hours)s)),
                           %(stop)s::timestamptz - INTERVAL '1 hour', INTERVAL '1 hour') AS bucket
), earliest AS (
    INSERT INTO trending_window_changes (bucket)
    SELECT min(bucket) FROM hours HAVING count(*) > 0
)
INSERT INTO trending_blocks_changes (bucket) SELECT bucket FROM hours;
