-- Re-applied after every migration run: the one view every profile shares. The three
-- hourly relations are tables (postgres, timescale-apache) or continuous aggregates
-- (timescale) with the same columns; predicates on bucket/project_id push down into each.

CREATE OR REPLACE VIEW project_engagement_hourly AS
SELECT bucket,
       project_id,
       sum(views)::bigint   AS views,
       sum(clicks)::bigint  AS clicks,
       sum(likes)::bigint   AS likes,
       sum(unlikes)::bigint AS unlikes
FROM (
    SELECT bucket, project_id, views, 0::bigint AS clicks, 0::bigint AS likes, 0::bigint AS unlikes
    FROM project_views_hourly
    UNION ALL
    SELECT bucket, project_id, 0, clicks, 0, 0 FROM project_clicks_hourly
    UNION ALL
    SELECT bucket, project_id, 0, 0, likes, unlikes FROM project_likes_hourly
) AS counts
GROUP BY bucket, project_id;
