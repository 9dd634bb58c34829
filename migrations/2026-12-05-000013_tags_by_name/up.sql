-- Editors may give an article's tags by name: a tag is looked up by its
-- slug, then by its name (ignoring ASCII case), on every article write.
CREATE INDEX tags_by_name ON tags (name COLLATE NOCASE);
