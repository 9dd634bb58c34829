-- Counts writes to articles, by any process: a trigger runs inside the
-- writing transaction, so the count moves in the order writes commit. The
-- Related lists record the count their last look at every article began
-- from (`related_sync.article_writes`); a start that finds the same count
-- knows no article changed since, without trusting timestamps (a write is
-- stamped before it commits), and shows the stored lists while its index
-- is built (see `related::build::stored_lists_current_until`).
CREATE TABLE article_writes (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT INTO article_writes (id, count) VALUES (1, 0);

CREATE TRIGGER articles_count_inserts AFTER INSERT ON articles
BEGIN
    UPDATE article_writes SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER articles_count_updates AFTER UPDATE ON articles
BEGIN
    UPDATE article_writes SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER articles_count_deletes AFTER DELETE ON articles
BEGIN
    UPDATE article_writes SET count = count + 1 WHERE id = 1;
END;

-- Unknown (NULL) until the lists are next recorded current.
ALTER TABLE related_sync ADD COLUMN article_writes INTEGER;
