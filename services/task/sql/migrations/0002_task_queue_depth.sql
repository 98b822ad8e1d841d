-- The queue-depth gauge counts unfinished tasks by state and type every few
-- seconds; this index keeps that an index-only scan over the unfinished tasks
-- instead of a scan of the whole (ever-growing) task history.
CREATE INDEX tasks_unfinished ON task.tasks (state, type) WHERE state IN (1, 2, 3, 4);
