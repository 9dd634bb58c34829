-- Engagement: every reader's views and reactions, running totals, and hourly
-- and daily buckets that rankings read instead of raw events.

-- Readers are the opaque ids clients choose; events refer to them by number.
CREATE TABLE readers (
    id INTEGER PRIMARY KEY NOT NULL,
    key TEXT NOT NULL UNIQUE
);

CREATE TABLE views (
    id INTEGER PRIMARY KEY NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    reader_id INTEGER REFERENCES readers (id),
    viewed_at TIMESTAMP NOT NULL
);
CREATE INDEX views_by_article ON views (article_id);
CREATE INDEX views_by_reader ON views (reader_id, viewed_at) WHERE reader_id IS NOT NULL;

CREATE TABLE reactions (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    kind TEXT NOT NULL REFERENCES reaction_kinds (key),
    reader_id INTEGER NOT NULL REFERENCES readers (id),
    reacted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (article_id, kind, reader_id)
) WITHOUT ROWID;
CREATE INDEX reactions_by_reader ON reactions (reader_id, reacted_at);

-- Totals per article: `view`, or a reaction kind's key.
CREATE TABLE article_counts (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    counter TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (article_id, counter)
) WITHOUT ROWID;

-- Engagement per article and hour (hours since the Unix epoch), and per day.
CREATE TABLE engagement_hours (
    period INTEGER NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    views INTEGER NOT NULL DEFAULT 0,
    reactions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, article_id)
) WITHOUT ROWID;
CREATE INDEX engagement_hours_by_article ON engagement_hours (article_id);

CREATE TABLE engagement_days (
    period INTEGER NOT NULL,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    views INTEGER NOT NULL DEFAULT 0,
    reactions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, article_id)
) WITHOUT ROWID;
CREATE INDEX engagement_days_by_article ON engagement_days (article_id);
