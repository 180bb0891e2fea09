-- A reply is handed out under a lease and counts as delivered only once the answer that
-- carries it has been written to the caller (delivered_at). A lease released (the caller
-- went away) or run out (the process died) makes the reply deliverable again.
ALTER TABLE agent_messages ADD COLUMN lease TEXT;
ALTER TABLE agent_messages ADD COLUMN leased_until REAL;
CREATE INDEX agent_messages_lease ON agent_messages (lease) WHERE lease IS NOT NULL;
