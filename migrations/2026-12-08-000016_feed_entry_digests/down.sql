CREATE TABLE feed_entries_linked (
    entry TEXT PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE
);
INSERT INTO feed_entries_linked (entry, article_id)
    SELECT entry, article_id FROM feed_entries WHERE article_id IS NOT NULL;
DROP TABLE feed_entries;
ALTER TABLE feed_entries_linked RENAME TO feed_entries;
CREATE INDEX feed_entries_article ON feed_entries (article_id);
