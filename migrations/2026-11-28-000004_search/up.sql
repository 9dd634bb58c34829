-- Full-text search over title, summary and the body as plain text (BM25).
-- The application writes it with each article, in the same transaction.
CREATE VIRTUAL TABLE article_search USING fts5(
    title,
    summary,
    body,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
-- Rank by BM25 with a word in the title worth ten in the body, and one in
-- the summary four.
INSERT INTO article_search (article_search, rank) VALUES ('rank', 'bm25(10.0, 4.0, 1.0)');

-- Articles stored before search existed; indexed (and removed from here)
-- when the store is next opened.
CREATE TABLE search_pending (article_id INTEGER PRIMARY KEY NOT NULL);
INSERT INTO search_pending (article_id) SELECT id FROM articles;
