-- depends: 0001_core
-- Profiles timescale and timescale-apache: raw events become hypertables. migrate_data
-- lets this run on a database that already holds events. Our own indexes replace the
-- defaults. The chunk interval is set afterwards from ENGAGEMENT_CHUNK_INTERVAL_DAYS.

SELECT create_hypertable('project_views', 'created_at', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true, if_not_exists => true);
SELECT create_hypertable('project_clicks', 'created_at', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true, if_not_exists => true);
SELECT create_hypertable('project_likes', 'created_at', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true, if_not_exists => true);
