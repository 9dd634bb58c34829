-- Which article each imported feed entry became, by the entry's id (an RSS
-- guid, an Atom id, else its link). A feed that corrects a headline keeps
-- the entry's id: importing it again updates the article it became, where
-- matching by the slug made from the headline created a second one.
CREATE TABLE feed_entries (
    entry TEXT PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE
);
CREATE INDEX feed_entries_article ON feed_entries (article_id);
