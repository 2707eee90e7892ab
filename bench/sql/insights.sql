-- Synthetic history for bench/insights.py, generated inside PostgreSQL (no client round
-- trips): skewed project popularity (a few hits, a long tail), feed positions decaying
-- geometrically, an A/B test on one feed, returning viewers. One day per statement.

-- name: insights_seed_projects
INSERT INTO projects (id, owner_id, is_private, created_at)
SELECT id, id %% 1000 + 1, id %% 50 = 0, now() - make_interval(days => (40 + id %% 300)::int)
FROM generate_series(1, %(projects)s::bigint) AS id
ON CONFLICT (id) DO NOTHING;

-- name: insights_seed_impressions
INSERT INTO project_impressions (created_at, project_id, source, position, variant)
SELECT t, p, s, pos,
       CASE WHEN s = 'explore_for_you' THEN (ARRAY['control', 'ranker-v2'])[1 + (g %% 2)] END
FROM (
    SELECT g,
           %(day)s::timestamptz + random() * INTERVAL '1 day' AS t,
           1 + floor(%(projects)s * random() ^ 3)::bigint AS p,
           (ARRAY['explore_for_you', 'explore_for_you', 'explore_for_you', 'explore_trending',
                  'explore_trending', 'explore_new', 'explore_news', 'search', 'search',
                  'profile', 'related'])[1 + floor(random() * 11)::int] AS s,
           least(floor(-ln(1 - random()) / 0.12)::int, 59) AS pos
    FROM generate_series(1, %(count)s) AS g
) AS r;

-- name: insights_seed_clicks
INSERT INTO project_clicks (created_at, project_id, user_id, session_key, source, position,
                            variant)
SELECT t, p, NULL, md5(v::text)::varchar(40), s, pos,
       -- the new ranker gets a few more of the clicks than its half of the impressions
       CASE WHEN s = 'explore_for_you' THEN CASE WHEN g %% 100 < 53 THEN 'ranker-v2'
                                                 ELSE 'control' END END
FROM (
    SELECT g,
           %(day)s::timestamptz + random() * INTERVAL '1 day' AS t,
           1 + floor(%(projects)s * random() ^ 3)::bigint AS p,
           floor(random() * 200000)::int AS v,
           (ARRAY['explore_for_you', 'explore_for_you', 'explore_for_you', 'explore_trending',
                  'explore_trending', 'explore_new', 'explore_news', 'search', 'search',
                  'profile', 'related'])[1 + floor(random() * 11)::int] AS s,
           least(floor(-ln(1 - random()) / 0.3)::int, 59) AS pos
    FROM generate_series(1, %(count)s) AS g
) AS r;

-- name: insights_seed_views
-- Viewers come from a pool of 200,000 (a fifth signed in), so many come back.
INSERT INTO project_views (created_at, project_id, user_id, session_key, source)
SELECT t, p, CASE WHEN v %% 5 = 0 THEN v END,
       CASE WHEN v %% 5 = 0 THEN '' ELSE md5(v::text)::varchar(40) END,
       (ARRAY['explore', 'explore', 'direct', 'search', 'profile', 'embed'])[1 + floor(random() * 6)::int]
FROM (
    SELECT %(day)s::timestamptz + random() * INTERVAL '1 day' AS t,
           1 + floor(%(projects)s * random() ^ 3)::bigint AS p,
           1 + floor(200000 * random() ^ 2)::int AS v
    FROM generate_series(1, %(count)s)
) AS r;

-- name: insights_seed_likes
INSERT INTO project_likes (created_at, project_id, user_id, action)
SELECT %(day)s::timestamptz + random() * INTERVAL '1 day',
       1 + floor(%(projects)s * random() ^ 3)::bigint,
       1 + floor(random() * 50000)::bigint,
       CASE WHEN random() < 0.9 THEN 1 ELSE -1 END
FROM generate_series(1, %(count)s);

-- name: insights_busiest_project
SELECT project_id FROM project_views_hourly GROUP BY project_id ORDER BY sum(views) DESC LIMIT 1;

-- name: insights_row_counts
SELECT (SELECT count(*) FROM project_impressions), (SELECT count(*) FROM project_clicks),
       (SELECT count(*) FROM project_views), (SELECT count(*) FROM project_likes),
       (SELECT count(*) FROM project_impressions_hourly), (SELECT count(*) FROM feed_impressions_hourly),
       (SELECT count(*) FROM project_views_hourly);
