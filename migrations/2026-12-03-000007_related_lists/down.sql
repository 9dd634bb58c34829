DROP TABLE related_sync;
DROP TABLE related_lists;
