-- name: upsert_project
-- xmax = 0 only for a freshly inserted row: tells 201 from 200.
INSERT INTO projects (id, owner_id, is_private, created_at, updated_at)
VALUES (%(project_id)s, %(owner_id)s, %(is_private)s, %(created_at)s, NULL)
ON CONFLICT (id) DO UPDATE
    SET owner_id = excluded.owner_id,
        is_private = excluded.is_private,
        created_at = excluded.created_at,
        updated_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: delete_project
DELETE FROM projects WHERE id = %(project_id)s;

-- name: project_exists
SELECT 1 FROM projects WHERE id = %(project_id)s;

-- name: project_created_ats
-- engagement demo keeps the ages of the sample projects an earlier run registered.
SELECT id, created_at FROM projects WHERE id = ANY(%(project_ids)s);
