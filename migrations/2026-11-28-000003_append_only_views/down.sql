DROP TABLE view_purges;

CREATE TABLE views_indexed (
    id INTEGER PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    reader_id INTEGER REFERENCES readers (id),
    viewed_at TIMESTAMP NOT NULL
);
INSERT INTO views_indexed (id, article_id, reader_id, viewed_at)
    SELECT id, article_id, reader_id, viewed_at FROM views
    WHERE article_id IN (SELECT id FROM articles);
DROP TABLE views;
ALTER TABLE views_indexed RENAME TO views;
CREATE INDEX views_by_article ON views (article_id);
CREATE INDEX views_by_reader ON views (reader_id, viewed_at) WHERE reader_id IS NOT NULL;
