DROP TRIGGER articles_keep_deleted_ids;
DROP TABLE article_id_mark;
