-- Related lists kept in the store, so that a large archive's lists are
-- computed once rather than at every start or whenever one is read (see
-- `related::stored`). A list holds while its article and the articles in it
-- are as they were when it was computed: `fingerprint` hashes their ids and
-- `updated_at`s as the index had them then. `computed_at` tells a start
-- which articles may have changed since the lists were made. `items` packs
-- the list (see `related::stored::encode`).
CREATE TABLE related_lists (
    article_id INTEGER PRIMARY KEY NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    computed_at TIMESTAMP NOT NULL,
    fingerprint BIGINT NOT NULL,
    items BLOB NOT NULL
);

-- Changes to articles before `synced_at` have reached the stored lists: a
-- start looks again only at articles changed or published after it (less a
-- margin), which another process may have written while the server was
-- down.
CREATE TABLE related_sync (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    synced_at TIMESTAMP NOT NULL
);
