-- depends: 0002_idempotency
-- Impressions: a project card that was actually seen in a feed (reported by the browser
-- client when the card scrolls into view). With clicks they give the click-through rate per
-- feed and position. No viewer identity is kept: CTR needs none, and less stored is better.
-- `variant` names the feed algorithm an A/B test served (on impressions and clicks alike);
-- NULL outside experiments.

CREATE TABLE project_impressions (
    created_at timestamptz NOT NULL DEFAULT now(),
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    source     text NOT NULL
        CONSTRAINT project_impressions_source_check
        CHECK (source IN ('explore_for_you', 'explore_trending', 'explore_new', 'explore_news',
                          'search', 'profile', 'related')),
    position   integer NULL CONSTRAINT project_impressions_position_check CHECK (position >= 0),
    variant    text NULL
        CONSTRAINT project_impressions_variant_check CHECK (variant ~ '^[a-z0-9_-]{1,32}$')
);
CREATE INDEX project_impressions_project_created_idx ON project_impressions (project_id, created_at);
CREATE INDEX project_impressions_created_desc_idx ON project_impressions (created_at DESC);

-- Nullable without a default: no table rewrite, existing clicks simply have no variant.
ALTER TABLE project_clicks ADD COLUMN variant text NULL
    CONSTRAINT project_clicks_variant_check CHECK (variant ~ '^[a-z0-9_-]{1,32}$');
