-- Core schema shared by every storage profile: the project registry, the raw event
-- tables, viewer dedup state, like state and the trending table.
-- Raw event tables have no primary key on purpose: a TimescaleDB hypertable can only
-- carry unique indexes that include the time column, and events are append-only.

CREATE TABLE engagement_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE projects (
    id         bigint PRIMARY KEY,
    owner_id   bigint NOT NULL,
    is_private boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz
);

CREATE TABLE project_views (
    created_at  timestamptz NOT NULL DEFAULT now(),
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     bigint NULL,
    session_key varchar(40) NOT NULL DEFAULT '',
    source      text NOT NULL DEFAULT 'direct'
        CONSTRAINT project_views_source_check
        CHECK (source IN ('explore', 'profile', 'direct', 'search', 'embed'))
);
CREATE INDEX project_views_project_created_desc_idx ON project_views (project_id, created_at DESC);
CREATE INDEX project_views_project_created_idx ON project_views (project_id, created_at);
CREATE INDEX project_views_user_created_desc_idx ON project_views (user_id, created_at DESC);
CREATE INDEX project_views_created_desc_idx ON project_views (created_at DESC);

CREATE TABLE project_clicks (
    created_at  timestamptz NOT NULL DEFAULT now(),
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     bigint NULL,
    session_key varchar(40) NOT NULL DEFAULT '',
    source      text NOT NULL
        CONSTRAINT project_clicks_source_check
        CHECK (source IN ('explore_for_you', 'explore_trending', 'explore_new', 'explore_news',
                          'search', 'profile', 'related')),
    position    integer NULL CONSTRAINT project_clicks_position_check CHECK (position >= 0)
);
CREATE INDEX project_clicks_project_created_desc_idx ON project_clicks (project_id, created_at DESC);
CREATE INDEX project_clicks_project_created_idx ON project_clicks (project_id, created_at);
CREATE INDEX project_clicks_source_created_desc_idx ON project_clicks (source, created_at DESC);
CREATE INDEX project_clicks_created_desc_idx ON project_clicks (created_at DESC);

CREATE TABLE project_likes (
    created_at timestamptz NOT NULL DEFAULT now(),
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL,
    action     smallint NOT NULL CONSTRAINT project_likes_action_check CHECK (action IN (1, -1))
);
CREATE INDEX project_likes_project_created_desc_idx ON project_likes (project_id, created_at DESC);
CREATE INDEX project_likes_created_desc_idx ON project_likes (created_at DESC);
CREATE INDEX project_likes_user_idx ON project_likes (user_id);

-- Who currently likes what: makes like/unlike idempotent. Presence means "liked".
CREATE TABLE project_like_state (
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_like_state_user_idx ON project_like_state (user_id);

-- Last recorded view per (project, viewer) inside the dedup window. viewer_key is
-- 'u:<user id>' or 's:<hashed session key>'. Pruned by the prune-dedup job, so it holds
-- at most the viewers of one window plus one prune interval.
CREATE TABLE view_dedup (
    project_id   bigint NOT NULL,
    viewer_key   text NOT NULL,
    last_view_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, viewer_key)
);
CREATE INDEX view_dedup_last_view_idx ON view_dedup (last_view_at);

CREATE TABLE trending_scores (
    project_id     bigint PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    score          double precision NOT NULL,
    velocity       double precision NOT NULL,
    like_velocity  double precision NOT NULL,
    view_velocity  double precision NOT NULL,
    recent_likes   bigint NOT NULL,
    previous_likes bigint NOT NULL,
    recent_views   bigint NOT NULL,
    previous_views bigint NOT NULL,
    days_old       integer NOT NULL,
    computed_at    timestamptz NOT NULL
);
CREATE INDEX trending_scores_order_idx
    ON trending_scores (score DESC, recent_views DESC, project_id ASC);
