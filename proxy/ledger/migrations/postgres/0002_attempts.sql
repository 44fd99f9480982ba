-- Failed and escalated provider calls get rows of their own ("<request id>.<n>"), costed like any
-- other; stats count a request once, by its attempt-0 row.
ALTER TABLE requests ADD COLUMN attempt smallint NOT NULL DEFAULT 0;
