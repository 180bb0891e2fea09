-- Settings the bridge keeps for itself (the generated sandbox BRIDGE_SECRET).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per Twilio conversation the bridge opened for an identity (a keyed hash).
-- generation counts a user's conversations; (identity, generation) makes the UniqueName.
CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY,
    identity        TEXT    NOT NULL,
    generation      INTEGER NOT NULL,
    sid             TEXT    UNIQUE,
    state           TEXT    NOT NULL CHECK (state IN ('opening', 'open', 'closed')),
    delivered_index INTEGER NOT NULL DEFAULT -1,  -- index of the last agent message handed out
    synced_index    INTEGER NOT NULL DEFAULT -1,  -- highest message index read from Twilio
    created_at      TEXT    NOT NULL,
    closed_at       TEXT,
    UNIQUE (identity, generation)
);

-- At most one conversation per identity that is not closed: simultaneous first
-- messages race on this index and exactly one of them creates the conversation.
CREATE UNIQUE INDEX conversations_one_current ON conversations (identity)
    WHERE state != 'closed';

-- Agent messages as they arrive, so none is lost between arrival and hand-out.
CREATE TABLE agent_messages (
    message_sid     TEXT    PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    idx             INTEGER NOT NULL,
    author          TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    sent_at         TEXT    NOT NULL,
    UNIQUE (conversation_id, idx)
);
