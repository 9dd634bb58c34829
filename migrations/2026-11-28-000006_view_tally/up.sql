-- Views are appended as they come, but their totals and buckets are written
-- in bulk every fraction of a second under load (see `db::engagement`).
-- `counted_through` is the last view id already in `article_counts` and the
-- bucket tables; views after it are counted when the writer next catches up,
-- or when the store opens after a crash. Every view stored so far is counted.
CREATE TABLE view_tally (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    counted_through INTEGER NOT NULL
);
INSERT INTO view_tally (id, counted_through) VALUES (1, COALESCE((SELECT MAX(id) FROM views), 0));
