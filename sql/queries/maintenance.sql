-- name: prune_dedup
DELETE FROM view_dedup WHERE last_view_at < now() - make_interval(secs => %(window_seconds)s);

-- name: prune_view_fingerprints
-- A fingerprint's count is forgotten once its window is over: its next view starts afresh.
DELETE FROM view_fingerprints
WHERE window_start < now() - make_interval(secs => %(window_seconds)s);

-- name: delete_old_views
-- Retention in bounded slices so one run never holds long locks.
DELETE FROM project_views WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM project_views WHERE created_at < %(cutoff)s LIMIT %(batch)s));

-- name: delete_old_clicks
DELETE FROM project_clicks WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM project_clicks WHERE created_at < %(cutoff)s LIMIT %(batch)s));

-- name: delete_old_likes
DELETE FROM project_likes WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM project_likes WHERE created_at < %(cutoff)s LIMIT %(batch)s));

-- name: delete_old_impressions
DELETE FROM project_impressions WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM project_impressions WHERE created_at < %(cutoff)s LIMIT %(batch)s));

-- name: drop_old_chunks
-- timescale-apache: whole chunks older than the cutoff (ctid is not unique across chunks).
SELECT count(*) FROM drop_chunks(%(table)s::regclass, older_than => %(cutoff)s::timestamptz);
