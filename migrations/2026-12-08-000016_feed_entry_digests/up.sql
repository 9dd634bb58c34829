-- What each feed entry said when it was last imported, and the entries
-- whose article an editor deleted. Importing a feed again (a wire feed, by
-- cron) then leaves an article alone while its entry is unchanged, keeping
-- what editors did to it since, and does not bring back one taken down.
CREATE TABLE feed_entries_kept (
    entry TEXT PRIMARY KEY NOT NULL,
    -- NULL once the article is deleted.
    article_id INTEGER REFERENCES articles (id) ON DELETE SET NULL,
    -- NULL for entries imported before this was recorded: the next import
    -- of one records it and leaves its article as editors may have left it.
    digest TEXT
);
INSERT INTO feed_entries_kept (entry, article_id) SELECT entry, article_id FROM feed_entries;
DROP TABLE feed_entries;
ALTER TABLE feed_entries_kept RENAME TO feed_entries;
CREATE INDEX feed_entries_article ON feed_entries (article_id);
