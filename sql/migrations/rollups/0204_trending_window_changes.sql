-- depends: 0203_feed_daily 0005_trending_window_totals
-- Profiles postgres and timescale-apache: every statement that changes the hourly views or
-- likes logs the earliest bucket it changed. The trending job reads the log, rebuilds its
-- window totals when a logged bucket is one they count (before the hour before the current
-- one), and deletes the rows it read (by id, so a change that commits after the read stays
-- for the next run). The refresh-rollups job rewrites the current hour every minute and the
-- one before once more when the hour turns; those rows cost the trending job nothing but
-- the delete. Statement-level with transition tables: one row a statement.

CREATE TABLE trending_window_changes (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket timestamptz NOT NULL
);

CREATE FUNCTION trending_window_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO trending_window_changes (bucket) VALUES ('-infinity');
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO trending_window_changes (bucket)
        SELECT min(bucket) FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trending_window_changes (bucket)
        SELECT min(bucket) FROM old_rows HAVING count(*) > 0;
    ELSE
        INSERT INTO trending_window_changes (bucket)
        SELECT min(bucket)
        FROM (SELECT bucket FROM old_rows UNION ALL SELECT bucket FROM new_rows) AS changed
        HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER project_views_hourly_insert_changes AFTER INSERT ON project_views_hourly
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_views_hourly_delete_changes AFTER DELETE ON project_views_hourly
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_views_hourly_update_changes AFTER UPDATE ON project_views_hourly
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_views_hourly_truncate_changes AFTER TRUNCATE ON project_views_hourly
    FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();

CREATE TRIGGER project_likes_hourly_insert_changes AFTER INSERT ON project_likes_hourly
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_likes_hourly_delete_changes AFTER DELETE ON project_likes_hourly
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_likes_hourly_update_changes AFTER UPDATE ON project_likes_hourly
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
CREATE TRIGGER project_likes_hourly_truncate_changes AFTER TRUNCATE ON project_likes_hourly
    FOR EACH STATEMENT EXECUTE FUNCTION trending_window_changed();
