DROP TABLE api_keys;
DROP TABLE reaction_kinds;
DROP TABLE article_tags;
DROP TABLE articles;
DROP TABLE tags;
DROP TABLE authors;
DROP TABLE categories;
