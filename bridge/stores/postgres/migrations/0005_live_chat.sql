-- The live chat pane (an MCP App): when the user saw an agent reply there, so the model
-- is told it was shown rather than handed it as news; and where a user message landed in
-- the conversation (the Twilio index of its first part), so both sides show in order.
ALTER TABLE agent_messages ADD COLUMN shown_at TEXT;
ALTER TABLE outbox ADD COLUMN posted_index INTEGER;
-- The pane reads a conversation's user messages, and a user's unposted ones.
CREATE INDEX outbox_conversation ON outbox (conversation_id, id);
CREATE INDEX outbox_identity ON outbox (identity, id);

-- The live chat pane shows the user's own messages too (sent by the model or from the
-- pane, through any process): one stored, posted or refused rings the doorbell.
CREATE FUNCTION outbox_ring() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM bridge_ring(NEW.identity);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_ring AFTER INSERT OR UPDATE ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_ring();
