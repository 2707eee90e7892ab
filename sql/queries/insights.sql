-- Insights read the hourly relations (tables or continuous aggregates, same columns in every
-- profile), never raw events, except return viewers, which need to know who viewed.
-- Buckets: %(start)s <= bucket < %(end)s.

-- name: ctr_by_position
-- Clicks and impressions per feed and position, summed over variants.
WITH imp AS (
    SELECT source, position, sum(impressions)::bigint AS impressions
    FROM feed_impressions_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
      AND (%(source)s::text IS NULL OR source = %(source)s::text)
    GROUP BY source, position
),
clk AS (
    SELECT source, position, sum(clicks)::bigint AS clicks
    FROM feed_clicks_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s
      AND (%(source)s::text IS NULL OR source = %(source)s::text)
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
-- Clicks and impressions per A/B variant (events outside experiments have none).
WITH imp AS (
    SELECT variant, sum(impressions)::bigint AS impressions
    FROM feed_impressions_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s AND variant IS NOT NULL
      AND (%(source)s::text IS NULL OR source = %(source)s::text)
    GROUP BY variant
),
clk AS (
    SELECT variant, sum(clicks)::bigint AS clicks
    FROM feed_clicks_hourly
    WHERE bucket >= %(start)s AND bucket < %(end)s AND variant IS NOT NULL
      AND (%(source)s::text IS NULL OR source = %(source)s::text)
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

-- name: retention_cohorts
-- A viewer is the signed-in user, else the (hashed) session key; views with neither (a
-- signed-in view whose user was erased) cannot be told apart and are left out. Each viewer
-- belongs to the ISO week (Monday, UTC) of their first view in the window and "returned"
-- when they viewed again on a later UTC day inside the window.
WITH seen AS (
    SELECT CASE WHEN user_id IS NOT NULL THEN 'u:' || user_id::text
                ELSE 's:' || session_key END AS viewer,
           (created_at AT TIME ZONE 'UTC')::date AS day
    FROM project_views
    WHERE project_id = %(project_id)s AND created_at >= %(start)s AND created_at < %(end)s
      AND (user_id IS NOT NULL OR session_key <> '')
    GROUP BY 1, 2
),
viewers AS (
    SELECT viewer, min(day) AS first_day, count(*) > 1 AS returned
    FROM seen
    GROUP BY viewer
)
SELECT date_trunc('week', first_day::timestamp)::date AS week_start,
       count(*) AS viewers,
       count(*) FILTER (WHERE returned) AS returning
FROM viewers
GROUP BY 1
ORDER BY 1;
