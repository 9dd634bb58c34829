DROP TABLE view_tally;
