-- How far Flex has taken a conversation, as the bridge learned it from TaskRouter and the
-- conversation's webhooks: queued (routed, no agent yet), with_agent (an agent accepted),
-- wrapping_up (the agent ended the chat; the task is in wrap-up). NULL: not known (a
-- conversation opened before this was kept). The agent's display name, once one accepted.
ALTER TABLE conversations ADD COLUMN progress TEXT
    CHECK (progress IS NULL OR progress IN ('queued', 'with_agent', 'wrapping_up'));
ALTER TABLE conversations ADD COLUMN agent_name TEXT;
