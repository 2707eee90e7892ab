-- name: seed_projects
-- Public projects 1..count, created 0..99 days ago (spread so days_old varies).
INSERT INTO projects (id, owner_id, is_private, created_at)
SELECT id, id %% 1000 + 1, false,
       now() - make_interval(days => (id %% 100)::int, hours => (id %% 24)::int)
FROM generate_series(1, %(count)s::bigint) AS id
ON CONFLICT (id) DO NOTHING;
