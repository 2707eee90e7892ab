-- depends: 0203_impressions_hourly
-- transactional: false
-- Profile timescale: per-feed impressions and clicks per UTC day as hierarchical real-time
-- continuous aggregates over the hourly ones (the same relations rollups/0203_feed_daily
-- keeps as tables). A month of CTR then reads ~30 rows per feed, position and variant.

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_impressions_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS day,
       source,
       position,
       variant,
       sum(impressions)::bigint AS impressions
FROM feed_impressions_hourly
GROUP BY time_bucket(INTERVAL '1 day', bucket), source, position, variant
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS feed_clicks_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS day,
       source,
       position,
       variant,
       sum(clicks)::bigint AS clicks
FROM feed_clicks_hourly
GROUP BY time_bucket(INTERVAL '1 day', bucket), source, position, variant
WITH NO DATA;
