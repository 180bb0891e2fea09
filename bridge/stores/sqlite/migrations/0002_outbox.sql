-- User messages are stored before they are posted, so a Twilio outage or a crash loses
-- none of them. idempotency_key travels in the message Attributes: a retried post first
-- checks Twilio for it, so no message is posted twice.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    identity        TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    context         TEXT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL DEFAULT 0,  -- unix time
    conversation_id INTEGER REFERENCES conversations (id),
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    last_error      TEXT
);

CREATE INDEX outbox_pending ON outbox (identity, id) WHERE state = 'pending';
