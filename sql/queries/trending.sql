-- name: lock_trending
SELECT pg_advisory_xact_lock(7361002);

-- The job builds the new scores in trending_scores_next (same columns and constraints, no
-- indexes yet), indexes it in bulk, checks its foreign key in one pass, then swaps it in for
-- trending_scores: all in one transaction, so readers see the old table or the new one,
-- never a half-written one, and wait only for the swap (milliseconds). Deleting and
-- re-inserting every row instead cost an FK check per row, index inserts among the dead
-- entries of earlier runs, and a table that bloats between vacuums.

-- name: create_trending_next
CREATE TABLE trending_scores_next
    (LIKE trending_scores INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS);

-- name: index_trending_next
ALTER TABLE trending_scores_next ADD CONSTRAINT trending_scores_next_pkey PRIMARY KEY (project_id);
CREATE INDEX trending_scores_next_order_idx
    ON trending_scores_next (score DESC, recent_views DESC, project_id ASC);
ALTER TABLE trending_scores_next ADD CONSTRAINT trending_scores_next_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;

-- name: lock_trending_for_swap
-- Waits for readers of the old table to finish; the job retries it after a short
-- lock_timeout so readers never queue behind the swap for long.
LOCK TABLE trending_scores IN ACCESS EXCLUSIVE MODE;

-- name: swap_trending
DROP TABLE trending_scores;
ALTER TABLE trending_scores_next RENAME TO trending_scores;
ALTER INDEX trending_scores_next_pkey RENAME TO trending_scores_pkey;
ALTER INDEX trending_scores_next_order_idx RENAME TO trending_scores_order_idx;
ALTER TABLE trending_scores RENAME CONSTRAINT trending_scores_next_project_id_fkey
    TO trending_scores_project_id_fkey;

-- name: compute_trending
-- ARCHITECTURE §5 over the hourly counts. %(hour)s is date_trunc('hour', now) in UTC; the
-- recent window is the buckets (hour - recent_hours, hour], the previous one the buckets
-- (hour - previous_hours, hour - recent_hours]. The formula needs views and likes only, so
-- it reads those two hourly relations straight (not project_engagement_hourly, whose
-- per-(bucket, project) GROUP BY over all three relations cost five times as much and
-- spilled to disk at 100k projects): window totals add up the same whichever way they are
-- grouped, and a project is active when any of its hours has a view or a like.
INSERT INTO trending_scores_next (project_id, score, velocity, like_velocity, view_velocity,
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
