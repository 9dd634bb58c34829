-- Which way of computing lists made the stored ones (`related::LISTS_VERSION`):
-- a start that computes them another way deletes them all, to be computed
-- again, rather than serve lists an older version ranked. Lists stored
-- before this column were made by version 1.
ALTER TABLE related_sync ADD COLUMN lists_version INTEGER NOT NULL DEFAULT 1;
