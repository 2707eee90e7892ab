-- name: lock_trending
SELECT pg_advisory_xact_lock(7361002);

-- name: clear_trending
DELETE FROM trending_scores;

-- name: compute_trending
-- ARCHITECTURE §5 over the hourly counts. %(hour)s is date_trunc('hour', now) in UTC; the
-- recent window is the buckets (hour - recent_hours, hour], the previous one the buckets
-- (hour - previous_hours, hour - recent_hours]. The formula needs views and likes only, so
-- it reads those two hourly relations straight (not project_engagement_hourly, whose
-- per-(bucket, project) GROUP BY over all three relations cost five times as much and
-- spilled to disk at 100k projects): window totals add up the same whichever way they are
-- grouped, and a project is active when any of its hours has a view or a like.
INSERT INTO trending_scores (project_id, score, velocity, like_velocity, view_velocity,
                             recent_likes, previous_likes, recent_views, previous_views,
                             days_old, computed_at)
SELECT c.project_id,
       v.velocity / (1.0 + a.days_old * %(recency_per_day)s::float8) AS score,
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
               sum(views) FILTER (WHERE bucket > %(recent_start)s) AS recent_views,
               sum(views) FILTER (WHERE bucket <= %(recent_start)s) AS previous_views,
               bool_or(views > 0) AS viewed
        FROM project_views_hourly
        WHERE bucket > %(previous_start)s AND bucket <= %(hour)s
        GROUP BY project_id
    ) AS vw
    FULL JOIN (
        SELECT project_id,
               greatest(coalesce(sum(likes - unlikes) FILTER (WHERE bucket > %(recent_start)s), 0), 0)
                   AS recent_likes,
               greatest(coalesce(sum(likes - unlikes) FILTER (WHERE bucket <= %(recent_start)s), 0), 0)
                   AS previous_likes,
               bool_or(likes > 0) AS liked
        FROM project_likes_hourly
        WHERE bucket > %(previous_start)s AND bucket <= %(hour)s
        GROUP BY project_id
    ) AS lk ON lk.project_id = vw.project_id
    WHERE vw.viewed OR lk.liked
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
