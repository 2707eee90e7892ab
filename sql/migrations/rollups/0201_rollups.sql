-- depends: 0001_core
-- Profiles postgres and timescale-apache: hourly counts as ordinary tables kept by the
-- refresh-rollups job. Every insert into a raw table appends the hours it touched to
-- rollup_invalidations (append-only, so ingest never waits on the refresher); the job
-- deletes what it can see and recomputes those hours from raw events in one transaction.
-- An event whose transaction commits after the job read the log has its own log row,
-- which becomes visible with it: late commits are picked up by the next run.

CREATE TABLE project_views_hourly (
    bucket     timestamptz NOT NULL,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source     text NOT NULL,
    views      bigint NOT NULL,
    PRIMARY KEY (bucket, project_id, source)
);
CREATE INDEX project_views_hourly_project_idx ON project_views_hourly (project_id, bucket);

CREATE TABLE project_clicks_hourly (
    bucket     timestamptz NOT NULL,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source     text NOT NULL,
    position   integer NULL,
    clicks     bigint NOT NULL,
    CONSTRAINT project_clicks_hourly_key UNIQUE NULLS NOT DISTINCT (bucket, project_id, source, position)
);
CREATE INDEX project_clicks_hourly_project_idx ON project_clicks_hourly (project_id, bucket);

CREATE TABLE project_likes_hourly (
    bucket     timestamptz NOT NULL,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    likes      bigint NOT NULL,
    unlikes    bigint NOT NULL,
    PRIMARY KEY (bucket, project_id)
);
CREATE INDEX project_likes_hourly_project_idx ON project_likes_hourly (project_id, bucket);

CREATE TABLE rollup_invalidations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation    text NOT NULL,
    bucket      timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Statement-level: one log row per touched hour per insert statement.
CREATE FUNCTION rollup_invalidate_statement() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO rollup_invalidations (relation, bucket)
    SELECT DISTINCT TG_ARGV[0], date_trunc('hour', created_at, 'UTC') FROM new_rows;
    RETURN NULL;
END
$fn$;

-- Row-level fallback for hypertables (timescale-apache), which refuse transition tables.
CREATE FUNCTION rollup_invalidate_row() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO rollup_invalidations (relation, bucket)
    VALUES (TG_ARGV[0], date_trunc('hour', NEW.created_at, 'UTC'));
    RETURN NULL;
END
$fn$;

DO $do$
DECLARE
    is_hypertable boolean := to_regclass('_timescaledb_catalog.hypertable') IS NOT NULL;
    rel text;
BEGIN
    FOREACH rel IN ARRAY ARRAY['views', 'clicks', 'likes'] LOOP
        IF is_hypertable THEN
            EXECUTE format(
                'CREATE TRIGGER project_%1$s_rollup_invalidate AFTER INSERT ON project_%1$s '
                'FOR EACH ROW EXECUTE FUNCTION rollup_invalidate_row(%1$L)', rel);
        ELSE
            EXECUTE format(
                'CREATE TRIGGER project_%1$s_rollup_invalidate AFTER INSERT ON project_%1$s '
                'REFERENCING NEW TABLE AS new_rows '
                'FOR EACH STATEMENT EXECUTE FUNCTION rollup_invalidate_statement(%1$L)', rel);
        END IF;
    END LOOP;
END
$do$;
