ALTER TABLE related_sync DROP COLUMN article_writes;
DROP TRIGGER articles_count_deletes;
DROP TRIGGER articles_count_updates;
DROP TRIGGER articles_count_inserts;
DROP TABLE article_writes;
