-- OAuth clients registered at POST /oauth/register (RFC 7591), beside the one GPT client
-- configured in settings; and the resource (RFC 8707) each token was issued for.

CREATE TABLE oauth_clients (
    client_id          TEXT PRIMARY KEY,
    client_secret_hash TEXT,            -- SHA-256 hex; NULL for public clients
    auth_method        TEXT NOT NULL
                       CHECK (auth_method IN ('none', 'client_secret_basic', 'client_secret_post')),
    redirect_uris      TEXT NOT NULL,   -- JSON array, matched exactly
    metadata           TEXT NOT NULL,   -- JSON: the registered metadata, as answered
    created_at         REAL NOT NULL
);

-- NULL: issued without a resource parameter (a GPT Action); good at the HTTP API only.
ALTER TABLE oauth_tokens ADD COLUMN resource TEXT;
