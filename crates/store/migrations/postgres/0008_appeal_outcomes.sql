-- An upheld appeal (申诉成立) clears the employee a complaint names: the complaint keeps
-- who was named, but no longer counts against them.
ALTER TABLE complaints ADD COLUMN subject_cleared_at BIGINT;
