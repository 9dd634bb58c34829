ALTER TABLE articles DROP COLUMN summary_derived;
