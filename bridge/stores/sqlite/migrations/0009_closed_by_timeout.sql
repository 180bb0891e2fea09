-- A conversation can also close on its own: Twilio's inactivity timer (Reason TIMER), or
-- Flex ending its task with no agent to answer (system).
-- SQLite cannot change a column's CHECK, so the column is rebuilt.
ALTER TABLE conversations ADD COLUMN closed_by_new TEXT
    CHECK (closed_by_new IS NULL OR closed_by_new IN ('agent', 'user', 'timeout', 'system', 'lost'));
UPDATE conversations SET closed_by_new = closed_by;
ALTER TABLE conversations DROP COLUMN closed_by;
ALTER TABLE conversations RENAME COLUMN closed_by_new TO closed_by;
