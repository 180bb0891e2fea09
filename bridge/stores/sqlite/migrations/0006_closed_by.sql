-- Who ended each conversation, so the assistant can tell the user: the agent, the user
-- (through the bridge), or nobody (it vanished from Twilio). Set just before the bridge
-- closes a conversation itself, so a close webhook that overtakes the call is put down to
-- the user. Conversations closed before this migration read as closed by the agent.
ALTER TABLE conversations ADD COLUMN closed_by TEXT
    CHECK (closed_by IS NULL OR closed_by IN ('agent', 'user', 'lost'));
