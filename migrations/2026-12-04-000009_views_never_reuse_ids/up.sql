-- A view's id must never be handed out twice. Without AUTOINCREMENT, SQLite
-- gives a new row the largest id in the table plus one, so when the purge of
-- a deleted article removed the newest views, the next views took their ids
-- again: ids at or below `view_tally.counted_through`, which were never
-- counted, and at or below a purge's `last_view_id`, which were purged.
-- AUTOINCREMENT keeps the largest id ever used (`sqlite_sequence`); it starts
-- past every id already counted or purged.
CREATE TABLE views_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    article_id INTEGER NOT NULL,
    reader_id INTEGER REFERENCES readers (id),
    viewed_at TIMESTAMP NOT NULL
);
INSERT INTO views_log (id, article_id, reader_id, viewed_at)
    SELECT id, article_id, reader_id, viewed_at FROM views ORDER BY id;
DROP TABLE views;
ALTER TABLE views_log RENAME TO views;
DELETE FROM sqlite_sequence WHERE name IN ('views', 'views_log');
INSERT INTO sqlite_sequence (name, seq) VALUES ('views', MAX(
    COALESCE((SELECT MAX(id) FROM views), 0),
    (SELECT counted_through FROM view_tally),
    COALESCE((SELECT MAX(last_view_id) FROM view_purges), 0)
));
