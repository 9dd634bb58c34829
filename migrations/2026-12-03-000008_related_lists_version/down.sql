ALTER TABLE related_sync DROP COLUMN lists_version;
