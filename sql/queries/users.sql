-- name: anonymize_views
UPDATE project_views SET user_id = NULL WHERE user_id = %(user_id)s;

-- name: anonymize_clicks
UPDATE project_clicks SET user_id = NULL WHERE user_id = %(user_id)s;

-- name: anonymize_likes
-- project_likes.user_id is NOT NULL by contract: 0 stands for "a deleted user".
UPDATE project_likes SET user_id = 0 WHERE user_id = %(user_id)s;

-- name: forget_user_state
WITH dedup AS (DELETE FROM view_dedup WHERE viewer_key = 'u:' || %(user_id)s::text)
DELETE FROM project_like_state WHERE user_id = %(user_id)s;
