-- An article's id is never handed out again. What is kept in memory by
-- article id (the reading graph and its neighbour lists, the Related index)
-- learns of a deletion late or not at all, and SQLite gives a new row the
-- largest id in the table plus one: deleting the newest article and creating
-- another gave the new one the old one's readers and Related text. Rebuilding
-- `articles` with AUTOINCREMENT would copy every article with foreign keys
-- switched off; the largest id ever deleted is kept here instead, and a new
-- article takes an id past it (see `article_writes::insert`).
CREATE TABLE article_id_mark (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_deleted INTEGER NOT NULL
);
INSERT INTO article_id_mark (id, last_deleted)
    VALUES (1, COALESCE((SELECT MAX(article_id) FROM view_purges), 0));
CREATE TRIGGER articles_keep_deleted_ids AFTER DELETE ON articles
WHEN OLD.id > (SELECT last_deleted FROM article_id_mark)
BEGIN
    UPDATE article_id_mark SET last_deleted = OLD.id;
END;
