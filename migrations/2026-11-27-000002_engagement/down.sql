DROP TABLE engagement_days;
DROP TABLE engagement_hours;
DROP TABLE article_counts;
DROP TABLE reactions;
DROP TABLE views;
DROP TABLE readers;
