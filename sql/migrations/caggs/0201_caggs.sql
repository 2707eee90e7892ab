-- depends: 0101_hypertables
-- transactional: false
-- Profile timescale: hourly counts as real-time continuous aggregates. Created WITH NO DATA
-- (a refresh cannot run inside a transaction); `engagement migrate` refreshes them once
-- afterwards and the refresh policies keep them current.

CREATE MATERIALIZED VIEW IF NOT EXISTS project_views_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       project_id,
       source,
       count(*) AS views
FROM project_views
GROUP BY time_bucket(INTERVAL '1 hour', created_at), project_id, source
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS project_clicks_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       project_id,
       source,
       position,
       count(*) AS clicks
FROM project_clicks
GROUP BY time_bucket(INTERVAL '1 hour', created_at), project_id, source, position
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS project_likes_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       project_id,
       sum(CASE WHEN action = 1 THEN 1 ELSE 0 END)::bigint AS likes,
       sum(CASE WHEN action = -1 THEN 1 ELSE 0 END)::bigint AS unlikes
FROM project_likes
GROUP BY time_bucket(INTERVAL '1 hour', created_at), project_id
WITH NO DATA;
