-- depends: 0005_trending_window_totals
-- The per-fingerprint cap on anonymous views (ENGAGEMENT_VIEWS_PER_FINGERPRINT): how many
-- views one network fingerprint recorded of a project in its current dedup window. A
-- fingerprint is a keyed hash of the client address (IPv6 by its /64) and User-Agent, keyed
-- by a secret that changes every UTC day, so rows of different days cannot be linked and no
-- raw address or user agent is ever kept. It is never stored with an event. Pruned with
-- view_dedup by the prune-dedup job. `granted` is how many views the last claim admitted
-- (what record_views reads back; RETURNING has only the new row).
CREATE TABLE view_fingerprints (
    project_id   bigint NOT NULL,
    fingerprint  text NOT NULL,
    window_start timestamptz NOT NULL,
    views        integer NOT NULL,
    granted      integer NOT NULL,
    PRIMARY KEY (project_id, fingerprint)
);
CREATE INDEX view_fingerprints_window_start_idx ON view_fingerprints (window_start);
