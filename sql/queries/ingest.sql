-- name: record_views
-- One statement for a whole coalesced batch of track-view requests. Rows for missing or
-- invisible projects drop out at `visible`; the dedup claim is an upsert that only wins
-- when the viewer's last recorded view of the project is older than the window, so two
-- concurrent requests for the same (project, viewer) can never both record. The caller
-- sends each (project_id, viewer_key) at most once per batch; keys are taken in a fixed
-- order so concurrent batches lock dedup rows in the same order.
-- An anonymous view also carries a network fingerprint (NULL: not capped). The claims that
-- won are then counted against their fingerprint's allowance of %(cap)s views a project per
-- window, one upsert per (project, fingerprint) whose row lock orders concurrent batches of
-- every worker; the first `granted` of them by ordinal are recorded, the rest are `capped`.
-- A capped claim keeps its view_dedup row: that session key is spent for the window.
WITH input AS (
    SELECT *
    FROM unnest(%(project_ids)s::bigint[], %(user_ids)s::bigint[], %(session_keys)s::text[],
                %(sources)s::text[], %(viewer_keys)s::text[], %(fingerprints)s::text[])
         WITH ORDINALITY AS t(project_id, user_id, session_key, source, viewer_key,
                              fingerprint, ord)
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
won AS (
    SELECT v.*, row_number() OVER (PARTITION BY v.project_id, v.fingerprint ORDER BY v.ord) AS nth
    FROM visible AS v
    JOIN claimed AS c ON c.project_id = v.project_id AND c.viewer_key = v.viewer_key
),
allowed AS (
    INSERT INTO view_fingerprints AS f (project_id, fingerprint, window_start, views, granted)
    SELECT project_id, fingerprint, now(), least(count(*), %(cap)s), least(count(*), %(cap)s)
    FROM won WHERE fingerprint IS NOT NULL
    GROUP BY project_id, fingerprint ORDER BY project_id, fingerprint
    ON CONFLICT (project_id, fingerprint) DO UPDATE
        SET window_start = CASE WHEN f.window_start <= excluded.window_start
                                     - make_interval(secs => %(window_seconds)s)
                                THEN excluded.window_start ELSE f.window_start END,
            views = CASE WHEN f.window_start <= excluded.window_start
                              - make_interval(secs => %(window_seconds)s)
                         THEN excluded.views ELSE least(f.views + excluded.views, %(cap)s) END,
            granted = CASE WHEN f.window_start <= excluded.window_start
                                - make_interval(secs => %(window_seconds)s)
                           THEN excluded.views
                           ELSE least(f.views + excluded.views, %(cap)s) - f.views END
        WHERE f.views < %(cap)s
           OR f.window_start <= excluded.window_start - make_interval(secs => %(window_seconds)s)
    RETURNING f.project_id, f.fingerprint, f.granted
),
admitted AS (
    SELECT w.*
    FROM won AS w
    LEFT JOIN allowed AS a ON a.project_id = w.project_id AND a.fingerprint = w.fingerprint
    WHERE w.fingerprint IS NULL OR w.nth <= coalesce(a.granted, 0)
),
recorded AS (
    INSERT INTO project_views (created_at, project_id, user_id, session_key, source)
    SELECT now(), project_id, user_id, session_key, source FROM admitted
)
SELECT v.ord, a.ord IS NOT NULL AS recorded, w.ord IS NOT NULL AND a.ord IS NULL AS capped
FROM visible AS v
LEFT JOIN won AS w ON w.ord = v.ord
LEFT JOIN admitted AS a ON a.ord = v.ord;

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
