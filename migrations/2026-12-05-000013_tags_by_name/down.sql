DROP INDEX tags_by_name;
