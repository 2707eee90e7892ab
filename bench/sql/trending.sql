-- Data and the raw-events comparison for the trending benchmark (bench/trending.py).
-- Hours are counted back from %(hour)s = date_trunc('hour', now()): hour offset 0 is the
-- current bucket. Counts come from integer hashes of (project, hour), so a run is repeatable.

-- name: reset_trending_data
TRUNCATE projects, project_views, project_clicks, project_likes, project_views_hourly,
         project_clicks_hourly, project_likes_hourly, rollup_invalidations, trending_scores,
         trending_window_totals, trending_window_state, trending_blocks, trending_blocks_state,
         trending_blocks_changes
    CASCADE;

-- name: hourly_staging_tables
-- timescale: tables named as the other profiles' hourly rollup tables, for the fill_*_hourly
-- queries and the raw events generated from them. Temporary, so this session finds them
-- before the continuous aggregates of the same names.
CREATE TEMPORARY TABLE project_views_hourly
    (bucket timestamptz, project_id bigint, source text, views bigint);
CREATE TEMPORARY TABLE project_likes_hourly
    (bucket timestamptz, project_id bigint, likes bigint, unlikes bigint);

-- name: make_some_private
-- One project in twenty is private: trending must leave it out.
UPDATE projects SET is_private = true WHERE id %% 20 = 0;

-- name: fill_views_hourly
-- Every project has views in every hour: 'direct' always and 'explore' every second hour,
-- each with 1..(2 * mean - 1) views (the mean is %(mean)s). Rows go in hour by hour, as
-- refresh-rollups writes them (and TimescaleDB materializes them): the LATERAL keeps the
-- hour loop outermost. Left to itself the planner put the project loop outside, so an
-- hour's rows were spread over the whole table, which no deployment does.
INSERT INTO project_views_hourly (bucket, project_id, source, views)
SELECT %(hour)s::timestamptz - make_interval(hours => h), x.p, x.source,
       1 + (x.p * 7 + h * 13 + x.k * 5) %% (2 * %(mean)s - 1)
FROM generate_series(%(hours)s - 1, 0, -1) AS h
CROSS JOIN LATERAL (
    SELECT p, s.k, s.source
    FROM generate_series(1, %(projects)s::bigint) AS p
    CROSS JOIN (VALUES (0, 'direct'), (1, 'explore')) AS s(k, source)
    WHERE s.k = 0 OR (p + h) %% 2 = 0
    OFFSET 0  -- not flattened into the outer query, so it stays the inner loop
) AS x;

-- name: fill_clicks_hourly
-- Clicks every second hour (the formula does not use them; the view reads them).
INSERT INTO project_clicks_hourly (bucket, project_id, source, position, clicks)
SELECT %(hour)s::timestamptz - make_interval(hours => h), x.p, 'explore_trending',
       (x.p %% 20)::int, 1 + (x.p + h) %% 5
FROM generate_series(%(hours)s - 1, 0, -1) AS h
CROSS JOIN LATERAL (
    SELECT p FROM generate_series(1, %(projects)s::bigint) AS p WHERE (p + h) %% 2 = 1 OFFSET 0
) AS x;

-- name: fill_likes_hourly
-- Likes in one project-hour out of four; some unlikes.
INSERT INTO project_likes_hourly (bucket, project_id, likes, unlikes)
SELECT %(hour)s::timestamptz - make_interval(hours => h), x.p, 1 + (x.p + h) %% 3, (x.p * h) %% 2
FROM generate_series(%(hours)s - 1, 0, -1) AS h
CROSS JOIN LATERAL (
    SELECT p FROM generate_series(1, %(projects)s::bigint) AS p WHERE (p * 31 + h) %% 4 = 0 OFFSET 0
) AS x;

-- name: drop_raw_indexes
DO $$
DECLARE index_name text;
BEGIN
    FOR index_name IN SELECT indexname FROM pg_indexes
                      WHERE tablename IN ('project_views', 'project_likes') LOOP
        EXECUTE format('DROP INDEX %%I', index_name);
    END LOOP;
END
$$;

-- name: fill_raw_views
-- The raw events behind the hourly views of the hours after %(previous_start)s up to
-- %(last)s, spread over each hour, in time order as they would have arrived (an index scan
-- of an hour's events then reads its pages in turn, as in a deployment).
INSERT INTO project_views (created_at, project_id, user_id, session_key, source)
SELECT v.bucket + make_interval(secs => i * 3599.0 / v.views), v.project_id, NULL,
       '5f0c6a1e9b2d4c7f8a3e1b6d9c0f2a4e7b1d3c5f', v.source
FROM project_views_hourly AS v
CROSS JOIN LATERAL generate_series(1, v.views) AS i
WHERE v.bucket > %(previous_start)s AND v.bucket <= %(last)s
ORDER BY 1;

-- name: fill_raw_likes
INSERT INTO project_likes (created_at, project_id, user_id, action)
SELECT l.bucket + make_interval(secs => i * 3599.0 / (l.likes + l.unlikes)), l.project_id, i,
       CASE WHEN i <= l.likes THEN 1 ELSE -1 END
FROM project_likes_hourly AS l
CROSS JOIN LATERAL generate_series(1, l.likes + l.unlikes) AS i
WHERE l.bucket > %(previous_start)s AND l.bucket <= %(last)s
ORDER BY 1;

-- name: keep_job_scores
CREATE TEMPORARY TABLE job_scores AS SELECT * FROM trending_scores;

-- name: trending_from_raw_events
-- ARCHITECTURE §5 straight from the raw events: what the hourly counts save us from.
-- Bucket b is the events with b <= created_at < b + 1 hour. Written like the job writes.
INSERT INTO trending_scores_next (project_id, score, velocity, like_velocity, view_velocity,
                        recent_likes, previous_likes, recent_views, previous_views,
                        days_old, computed_at)
SELECT c.project_id,
       v.velocity / (1.0 + a.days_old * %(recency_per_day)s::float8),
       v.velocity, v.like_velocity, v.view_velocity,
       c.recent_likes, c.previous_likes, c.recent_views, c.previous_views,
       a.days_old, %(now)s
FROM (
    SELECT coalesce(vw.project_id, lk.project_id) AS project_id,
           coalesce(lk.recent_likes, 0) AS recent_likes,
           coalesce(lk.previous_likes, 0) AS previous_likes,
           coalesce(vw.recent_views, 0) AS recent_views,
           coalesce(vw.previous_views, 0) AS previous_views
    FROM (
        SELECT project_id,
               count(*) FILTER (WHERE created_at >= %(recent_start)s::timestamptz + interval '1 hour')
                   AS recent_views,
               count(*) FILTER (WHERE created_at < %(recent_start)s::timestamptz + interval '1 hour')
                   AS previous_views
        FROM project_views
        WHERE created_at >= %(previous_start)s::timestamptz + interval '1 hour'
          AND created_at < %(hour)s::timestamptz + interval '1 hour'
        GROUP BY project_id
    ) AS vw
    FULL JOIN (
        SELECT project_id,
               greatest(coalesce(sum(action) FILTER (
                   WHERE created_at >= %(recent_start)s::timestamptz + interval '1 hour'), 0), 0)
                   AS recent_likes,
               greatest(coalesce(sum(action) FILTER (
                   WHERE created_at < %(recent_start)s::timestamptz + interval '1 hour'), 0), 0)
                   AS previous_likes,
               bool_or(action = 1) AS liked
        FROM project_likes
        WHERE created_at >= %(previous_start)s::timestamptz + interval '1 hour'
          AND created_at < %(hour)s::timestamptz + interval '1 hour'
        GROUP BY project_id
    ) AS lk ON lk.project_id = vw.project_id
    WHERE vw.project_id IS NOT NULL OR lk.liked
) AS c
JOIN projects AS p ON p.id = c.project_id AND NOT p.is_private
CROSS JOIN LATERAL (
    SELECT greatest(floor(extract(epoch FROM (%(now)s - p.created_at)) / 86400), 0)::integer
           AS days_old
) AS a
CROSS JOIN LATERAL (
    SELECT lv AS like_velocity, vv AS view_velocity,
           lv * %(like_weight)s::float8 + vv * %(view_weight)s::float8 AS velocity
    FROM (SELECT (c.recent_likes - c.previous_likes)::float8 / greatest(c.previous_likes, 1) AS lv,
                 (c.recent_views - c.previous_views)::float8 / greatest(c.previous_views, 1) AS vv)
         AS raw
) AS v;

-- name: compare_with_raw
-- Rows where the job's answer (kept) and the raw-events answer differ (want: 0).
SELECT count(*)
FROM job_scores AS t
FULL JOIN trending_scores AS r USING (project_id)
WHERE t.project_id IS NULL OR r.project_id IS NULL
   OR abs(t.score - r.score) > 1e-9 * greatest(abs(r.score), 1)
   OR (t.recent_views, t.previous_views, t.recent_likes, t.previous_likes, t.days_old)
      IS DISTINCT FROM (r.recent_views, r.previous_views, r.recent_likes, r.previous_likes,
                        r.days_old);

-- name: trending_via_engagement_view
-- The job's formula as first written: over project_engagement_hourly, whose GROUP BY
-- (bucket, project_id) over all three hourly relations is what compute_trending now skips.
INSERT INTO trending_scores_next (project_id, score, velocity, like_velocity, view_velocity,
                             recent_likes, previous_likes, recent_views, previous_views,
                             days_old, computed_at)
SELECT c.project_id,
       v.velocity / (1.0 + a.days_old * %(recency_per_day)s::float8) AS score,
       v.velocity, v.like_velocity, v.view_velocity,
       c.recent_likes, c.previous_likes, c.recent_views, c.previous_views,
       a.days_old, %(now)s
FROM (
    SELECT e.project_id,
           greatest(coalesce(sum(e.likes - e.unlikes) FILTER (WHERE e.bucket > %(recent_start)s), 0), 0)
               AS recent_likes,
           greatest(coalesce(sum(e.likes - e.unlikes) FILTER (WHERE e.bucket <= %(recent_start)s), 0), 0)
               AS previous_likes,
           coalesce(sum(e.views) FILTER (WHERE e.bucket > %(recent_start)s), 0) AS recent_views,
           coalesce(sum(e.views) FILTER (WHERE e.bucket <= %(recent_start)s), 0) AS previous_views,
           bool_or(e.views > 0 OR e.likes > 0) AS active
    FROM project_engagement_hourly AS e
    WHERE e.bucket > %(previous_start)s AND e.bucket <= %(hour)s
    GROUP BY e.project_id
) AS c
JOIN projects AS p ON p.id = c.project_id AND NOT p.is_private
CROSS JOIN LATERAL (
    SELECT greatest(floor(extract(epoch FROM (%(now)s - p.created_at)) / 86400), 0)::integer
           AS days_old
) AS a
CROSS JOIN LATERAL (
    SELECT lv AS like_velocity, vv AS view_velocity,
           lv * %(like_weight)s::float8 + vv * %(view_weight)s::float8 AS velocity
    FROM (SELECT (c.recent_likes - c.previous_likes)::float8 / greatest(c.previous_likes, 1) AS lv,
                 (c.recent_views - c.previous_views)::float8 / greatest(c.previous_views, 1) AS vv)
         AS raw
) AS v
WHERE c.active;
