-- name: record_profile
INSERT INTO engagement_meta (key, value) VALUES ('profile', %(profile)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: read_profile
SELECT value FROM engagement_meta WHERE key = 'profile';
