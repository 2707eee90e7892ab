-- name: record_profile
INSERT INTO engagement_meta (key, value) VALUES ('profile', %(profile)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: read_profile
SELECT value FROM engagement_meta WHERE key = 'profile';

-- name: record_job_success
-- When a job last succeeded, by whichever process ran it (a scheduler or `engagement
-- run-job`), in ISO 8601 UTC (read back the same whatever the session's DateStyle). An
-- earlier time never replaces a later one, in whatever order two processes record them.
INSERT INTO engagement_meta (key, value)
VALUES ('job_last_success:' || %(job_name)s,
        to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
ON CONFLICT (key) DO UPDATE SET value = excluded.value
WHERE engagement_meta.value::timestamptz < excluded.value::timestamptz;

-- name: scheduler_gauges
-- What the scheduler's gauges show, read at scrape time: the rows of the trending table, and
-- each job's last success in Unix seconds.
SELECT (SELECT count(*) FROM trending_scores),
       coalesce(array_agg(substr(key, length('job_last_success:') + 1) ORDER BY key), '{}'),
       coalesce(array_agg(extract(epoch FROM value::timestamptz)::float8 ORDER BY key), '{}')
FROM engagement_meta
WHERE starts_with(key, 'job_last_success:');
