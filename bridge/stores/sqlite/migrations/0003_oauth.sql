-- OAuth 2.0 authorization server state. Codes and tokens are random and stored only as
-- SHA-256 hashes; a token "family" is everything issued from one authorization code,
-- revoked together when a code or refresh token is replayed.

-- A sign-in in progress at the upstream OpenID Connect provider, keyed by the state sent
-- there; holds what to send back to the client afterwards.
CREATE TABLE oauth_requests (
    upstream_state TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    state          TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    code_verifier  TEXT NOT NULL,    -- ours, for PKCE with the upstream provider
    code_challenge TEXT,             -- the client's, for PKCE with us (S256)
    resource       TEXT,             -- RFC 8707 resource the client asked for
    created_at     REAL NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash    TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    subject      TEXT NOT NULL,
    scope        TEXT NOT NULL,
    profile      TEXT NOT NULL,  -- JSON: the verified name and email
    code_challenge TEXT,
    resource     TEXT,
    expires_at   REAL NOT NULL,
    used_at      REAL
);

CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    family     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    profile    TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);

CREATE INDEX oauth_tokens_family ON oauth_tokens (family);

-- The signed-in user's verified profile travels with their messages, for conversations
-- opened with SHARE_PROFILE_WITH_AGENT=1.
ALTER TABLE outbox ADD COLUMN profile TEXT;
