-- The content model: a category tree, authors, tags and articles.
-- Timestamps are UTC, stored as ISO-8601 text by Diesel (sortable as text).

CREATE TABLE categories (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    parent_id INTEGER REFERENCES categories (id),
    position INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX categories_parent_id ON categories (parent_id);

CREATE TABLE authors (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    bio TEXT
);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE articles (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dateline TEXT,
    source TEXT,
    image_url TEXT,
    category_id INTEGER NOT NULL REFERENCES categories (id),
    author_id INTEGER REFERENCES authors (id),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    word_count INTEGER NOT NULL,
    CHECK (status = 'draft' OR published_at IS NOT NULL)
);
-- Every public list walks one of these in (published_at, id) order:
-- visible = status 'published' and published_at <= now.
CREATE INDEX articles_by_status ON articles (status, published_at, id);
CREATE INDEX articles_by_category ON articles (category_id, status, published_at, id);
CREATE INDEX articles_by_author ON articles (author_id, status, published_at, id);
CREATE INDEX articles_by_source ON articles (source, status, published_at, id);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (article_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX article_tags_by_tag ON article_tags (tag_id, article_id);

-- Reaction kinds are data; the engagement tables that count them come later.
CREATE TABLE reaction_kinds (
    key TEXT PRIMARY KEY NOT NULL,
    label TEXT NOT NULL,
    position INTEGER NOT NULL
);
INSERT INTO reaction_kinds (key, label, position) VALUES
    ('very_good', 'veryGood!', 1),
    ('good', 'good', 2),
    ('neutral', 'neutral', 3),
    ('bad', 'bad', 4);

-- Admin API keys, stored only as a SHA-256 hash of the secret.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
