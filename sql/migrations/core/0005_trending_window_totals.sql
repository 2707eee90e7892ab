-- depends: 0004_views_covering_index
-- The trending job's window totals: per project, the views and net likes (likes - unlikes,
-- not yet clamped at 0) of the recent and the previous window, over the window's hours
-- before trending_window_state.counted_to (an hour before the current one), and how many of
-- those hourly rows had a view or a like (a count rather than a flag, so that an hour leaving
-- the window can be taken out again). Every run adds the hours from counted_to on, read
-- afresh. When the hour turns the job shifts the totals: it adds the hour that became
-- counted, moves the hour that crosses from the recent window into the previous one, and
-- takes out the hour that leaves. It rebuilds them from the whole window when the window
-- settings change and, on postgres and timescale-apache, when trending_window_changes shows
-- that an hour they count was rewritten. On the timescale profile it rebuilds them on every
-- run. Only the job writes them, under its advisory lock. No index: the job reads the whole
-- table in one hash join.
CREATE TABLE trending_window_totals (
    project_id     bigint NOT NULL,
    recent_views   bigint NOT NULL,
    previous_views bigint NOT NULL,
    recent_likes   bigint NOT NULL,
    previous_likes bigint NOT NULL,
    active_rows    bigint NOT NULL
);

-- What the totals stand for: the run's current hour, the hour before which they count
-- (counted_to), and the window lengths. No row: no totals.
CREATE TABLE trending_window_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    hour           timestamptz NOT NULL,
    counted_to     timestamptz NOT NULL,
    recent_hours   integer NOT NULL,
    previous_hours integer NOT NULL
);
