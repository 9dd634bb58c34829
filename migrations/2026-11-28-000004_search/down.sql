DROP TABLE search_pending;
DROP TABLE article_search;
