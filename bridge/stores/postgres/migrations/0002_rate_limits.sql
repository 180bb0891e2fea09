-- Rate limits shared by every bridge process: a token bucket per key (bridge.coordination
-- .postgres), its time the database's (seconds since the epoch). allowed: whether the
-- last take got a token.
CREATE TABLE rate_limits (
    key     TEXT PRIMARY KEY,
    tokens  DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL,
    allowed BOOLEAN NOT NULL
);
CREATE INDEX rate_limits_updated ON rate_limits (updated);
