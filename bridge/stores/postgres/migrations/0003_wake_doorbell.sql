-- The doorbell: a change a waiting request must see rings every bridge process, as a
-- NOTIFY made by the very transaction that makes the change, so it is heard exactly when
-- the change commits (and never for one rolled back). The tables stay the truth: a ring
-- only says "look again". Payload: "<writer's application_name> <unix time> <identity>";
-- a process knows its own connections by their application_name and skips its own rings
-- (it woke its waiters already).

CREATE FUNCTION bridge_ring(identity TEXT) RETURNS VOID LANGUAGE SQL AS $$
    SELECT pg_notify(
        'bridge_wake',
        translate(current_setting('application_name'), ' ', '_') || ' '
            || extract(EPOCH FROM clock_timestamp())::TEXT || ' ' || identity
    )
$$;

-- A conversation closed, taken by an agent or wrapping up, or its sync mark moved past
-- replies not yet handed out (which is what makes them deliverable).
CREATE FUNCTION conversations_ring() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state
        OR NEW.progress IS DISTINCT FROM OLD.progress
        OR NEW.agent_name IS DISTINCT FROM OLD.agent_name
        OR (NEW.synced_index > OLD.synced_index AND EXISTS (
            SELECT 1 FROM agent_messages m
            WHERE m.conversation_id = NEW.id AND m.delivered_at IS NULL
                AND m.idx > OLD.synced_index AND m.idx <= NEW.synced_index))
    THEN
        PERFORM bridge_ring(NEW.identity);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_ring AFTER UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversations_ring();

-- Replies handed back (their answer never reached its caller): up for the taking again.
CREATE FUNCTION agent_messages_ring() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bridge_ring(c.identity)
    FROM conversations c
    WHERE c.id IN (
        SELECT a.conversation_id
        FROM changed_to a JOIN changed_from b USING (message_sid)
        WHERE b.lease IS NOT NULL AND a.lease IS NULL AND a.delivered_at IS NULL
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER agent_messages_ring AFTER UPDATE ON agent_messages
    REFERENCING OLD TABLE AS changed_from NEW TABLE AS changed_to
    FOR EACH STATEMENT EXECUTE FUNCTION agent_messages_ring();
