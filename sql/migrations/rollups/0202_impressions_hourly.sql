-- depends: 0201_rollups 0003_impressions
-- Profiles postgres and timescale-apache: hourly counts for the insights endpoints, kept by
-- the refresh-rollups job like the others.
--   project_impressions_hourly: impressions per project, feed, position and variant.
--   feed_impressions_hourly, feed_clicks_hourly: the same per feed, position and variant
--     without the project, so CTR over a month reads a few thousand rows, not millions.
--   site_views_hourly: views of all projects per hour, for the site-wide heatmap.
-- The tables without a project id cannot lose a deleted project's events by cascade: a
-- trigger on projects logs the hours that project had events in, and the next refresh
-- recomputes them.

CREATE TABLE project_impressions_hourly (
    bucket      timestamptz NOT NULL,
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source      text NOT NULL,
    position    integer NULL,
    variant     text NULL,
    impressions bigint NOT NULL,
    CONSTRAINT project_impressions_hourly_key
        UNIQUE NULLS NOT DISTINCT (bucket, project_id, source, position, variant)
);
CREATE INDEX project_impressions_hourly_project_idx ON project_impressions_hourly (project_id, bucket);

CREATE TABLE feed_impressions_hourly (
    bucket      timestamptz NOT NULL,
    source      text NOT NULL,
    position    integer NULL,
    variant     text NULL,
    impressions bigint NOT NULL,
    CONSTRAINT feed_impressions_hourly_key
        UNIQUE NULLS NOT DISTINCT (bucket, source, position, variant)
);
CREATE INDEX feed_impressions_hourly_source_idx ON feed_impressions_hourly (source, bucket);

CREATE TABLE feed_clicks_hourly (
    bucket   timestamptz NOT NULL,
    source   text NOT NULL,
    position integer NULL,
    variant  text NULL,
    clicks   bigint NOT NULL,
    CONSTRAINT feed_clicks_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, source, position, variant)
);
CREATE INDEX feed_clicks_hourly_source_idx ON feed_clicks_hourly (source, bucket);

CREATE TABLE site_views_hourly (
    bucket timestamptz NOT NULL,
    source text NOT NULL,
    views  bigint NOT NULL,
    PRIMARY KEY (bucket, source)
);

-- An existing database: the new per-site tables start from the counts already kept (exact,
-- and older than raw retention too); clicks had no variant before this migration.
INSERT INTO feed_clicks_hourly (bucket, source, position, variant, clicks)
SELECT bucket, source, position, NULL, sum(clicks)::bigint
FROM project_clicks_hourly GROUP BY bucket, source, position;
INSERT INTO site_views_hourly (bucket, source, views)
SELECT bucket, source, sum(views)::bigint FROM project_views_hourly GROUP BY bucket, source;

CREATE FUNCTION rollup_invalidate_project() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    -- BEFORE DELETE: the events are still there; the cascade removes them afterwards.
    INSERT INTO rollup_invalidations (relation, bucket)
    SELECT 'views', hour FROM (SELECT DISTINCT date_trunc('hour', created_at, 'UTC') AS hour
                               FROM project_views WHERE project_id = OLD.id) AS v
    UNION ALL
    SELECT 'clicks', hour FROM (SELECT DISTINCT date_trunc('hour', created_at, 'UTC') AS hour
                                FROM project_clicks WHERE project_id = OLD.id) AS c
    UNION ALL
    SELECT 'impressions', hour FROM (SELECT DISTINCT date_trunc('hour', created_at, 'UTC') AS hour
                                     FROM project_impressions WHERE project_id = OLD.id) AS i;
    RETURN OLD;
END
$fn$;

CREATE TRIGGER projects_rollup_invalidate BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION rollup_invalidate_project();

DO $do$
BEGIN
    IF to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL THEN
        CREATE TRIGGER project_impressions_rollup_invalidate AFTER INSERT ON project_impressions
            FOR EACH ROW EXECUTE FUNCTION rollup_invalidate_row('impressions');
    ELSE
        CREATE TRIGGER project_impressions_rollup_invalidate AFTER INSERT ON project_impressions
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION rollup_invalidate_statement('impressions');
    END IF;
END
$do$;
