-- Sessions of the operator console: an API key signed in through the sign-in page. The
-- cookie's token is stored as its SHA-256; a session ends when it expires, when it is
-- signed out, or when its key is revoked (the key's row says so at every request).
CREATE TABLE console_sessions (
    hash        BYTEA PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys (id),
    -- The token every form of the session carries (checked on each POST).
    csrf        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
