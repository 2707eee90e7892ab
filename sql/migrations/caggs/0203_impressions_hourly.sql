-- depends: 0202_compression 0102_impressions
-- transactional: false
-- Profile timescale: the insights' hourly counts as real-time continuous aggregates, the
-- same relations the rollups profiles keep as tables (see rollups/0202_impressions_hourly).
-- The per-feed and site-wide ones drop the project so month-long reads stay small; each is
-- computed from raw events, so deleting a project (cascade) invalidates and fixes them too.

CREATE MATERIALIZED VIEW IF NOT EXISTS project_impressions_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       project_id,
       source,
       position,
       variant,
       count(*) AS impressions
FROM project_impressions
GROUP BY time_bucket(INTERVAL '1 hour', created_at), project_id, source, position, variant
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_impressions_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       source,
       position,
       variant,
       count(*) AS impressions
FROM project_impressions
GROUP BY time_bucket(INTERVAL '1 hour', created_at), source, position, variant
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_clicks_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       source,
       position,
       variant,
       count(*) AS clicks
FROM project_clicks
GROUP BY time_bucket(INTERVAL '1 hour', created_at), source, position, variant
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_views_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', created_at) AS bucket,
       source,
       count(*) AS views
FROM project_views
GROUP BY time_bucket(INTERVAL '1 hour', created_at), source
WITH NO DATA;

ALTER TABLE project_impressions SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'project_id', timescaledb.compress_orderby = 'created_at DESC');
