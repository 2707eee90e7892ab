-- depends: 0204_trending_window_changes
-- Profiles postgres and timescale-apache: per-project sums of the hourly views and likes
-- over aligned blocks of 2, 4, 8 and 16 hours, kept by refresh-rollups in the same
-- transaction as the hourly counts they sum. A block of `hours` hours starts at a multiple
-- of `hours` hours since the Unix epoch. When the trending job rebuilds its window totals
-- it reads each window as a few such blocks plus at most a few single hours, instead of
-- every hourly row: at 10,000 projects ~80,000 block rows against ~800,000 hourly ones.
--
-- trending_blocks_state says which blocks there are: every block that lies wholly in
-- [covered_from, covered_to), and no other. covered_to follows the trending job's live
-- hours (the hour before the current one): blocks hold complete hours only, so the
-- current hour's counts, rewritten every minute, never touch them. A later rewrite of a
-- covered hour recomputes the blocks holding it: late events, an import, a deleted project
-- or a correction made straight in SQL. Statement-level triggers on the hourly views and
-- likes log every hour a statement changed (trending_blocks_changes, one row per hour and
-- statement); refresh-rollups reads the log after its own rewrites, recomputes the blocks
-- holding a logged hour and deletes the rows it read. Until then the trending job reads
-- the hourly rows of a logged hour, not a block holding it.
-- A block holds one row per project with an hourly row in it, even if all its counts are
-- 0, as the hourly rows do; active_rows counts those with a view, plus those with a like.
-- A deleted project's hourly rows go by cascade, which logs their hours, so its block rows
-- go at the next refresh; until then the trending job reads those hours hourly. No foreign
-- key: its check per row was most of the cost of filling the blocks (3 of 3.7 s at 10,000
-- projects), and a cascade would need an index on project_id too.

CREATE TABLE trending_blocks (
    hours       integer NOT NULL CHECK (hours IN (2, 4, 8, 16)),
    block_start timestamptz NOT NULL,
    project_id  bigint NOT NULL,  -- no foreign key: see above
    views       bigint NOT NULL,
    net_likes   bigint NOT NULL,
    active_rows bigint NOT NULL,
    PRIMARY KEY (hours, block_start, project_id)
);

CREATE TABLE trending_blocks_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    covered_from timestamptz NOT NULL,
    covered_to   timestamptz NOT NULL
);

CREATE TABLE trending_blocks_changes (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket timestamptz NOT NULL  -- '-infinity': the table was truncated, every hour changed
);

CREATE FUNCTION trending_blocks_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO trending_blocks_changes (bucket) VALUES ('-infinity');
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO trending_blocks_changes (bucket) SELECT DISTINCT bucket FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO trending_blocks_changes (bucket) SELECT DISTINCT bucket FROM old_rows;
    ELSE
        INSERT INTO trending_blocks_changes (bucket)
        SELECT bucket FROM old_rows UNION SELECT bucket FROM new_rows;
    END IF;
    RETURN NULL;
END
$fn$;

DO $do$
DECLARE
    rel text;
BEGIN
    FOREACH rel IN ARRAY ARRAY['views', 'likes'] LOOP
        EXECUTE format(
            'CREATE TRIGGER project_%1$s_hourly_insert_blocks AFTER INSERT ON project_%1$s_hourly '
            'REFERENCING NEW TABLE AS new_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION trending_blocks_changed()', rel);
        EXECUTE format(
            'CREATE TRIGGER project_%1$s_hourly_delete_blocks AFTER DELETE ON project_%1$s_hourly '
            'REFERENCING OLD TABLE AS old_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION trending_blocks_changed()', rel);
        EXECUTE format(
            'CREATE TRIGGER project_%1$s_hourly_update_blocks AFTER UPDATE ON project_%1$s_hourly '
            'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION trending_blocks_changed()', rel);
        EXECUTE format(
            'CREATE TRIGGER project_%1$s_hourly_truncate_blocks AFTER TRUNCATE ON project_%1$s_hourly '
            'FOR EACH STATEMENT EXECUTE FUNCTION trending_blocks_changed()', rel);
    END LOOP;
END
$do$;
