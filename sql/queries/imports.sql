-- name: import_views
-- History backfill: explicit timestamps, no dedup, items of unknown projects skipped.
INSERT INTO project_views (created_at, project_id, user_id, session_key, source)
SELECT t.created_at, t.project_id, t.user_id, t.session_key, t.source
FROM unnest(%(created_ats)s::timestamptz[], %(project_ids)s::bigint[], %(user_ids)s::bigint[],
            %(session_keys)s::text[], %(sources)s::text[])
     AS t(created_at, project_id, user_id, session_key, source)
JOIN projects AS p ON p.id = t.project_id;

-- name: import_clicks
INSERT INTO project_clicks (created_at, project_id, user_id, session_key, source, position,
                            variant)
SELECT t.created_at, t.project_id, t.user_id, t.session_key, t.source, t.position, t.variant
FROM unnest(%(created_ats)s::timestamptz[], %(project_ids)s::bigint[], %(user_ids)s::bigint[],
            %(session_keys)s::text[], %(sources)s::text[], %(positions)s::integer[],
            %(variants)s::text[])
     AS t(created_at, project_id, user_id, session_key, source, position, variant)
JOIN projects AS p ON p.id = t.project_id;

-- name: import_impressions
INSERT INTO project_impressions (created_at, project_id, source, position, variant)
SELECT t.created_at, t.project_id, t.source, t.position, t.variant
FROM unnest(%(created_ats)s::timestamptz[], %(project_ids)s::bigint[], %(sources)s::text[],
            %(positions)s::integer[], %(variants)s::text[])
     AS t(created_at, project_id, source, position, variant)
JOIN projects AS p ON p.id = t.project_id;

-- name: import_likes
INSERT INTO project_likes (created_at, project_id, user_id, action)
SELECT t.created_at, t.project_id, t.user_id, t.action
FROM unnest(%(created_ats)s::timestamptz[], %(project_ids)s::bigint[], %(user_ids)s::bigint[],
            %(actions)s::smallint[])
     AS t(created_at, project_id, user_id, action)
JOIN projects AS p ON p.id = t.project_id;

-- name: import_like_state
-- Bring like state in line with imported history: the newest imported action per
-- (project, user) wins when it is newer than the state we hold.
WITH latest AS (
    SELECT DISTINCT ON (t.project_id, t.user_id) t.project_id, t.user_id, t.action, t.created_at
    FROM unnest(%(created_ats)s::timestamptz[], %(project_ids)s::bigint[],
                %(user_ids)s::bigint[], %(actions)s::smallint[])
         AS t(created_at, project_id, user_id, action)
    JOIN projects AS p ON p.id = t.project_id
    ORDER BY t.project_id, t.user_id, t.created_at DESC
),
liked AS (
    INSERT INTO project_like_state AS s (project_id, user_id, updated_at)
    SELECT project_id, user_id, created_at FROM latest WHERE action = 1
    ON CONFLICT (project_id, user_id) DO UPDATE SET updated_at = excluded.updated_at
        WHERE s.updated_at < excluded.updated_at
)
DELETE FROM project_like_state AS s
USING latest AS l
WHERE l.action = -1 AND s.project_id = l.project_id AND s.user_id = l.user_id
  AND s.updated_at < l.created_at;
