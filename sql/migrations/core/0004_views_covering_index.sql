-- depends: 0003_impressions
-- Return viewers (GET /api/v1/projects/{id}/retention/) read a project's views of the last
-- weeks and need only who viewed and when. A popular project's views are spread over
-- almost every page of the table, so reading them from the heap touched ~27k pages for
-- 125k views (2 s cold). Carrying user_id and session_key in the (project_id, created_at)
-- index makes that an index-only scan of ~1.2k pages. Same name, same key columns.

DROP INDEX project_views_project_created_idx;
CREATE INDEX project_views_project_created_idx ON project_views (project_id, created_at)
    INCLUDE (user_id, session_key);
