-- depends: 0202_impressions_hourly
-- Profiles postgres and timescale-apache: per-feed impressions and clicks per UTC day, so a
-- month of CTR reads ~30 rows per feed, position and variant instead of ~720. Kept by the
-- refresh-rollups job from the per-feed hourly tables, for the days of the hours it touched.

CREATE TABLE feed_impressions_daily (
    day         timestamptz NOT NULL,
    source      text NOT NULL,
    position    integer NULL,
    variant     text NULL,
    impressions bigint NOT NULL,
    CONSTRAINT feed_impressions_daily_key UNIQUE NULLS NOT DISTINCT (day, source, position, variant)
);
CREATE INDEX feed_impressions_daily_source_idx ON feed_impressions_daily (source, day);

CREATE TABLE feed_clicks_daily (
    day      timestamptz NOT NULL,
    source   text NOT NULL,
    position integer NULL,
    variant  text NULL,
    clicks   bigint NOT NULL,
    CONSTRAINT feed_clicks_daily_key UNIQUE NULLS NOT DISTINCT (day, source, position, variant)
);
CREATE INDEX feed_clicks_daily_source_idx ON feed_clicks_daily (source, day);

INSERT INTO feed_impressions_daily (day, source, position, variant, impressions)
SELECT date_trunc('day', bucket, 'UTC'), source, position, variant, sum(impressions)::bigint
FROM feed_impressions_hourly GROUP BY 1, 2, 3, 4;
INSERT INTO feed_clicks_daily (day, source, position, variant, clicks)
SELECT date_trunc('day', bucket, 'UTC'), source, position, variant, sum(clicks)::bigint
FROM feed_clicks_hourly GROUP BY 1, 2, 3, 4;
