-- Insights read the hourly relations (tables or continuous aggregates, same columns in every
-- profile), never raw events, except return viewers, which need to know who viewed.
-- Buckets: %(start)s <= bucket < %(end)s.

-- name: ctr_by_position
-- Clicks and impressions per feed and position, summed over variants. Whole UTC days come
-- from the daily relations (%(day_start)s <= day < %(day_end)s), the hours before and after
-- them from the hourly ones: a month is ~30 rows per feed and position, not ~720.
WITH imp AS (
    SELECT source, position, sum(impressions)::bigint AS impressions
    FROM (
        SELECT source, position, impressions FROM feed_impressions_daily
        WHERE day >= %(day_start)s AND day < %(day_end)s
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
        UNION ALL
        SELECT source, position, impressions FROM feed_impressions_hourly
        WHERE ((bucket >= %(start)s AND bucket < %(day_start)s)
               OR (bucket >= %(day_end)s AND bucket < %(end)s))
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
    ) AS counts
    GROUP BY source, position
),
clk AS (
    SELECT source, position, sum(clicks)::bigint AS clicks
    FROM (
        SELECT source, position, clicks FROM feed_clicks_daily
        WHERE day >= %(day_start)s AND day < %(day_end)s
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
        UNION ALL
        SELECT source, position, clicks FROM feed_clicks_hourly
        WHERE ((bucket >= %(start)s AND bucket < %(day_start)s)
               OR (bucket >= %(day_end)s AND bucket < %(end)s))
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
    ) AS counts
    GROUP BY source, position
)
SELECT coalesce(imp.source, clk.source) AS source,
       coalesce(imp.position, clk.position) AS position,
       coalesce(imp.impressions, 0) AS impressions,
       coalesce(clk.clicks, 0) AS clicks
FROM imp
FULL JOIN clk ON clk.source = imp.source AND clk.position IS NOT DISTINCT FROM imp.position
ORDER BY 1, 2 NULLS LAST;

-- name: ctr_by_variant
-- Clicks and impressions per A/B variant (events outside experiments have none); days and
-- edge hours as in ctr_by_position.
WITH imp AS (
    SELECT variant, sum(impressions)::bigint AS impressions
    FROM (
        SELECT variant, impressions FROM feed_impressions_daily
        WHERE day >= %(day_start)s AND day < %(day_end)s AND variant IS NOT NULL
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
        UNION ALL
        SELECT variant, impressions FROM feed_impressions_hourly
        WHERE ((bucket >= %(start)s AND bucket < %(day_start)s)
               OR (bucket >= %(day_end)s AND bucket < %(end)s)) AND variant IS NOT NULL
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
    ) AS counts
    GROUP BY variant
),
clk AS (
    SELECT variant, sum(clicks)::bigint AS clicks
    FROM (
        SELECT variant, clicks FROM feed_clicks_daily
        WHERE day >= %(day_start)s AND day < %(day_end)s AND variant IS NOT NULL
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
        UNION ALL
        SELECT variant, clicks FROM feed_clicks_hourly
        WHERE ((bucket >= %(start)s AND bucket < %(day_start)s)
               OR (bucket >= %(day_end)s AND bucket < %(end)s)) AND variant IS NOT NULL
          AND (%(source)s::text IS NULL OR source = %(source)s::text)
    ) AS counts
    GROUP BY variant
)
SELECT coalesce(imp.variant, clk.variant) AS variant,
       coalesce(imp.impressions, 0) AS impressions,
       coalesce(clk.clicks, 0) AS clicks
FROM imp
FULL JOIN clk ON clk.variant = imp.variant
ORDER BY 1;

-- name: heatmap_views_site
SELECT bucket, sum(views)::bigint FROM site_views_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: heatmap_views_project
SELECT bucket, sum(views)::bigint FROM project_views_hourly
WHERE project_id = %(project_id)s AND bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: heatmap_clicks_site
SELECT bucket, sum(clicks)::bigint FROM feed_clicks_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: heatmap_clicks_project
SELECT bucket, sum(clicks)::bigint FROM project_clicks_hourly
WHERE project_id = %(project_id)s AND bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: heatmap_likes_site
-- Likes given (unlikes are not subtracted: the heatmap shows activity).
SELECT bucket, sum(likes)::bigint FROM project_likes_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: heatmap_likes_project
SELECT bucket, sum(likes)::bigint FROM project_likes_hourly
WHERE project_id = %(project_id)s AND bucket >= %(start)s AND bucket < %(end)s GROUP BY bucket;

-- name: insights_project_exists
SELECT 1 FROM projects WHERE id = %(project_id)s;

-- name: retention_work_mem
-- A busy project's month is ~100k (viewer, day) groups: aggregate them in memory, not in
-- temp files (measured ~15 % faster at 125k views in 28 days). Only for this transaction.
SET LOCAL work_mem = '64MB';

-- name: retention_cohorts
-- A viewer is the signed-in user, else the (hashed) session key; views with neither (a
-- signed-in view whose user was erased) cannot be told apart and are left out. Each viewer
-- belongs to the ISO week (Monday, UTC) of their first view in the window and "returned"
-- when their last view in the window is on a later UTC day than their first. One pass
-- grouped by viewer, over an index-only scan (core/0004_views_covering_index).
WITH viewers AS (
    SELECT (min(created_at) AT TIME ZONE 'UTC')::date AS first_day,
           (max(created_at) AT TIME ZONE 'UTC')::date AS last_day
    FROM project_views
    WHERE project_id = %(project_id)s AND created_at >= %(start)s AND created_at < %(end)s
      AND (user_id IS NOT NULL OR session_key <> '')
    GROUP BY user_id, CASE WHEN user_id IS NULL THEN session_key END
)
SELECT date_trunc('week', first_day::timestamp)::date AS week_start,
       count(*) AS viewers,
       count(*) FILTER (WHERE last_day > first_day) AS returning
FROM viewers
GROUP BY 1
ORDER BY 1;
