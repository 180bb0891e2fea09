-- The authorization server's defences: sign-ins bound to the browser that started them,
-- the user's consent for clients the operator has not vetted (asked once per user and
-- client), revoked token families that stay revoked whatever is issued afterwards, and
-- registered clients that expire when unused.

-- SHA-256 of the browser's sign-in cookie; the callback must come from that browser.
ALTER TABLE oauth_requests ADD COLUMN browser_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX oauth_requests_created ON oauth_requests (created_at);

-- A signed-in user looking at the consent page: what a yes would issue a code for.
CREATE TABLE oauth_consent_requests (
    consent_hash   TEXT PRIMARY KEY,   -- SHA-256 of the token in the consent form
    browser_hash   TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    state          TEXT NOT NULL,
    scope          TEXT NOT NULL,
    subject        TEXT NOT NULL,
    profile        TEXT NOT NULL,
    code_challenge TEXT,
    resource       TEXT,
    created_at     REAL NOT NULL
);
CREATE INDEX oauth_consent_requests_created ON oauth_consent_requests (created_at);

-- Consent given: this user lets this client act for them.
CREATE TABLE oauth_consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- A family revoked (a code or refresh token replayed): every token in it is dead, those
-- issued after the revocation too, so a replay racing the legitimate request still wins.
CREATE TABLE oauth_revoked_families (
    family     TEXT PRIMARY KEY,
    revoked_at REAL NOT NULL
);

-- When a registered client last got tokens; unused clients are removed.
ALTER TABLE oauth_clients ADD COLUMN last_used_at REAL;
CREATE INDEX oauth_clients_created ON oauth_clients (created_at);
