-- depends: 0204_feed_daily 0005_trending_window_totals
-- Profile timescale: the trending job's change log and blocks, as rollups/0204 and 0205
-- give the other profiles, so that it reuses and shifts its window totals and rebuilds them
-- from blocks here too. The hourly views and likes are continuous aggregates, which take no
-- triggers; instead refresh-rollups, the only refresher of the aggregates on this profile,
-- logs the hours each refresh may rewrite before it runs and again after it (see
-- engagement/db/migrations.py, refresh_continuous_aggregates). The tables are the same as there.

CREATE TABLE trending_window_changes (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket timestamptz NOT NULL
);

CREATE TABLE trending_blocks (
    hours       integer NOT NULL CHECK (hours IN (2, 4, 8, 16)),
    block_start timestamptz NOT NULL,
    project_id  bigint NOT NULL,  -- no foreign key, as in rollups/0205
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
    bucket timestamptz NOT NULL
);
