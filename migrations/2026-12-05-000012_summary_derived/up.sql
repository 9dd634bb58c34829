-- Whether an article's summary was derived from its body (no summary was
-- given), so that a new body derives it again while a summary an editor
-- wrote stays. Adding a column with a constant default rewrites nothing,
-- however many articles there are. Articles stored before are taken as
-- written: their summaries stay as they are.
ALTER TABLE articles ADD COLUMN summary_derived BOOLEAN NOT NULL DEFAULT FALSE;
