-- depends: 0101_hypertables 0003_impressions
-- Profiles timescale and timescale-apache: impressions are the busiest raw table (every
-- card seen), so they are a hypertable like the other events. The chunk interval is set
-- afterwards from ENGAGEMENT_CHUNK_INTERVAL_DAYS.

SELECT create_hypertable('project_impressions', 'created_at', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false, migrate_data => true, if_not_exists => true);
