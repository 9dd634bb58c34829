CREATE TABLE views_log (
    id INTEGER PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL,
    reader_id INTEGER REFERENCES readers (id),
    viewed_at TIMESTAMP NOT NULL
);
INSERT INTO views_log (id, article_id, reader_id, viewed_at)
    SELECT id, article_id, reader_id, viewed_at FROM views ORDER BY id;
DROP TABLE views;
ALTER TABLE views_log RENAME TO views;
DELETE FROM sqlite_sequence WHERE name IN ('views', 'views_log');
