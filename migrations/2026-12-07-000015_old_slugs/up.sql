-- The slugs an article had before its current one: an old link (shared,
-- indexed by search engines) is sent on to the article's current address
-- rather than to a 404. A slug another article takes is no longer an old
-- one; an article's old slugs go with it.
CREATE TABLE old_slugs (
    slug TEXT PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE
);
CREATE INDEX old_slugs_article ON old_slugs (article_id);
