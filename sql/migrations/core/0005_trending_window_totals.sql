-- depends: 0004_views_covering_index
-- The trending job's window totals for the complete hours of the window: per project, the
-- views and net likes (likes - unlikes, not yet clamped at 0) of the recent window's
-- complete hours and of the previous window, and how many of those hourly rows had a view
-- or a like (a count rather than a flag, so that an hour leaving the window can be taken
-- out again). Every run adds the current hour, which is still filling, to these totals.
-- When the hour turns the job shifts them: it adds the hour just completed, moves the hour
-- that crosses from the recent window into the previous one, and takes out the hour that
-- leaves. It rebuilds them from all 48 hours when the window settings change and, on
-- postgres and timescale-apache, when trending_window_changes shows that an hour they
-- already counted was rewritten. On the timescale profile it rebuilds them on every run.
-- Only the job writes them, under its advisory lock. No index: the job reads the whole
-- table in one hash join.
CREATE TABLE trending_window_totals (
    project_id     bigint NOT NULL,
    recent_views   bigint NOT NULL,
    previous_views bigint NOT NULL,
    recent_likes   bigint NOT NULL,
    previous_likes bigint NOT NULL,
    active_rows    bigint NOT NULL
);

-- What the totals stand for: the hour H they were built for (they cover the buckets before
-- it) and the window lengths. No row: no totals.
CREATE TABLE trending_window_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    hour           timestamptz NOT NULL,
    recent_hours   integer NOT NULL,
    previous_hours integer NOT NULL
);
