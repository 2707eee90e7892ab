-- depends: 0201_caggs
-- Profile timescale: old raw chunks are compressed, segmented by project so per-project
-- scans stay cheap. The policy itself (compress after N days) is set by `engagement migrate`.

ALTER TABLE project_views SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'project_id', timescaledb.compress_orderby = 'created_at DESC');
ALTER TABLE project_clicks SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'project_id', timescaledb.compress_orderby = 'created_at DESC');
ALTER TABLE project_likes SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'project_id', timescaledb.compress_orderby = 'created_at DESC');
