-- Each agent message records when it was handed out, replacing the per-conversation
-- delivery cursor: one UPDATE ... RETURNING then takes every deliverable reply of an
-- identity atomically, in a single statement.
ALTER TABLE agent_messages ADD COLUMN delivered_at TEXT;

UPDATE agent_messages SET delivered_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    WHERE idx <= (SELECT c.delivered_index FROM conversations c
                  WHERE c.id = agent_messages.conversation_id);

ALTER TABLE conversations DROP COLUMN delivered_index;

CREATE INDEX agent_messages_undelivered ON agent_messages (conversation_id, idx)
    WHERE delivered_at IS NULL;
