-- name: lock_trending
SELECT pg_advisory_xact_lock(7361002);

-- name: clear_trending
DELETE FROM trending_scores;

-- name: compute_trending
-- ARCHITECTURE §5 over the hourly counts. %(hour)s is date_trunc('hour', now) in UTC; the
-- recent window is the buckets (hour - recent_hours, hour], the previous one the buckets
-- (hour - previous_hours, hour - recent_hours]. Bounds are plain parameters so they push
-- down through project_engagement_hourly into each hourly relation's index.
INSERT INTO trending_scores (project_id, score, velocity, like_velocity, view_velocity,
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

-- name: record_trending_run
INSERT INTO engagement_meta (key, value) VALUES ('trending_computed_at', %(now)s::text)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: trending_computed_at
SELECT value::timestamptz FROM engagement_meta WHERE key = 'trending_computed_at';

-- name: trending_page
SELECT t.project_id, t.score, t.velocity, t.like_velocity, t.view_velocity,
       t.recent_likes, t.previous_likes, t.recent_views, t.previous_views, t.days_old
FROM trending_scores AS t
JOIN projects AS p ON p.id = t.project_id
WHERE NOT p.is_private
ORDER BY t.score DESC, t.recent_views DESC, t.project_id ASC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: trending_count
SELECT count(*) FROM trending_scores;
