-- name: record_views
-- One statement for a whole coalesced batch of track-view requests. Rows for missing or
-- invisible projects drop out at `visible`; the dedup claim is an upsert that only wins
-- when the viewer's last recorded view of the project is older than the window, so two
-- concurrent requests for the same (project, viewer) can never both record. The caller
-- sends each (project_id, viewer_key) at most once per batch; keys are taken in a fixed
-- order so concurrent batches lock dedup rows in the same order.
WITH input AS (
    SELECT *
    FROM unnest(%(project_ids)s::bigint[], %(user_ids)s::bigint[], %(session_keys)s::text[],
                %(sources)s::text[], %(viewer_keys)s::text[])
         WITH ORDINALITY AS t(project_id, user_id, session_key, source, viewer_key, ord)
),
visible AS (
    SELECT i.*
    FROM input AS i
    JOIN projects AS p ON p.id = i.project_id
    WHERE NOT p.is_private OR p.owner_id = i.user_id
),
claimed AS (
    INSERT INTO view_dedup AS d (project_id, viewer_key, last_view_at)
    SELECT project_id, viewer_key, now() FROM visible ORDER BY project_id, viewer_key
    ON CONFLICT (project_id, viewer_key) DO UPDATE
        SET last_view_at = excluded.last_view_at
        WHERE d.last_view_at <= excluded.last_view_at - make_interval(secs => %(window_seconds)s)
    RETURNING d.project_id, d.viewer_key
),
recorded AS (
    INSERT INTO project_views (created_at, project_id, user_id, session_key, source)
    SELECT now(), v.project_id, v.user_id, v.session_key, v.source
    FROM visible AS v
    JOIN claimed AS c ON c.project_id = v.project_id AND c.viewer_key = v.viewer_key
)
SELECT v.ord, c.project_id IS NOT NULL AS recorded
FROM visible AS v
LEFT JOIN claimed AS c ON c.project_id = v.project_id AND c.viewer_key = v.viewer_key;

-- name: record_clicks
-- One statement for a coalesced batch of clicks; returns the ordinals that were stored.
WITH input AS (
    SELECT *
    FROM unnest(%(project_ids)s::bigint[], %(user_ids)s::bigint[], %(session_keys)s::text[],
                %(sources)s::text[], %(positions)s::integer[], %(variants)s::text[])
         WITH ORDINALITY AS t(project_id, user_id, session_key, source, position, variant, ord)
),
visible AS (
    SELECT i.*
    FROM input AS i
    JOIN projects AS p ON p.id = i.project_id
    WHERE NOT p.is_private OR p.owner_id = i.user_id
),
recorded AS (
    INSERT INTO project_clicks (created_at, project_id, user_id, session_key, source, position,
                                variant)
    SELECT now(), project_id, user_id, session_key, source, position, variant FROM visible
)
SELECT ord FROM visible;

-- name: record_impressions
-- One statement for a coalesced batch of impressions; returns the ordinals that were stored.
-- The viewer's user id only decides whether a private project is visible (its owner's own
-- feed); impressions keep no viewer identity.
WITH input AS (
    SELECT *
    FROM unnest(%(project_ids)s::bigint[], %(user_ids)s::bigint[], %(sources)s::text[],
                %(positions)s::integer[], %(variants)s::text[])
         WITH ORDINALITY AS t(project_id, user_id, source, position, variant, ord)
),
visible AS (
    SELECT i.*
    FROM input AS i
    JOIN projects AS p ON p.id = i.project_id
    WHERE NOT p.is_private OR p.owner_id = i.user_id
),
recorded AS (
    INSERT INTO project_impressions (created_at, project_id, source, position, variant)
    SELECT now(), project_id, source, position, variant FROM visible
)
SELECT ord FROM visible;

-- name: set_write_timeout
-- Bounds every statement of this write transaction (lock waits included): a track request
-- gets its answer, or a 503, within its time budget even when the database stalls.
SELECT set_config('statement_timeout', %(milliseconds)s::text, true);
