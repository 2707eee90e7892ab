-- name: like_project
-- Records a like only when the user did not already like the project.
WITH state AS (
    INSERT INTO project_like_state (project_id, user_id, updated_at)
    SELECT id, %(user_id)s, now() FROM projects WHERE id = %(project_id)s
    ON CONFLICT (project_id, user_id) DO NOTHING
    RETURNING project_id, user_id
)
INSERT INTO project_likes (created_at, project_id, user_id, action)
SELECT now(), project_id, user_id, 1 FROM state
RETURNING 1;

-- name: unlike_project
-- Records an unlike only when the user currently likes the project.
WITH state AS (
    DELETE FROM project_like_state
    WHERE project_id = %(project_id)s AND user_id = %(user_id)s
    RETURNING project_id, user_id
)
INSERT INTO project_likes (created_at, project_id, user_id, action)
SELECT now(), project_id, user_id, -1 FROM state
RETURNING 1;
