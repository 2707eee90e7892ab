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

-- The formula's window totals are kept between runs (core/0005): per project, the sums of
-- the hours before %(counted_to)s. The hours from %(counted_to)s to the current one are read
-- afresh by every run. counted_to is an hour before the current one, not the current one,
-- because refresh-rollups rewrites the hour just past once more after the hour turns (for
-- the events committed in its last seconds): counted already, that rewrite would force a
-- rebuild every hour.

-- name: trending_window_state
SELECT hour, counted_to, recent_hours, previous_hours FROM trending_window_state;

-- name: trending_window_changes
-- The hourly-count changes logged since the last run (rollups/0204) but for those already
-- read (%(seen)s): their ids, to delete exactly these afterwards, and whether any of them
-- touched an hour before %(counted_to)s, one the totals count.
SELECT coalesce(array_agg(id), '{}'), coalesce(bool_or(bucket < %(counted_to)s), false)
FROM trending_window_changes
WHERE id <> ALL(%(seen)s::bigint[]);

-- name: forget_trending_window_changes
DELETE FROM trending_window_changes WHERE id = ANY(%(ids)s);

-- name: clear_trending_window_totals
TRUNCATE trending_window_totals;

-- name: build_trending_window_totals
-- The window's hours before %(counted_to)s: ARCHITECTURE §5's sums before the live hours are
-- added and before likes are clamped at 0. The formula needs views and likes only, so this
-- reads those two hourly relations straight (not project_engagement_hourly, whose
-- per-(bucket, project) GROUP BY over all three relations cost five times as much and
-- spilled to disk at 100k projects): window totals add up the same whichever way they are
-- grouped, and a project is active when any of its hours has a view or a like.
INSERT INTO trending_window_totals (project_id, recent_views, previous_views, recent_likes,
                                    previous_likes, active_rows)
SELECT coalesce(vw.project_id, lk.project_id),
       coalesce(vw.recent_views, 0), coalesce(vw.previous_views, 0),
       coalesce(lk.recent_likes, 0), coalesce(lk.previous_likes, 0),
       coalesce(vw.viewed, 0) + coalesce(lk.liked, 0)
FROM (
    SELECT project_id,
           coalesce(sum(views) FILTER (WHERE bucket > %(recent_start)s), 0) AS recent_views,
           coalesce(sum(views) FILTER (WHERE bucket <= %(recent_start)s), 0) AS previous_views,
           count(*) FILTER (WHERE views > 0) AS viewed
    FROM project_views_hourly
    WHERE bucket > %(previous_start)s AND bucket < %(counted_to)s
    GROUP BY project_id
) AS vw
FULL JOIN (
    SELECT project_id,
           coalesce(sum(likes - unlikes) FILTER (WHERE bucket > %(recent_start)s), 0) AS recent_likes,
           coalesce(sum(likes - unlikes) FILTER (WHERE bucket <= %(recent_start)s), 0) AS previous_likes,
           count(*) FILTER (WHERE likes > 0) AS liked
    FROM project_likes_hourly
    WHERE bucket > %(previous_start)s AND bucket < %(counted_to)s
    GROUP BY project_id
) AS lk ON lk.project_id = vw.project_id;

-- name: build_trending_window_totals_from_blocks
-- The same totals from trending_blocks (rollups/0205): each window as a few aligned blocks
-- (%(block_hours)s, %(block_starts)s, none straddling the split between the windows) and
-- the single hours no covered block fits (%(hours)s), read from the hourly rows. The job
-- plans from trending_blocks_state and the log of stale hours read just before; `usable`
-- checks each block against both again in this statement's own snapshot, the one its
-- reads of the blocks and of the hourly rows see, and a block a concurrent change made
-- stale in between is read as its hours instead. One aggregate over both. OFFSET 0 keeps
-- each block an index range scan of its own rows (a join the planner may flatten into a
-- scan of every block), and the hours go to the hourly tables as an array, which they
-- read through their primary keys.
INSERT INTO trending_window_totals (project_id, recent_views, previous_views, recent_likes,
                                    previous_likes, active_rows)
WITH planned AS (
    SELECT hours, block_start, block_start + make_interval(hours => hours) AS block_end
    FROM unnest(%(block_hours)s::integer[], %(block_starts)s::timestamptz[])
         AS k(hours, block_start)
), usable AS (
    SELECT p.hours, p.block_start
    FROM planned AS p
    JOIN trending_blocks_state AS s
      ON p.block_start >= s.covered_from AND p.block_end <= s.covered_to
    WHERE NOT EXISTS (SELECT FROM trending_blocks_changes AS c
                      WHERE c.bucket = '-infinity'
                         OR (c.bucket >= p.block_start AND c.bucket < p.block_end))
), single_hours AS (
    SELECT unnest(%(hours)s::timestamptz[]) AS bucket
    UNION ALL
    SELECT generate_series(p.block_start, p.block_end - interval '1 hour', interval '1 hour')
    FROM planned AS p
    WHERE (p.hours, p.block_start) NOT IN (SELECT hours, block_start FROM usable)
)
SELECT project_id,
       coalesce(sum(views) FILTER (WHERE recent), 0),
       coalesce(sum(views) FILTER (WHERE NOT recent), 0),
       coalesce(sum(net_likes) FILTER (WHERE recent), 0),
       coalesce(sum(net_likes) FILTER (WHERE NOT recent), 0),
       sum(active_rows)
FROM (
    SELECT b.project_id, k.block_start > %(recent_start)s AS recent, b.views, b.net_likes,
           b.active_rows
    FROM usable AS k
    CROSS JOIN LATERAL (
        SELECT project_id, views, net_likes, active_rows
        FROM trending_blocks
        WHERE hours = k.hours AND block_start = k.block_start
        OFFSET 0
    ) AS b
    UNION ALL
    SELECT project_id, bucket > %(recent_start)s, views, 0, (views > 0)::integer::bigint
    FROM project_views_hourly
    WHERE bucket = ANY(ARRAY(SELECT bucket FROM single_hours))
    UNION ALL
    SELECT project_id, bucket > %(recent_start)s, 0, likes - unlikes, (likes > 0)::integer::bigint
    FROM project_likes_hourly
    WHERE bucket = ANY(ARRAY(SELECT bucket FROM single_hours))
) AS counted
GROUP BY project_id;

-- name: trending_blocks_state
SELECT covered_from, covered_to FROM trending_blocks_state;

-- name: trending_blocks_changes
-- The hours changed since refresh-rollups last brought the blocks up to date; NULL for a
-- truncation (every hour).
SELECT id, nullif(bucket, '-infinity') FROM trending_blocks_changes;

-- name: trending_blocks_stale_hours
SELECT DISTINCT nullif(bucket, '-infinity') FROM trending_blocks_changes;

-- name: forget_trending_blocks_changes
DELETE FROM trending_blocks_changes WHERE id = ANY(%(ids)s);

-- name: record_trending_blocks_state
INSERT INTO trending_blocks_state (covered_from, covered_to)
VALUES (%(covered_from)s, %(covered_to)s)
ON CONFLICT (singleton) DO UPDATE
SET covered_from = excluded.covered_from, covered_to = excluded.covered_to;

-- name: prune_trending_blocks
-- Blocks no longer wholly inside the covered hours.
DELETE FROM trending_blocks
WHERE block_start < %(covered_from)s
   OR block_start + make_interval(hours => hours) > %(covered_to)s;

-- name: clear_trending_blocks
DELETE FROM trending_blocks AS b
USING unnest(%(block_starts)s::timestamptz[]) AS k(block_start)
WHERE b.hours = %(hours)s AND b.block_start = k.block_start;

-- name: fill_trending_blocks_from_hours
-- Blocks of %(hours)s hours summed from the hourly views and likes of %(buckets)s, their
-- hours. Each branch reads its hours through its primary key (a range per block, or a join
-- on the bucket, made the planner scan the whole table). Rows go in in the primary key's
-- order, so a block's index scan reads its rows page by page: in hash order it read a page
-- per row, 47 of an 85 ms rebuild at 10,000 projects.
INSERT INTO trending_blocks (hours, block_start, project_id, views, net_likes, active_rows)
SELECT %(hours)s, date_bin(make_interval(hours => %(hours)s), bucket, timestamptz 'epoch'),
       project_id, sum(views), sum(net_likes), sum(active)
FROM (
    SELECT bucket, project_id, views, 0::bigint AS net_likes, (views > 0)::integer AS active
    FROM project_views_hourly
    WHERE bucket = ANY(%(buckets)s::timestamptz[])
    UNION ALL
    SELECT bucket, project_id, 0, likes - unlikes, (likes > 0)::integer
    FROM project_likes_hourly
    WHERE bucket = ANY(%(buckets)s::timestamptz[])
) AS h
GROUP BY 2, project_id
ORDER BY 2, project_id;

-- name: fill_trending_blocks_from_halves
-- Blocks of %(hours)s hours summed from their two halves, which must be there already.
INSERT INTO trending_blocks (hours, block_start, project_id, views, net_likes, active_rows)
SELECT %(hours)s, k.block_start, b.project_id, sum(b.views), sum(b.net_likes),
       sum(b.active_rows)
FROM unnest(%(block_starts)s::timestamptz[]) AS k(block_start)
CROSS JOIN LATERAL (
    SELECT project_id, views, net_likes, active_rows
    FROM trending_blocks
    WHERE hours = %(hours)s / 2
      AND block_start IN (k.block_start, k.block_start + make_interval(hours => %(hours)s / 2))
    OFFSET 0
) AS b
GROUP BY k.block_start, b.project_id
ORDER BY k.block_start, b.project_id;

-- name: shift_trending_window_totals
-- The hour turned (from %(old_hour)s, totals counting the hours before %(old_counted_to)s,
-- to %(hour)s and %(counted_to)s; same window lengths). What the totals count changes only
-- for the hours that entered or left one of the windows: `moved` works out, hour by hour,
-- how each is counted now minus how it was (+1, -1 or 0 in the recent window, the previous
-- one, and the window as a whole), keeps the hours where something changed (for a shift of
-- one hour: the hour that became counted, the one that crossed from recent to previous and
-- the one that left) and only their rows are read, as an array of buckets that the hourly
-- relations read through their bucket index (on timescale the join condition did not reach
-- inside the continuous aggregate's union, which was read whole: 0.45 s of a shifting run
-- at 10,000 projects, 0.11 s now). The shifted totals go to a temporary
-- table, which then replaces the old ones; projects left with nothing are dropped.
CREATE TEMPORARY TABLE trending_window_shifted ON COMMIT DROP AS
WITH hours AS (
    SELECT b,
           (b > %(recent_start)s AND b < %(counted_to)s)::int
               - (b > %(old_recent_start)s AND b < %(old_counted_to)s)::int AS recent,
           (b > %(previous_start)s AND b <= %(recent_start)s AND b < %(counted_to)s)::int
               - (b > %(old_previous_start)s AND b <= %(old_recent_start)s
                  AND b < %(old_counted_to)s)::int AS previous,
           (b > %(previous_start)s AND b < %(counted_to)s)::int
               - (b > %(old_previous_start)s AND b < %(old_counted_to)s)::int AS in_window
    FROM generate_series(%(old_previous_start)s::timestamptz, %(hour)s::timestamptz,
                         interval '1 hour') AS b
), moved AS (
    SELECT b AS bucket, recent, previous, in_window
    FROM hours
    WHERE recent <> 0 OR previous <> 0 OR in_window <> 0
), delta AS (
    SELECT project_id,
           sum(recent_views)::bigint AS recent_views,
           sum(previous_views)::bigint AS previous_views,
           sum(recent_likes)::bigint AS recent_likes,
           sum(previous_likes)::bigint AS previous_likes,
           sum(active_rows)::bigint AS active_rows
    FROM (
        SELECT v.project_id, v.views * m.recent AS recent_views,
               v.views * m.previous AS previous_views, 0 AS recent_likes, 0 AS previous_likes,
               (v.views > 0)::int * m.in_window AS active_rows
        FROM project_views_hourly AS v
        JOIN moved AS m ON m.bucket = v.bucket
        WHERE v.bucket = ANY(ARRAY(SELECT bucket FROM moved))
        UNION ALL
        SELECT l.project_id, 0, 0, (l.likes - l.unlikes) * m.recent,
               (l.likes - l.unlikes) * m.previous, (l.likes > 0)::int * m.in_window
        FROM project_likes_hourly AS l
        JOIN moved AS m ON m.bucket = l.bucket
        WHERE l.bucket = ANY(ARRAY(SELECT bucket FROM moved))
    ) AS hourly
    GROUP BY project_id
)
SELECT coalesce(t.project_id, d.project_id) AS project_id,
       coalesce(t.recent_views, 0) + coalesce(d.recent_views, 0) AS recent_views,
       coalesce(t.previous_views, 0) + coalesce(d.previous_views, 0) AS previous_views,
       coalesce(t.recent_likes, 0) + coalesce(d.recent_likes, 0) AS recent_likes,
       coalesce(t.previous_likes, 0) + coalesce(d.previous_likes, 0) AS previous_likes,
       coalesce(t.active_rows, 0) + coalesce(d.active_rows, 0) AS active_rows
FROM trending_window_totals AS t
FULL JOIN delta AS d ON d.project_id = t.project_id;

-- name: replace_trending_window_totals
INSERT INTO trending_window_totals (project_id, recent_views, previous_views, recent_likes,
                                    previous_likes, active_rows)
SELECT project_id, recent_views, previous_views, recent_likes, previous_likes, active_rows
FROM trending_window_shifted
WHERE active_rows <> 0 OR recent_views <> 0 OR previous_views <> 0 OR recent_likes <> 0
   OR previous_likes <> 0;

-- name: record_trending_window_state
INSERT INTO trending_window_state (hour, counted_to, recent_hours, previous_hours)
VALUES (%(hour)s, %(counted_to)s, %(recent_hours)s, %(previous_hours)s)
ON CONFLICT (singleton) DO UPDATE
SET hour = excluded.hour, counted_to = excluded.counted_to,
    recent_hours = excluded.recent_hours, previous_hours = excluded.previous_hours;

-- name: compute_trending
-- ARCHITECTURE §5: the window totals plus the live hours, %(counted_to)s to %(hour)s =
-- date_trunc('hour', now) in UTC, each in the recent or the previous window by its bucket.
-- The sums are cast back to bigint (sum(bigint) is numeric): numeric arithmetic on them
-- below cost ~4 µs a project, half of the whole query at 10,000 projects.
INSERT INTO trending_scores_next (project_id, score, velocity, like_velocity, view_velocity,
                                  recent_likes, previous_likes, recent_views, previous_views,
                                  days_old, computed_at)
SELECT c.project_id,
       v.velocity / (1.0 + a.days_old * %(recency_per_day)s::float8) AS score,
       v.velocity, v.like_velocity, v.view_velocity,
       c.recent_likes, c.previous_likes, c.recent_views, c.previous_views,
       a.days_old, %(now)s
FROM (
    SELECT coalesce(t.project_id, lv.project_id, ll.project_id) AS project_id,
           greatest(coalesce(t.recent_likes, 0) + coalesce(ll.recent_likes, 0), 0) AS recent_likes,
           greatest(coalesce(t.previous_likes, 0) + coalesce(ll.previous_likes, 0), 0)
               AS previous_likes,
           coalesce(t.recent_views, 0) + coalesce(lv.recent_views, 0) AS recent_views,
           coalesce(t.previous_views, 0) + coalesce(lv.previous_views, 0) AS previous_views
    FROM trending_window_totals AS t
    FULL JOIN (
        SELECT project_id,
               coalesce(sum(views) FILTER (WHERE bucket > %(recent_start)s), 0)::bigint
                   AS recent_views,
               coalesce(sum(views) FILTER (WHERE bucket <= %(recent_start)s), 0)::bigint
                   AS previous_views,
               bool_or(views > 0) AS viewed
        FROM project_views_hourly
        WHERE bucket >= %(counted_to)s AND bucket <= %(hour)s
        GROUP BY project_id
    ) AS lv ON lv.project_id = t.project_id
    FULL JOIN (
        SELECT project_id,
               coalesce(sum(likes - unlikes) FILTER (WHERE bucket > %(recent_start)s), 0)::bigint
                   AS recent_likes,
               coalesce(sum(likes - unlikes) FILTER (WHERE bucket <= %(recent_start)s), 0)::bigint
                   AS previous_likes,
               bool_or(likes > 0) AS liked
        FROM project_likes_hourly
        WHERE bucket >= %(counted_to)s AND bucket <= %(hour)s
        GROUP BY project_id
    ) AS ll ON ll.project_id = coalesce(t.project_id, lv.project_id)
    WHERE t.active_rows > 0 OR lv.viewed OR ll.liked
) AS c
JOIN projects AS p ON p.id = c.project_id AND NOT p.is_private
CROSS JOIN LATERAL (
    -- date_part is float8 (extract is numeric, 4x the cost here); exact to the microsecond
    -- for any age under 285 years, so the floor is the same.
    SELECT greatest(floor(date_part('epoch', %(now)s - p.created_at) / 86400), 0)::integer
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
