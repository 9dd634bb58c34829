ALTER TABLE related_sync DROP COLUMN article_writes;
DROP TRIGGER article_deleted;
DROP TRIGGER article_updated;
DROP TRIGGER article_inserted;
DROP TABLE article_writes;
