-- Cloud and monitor webhooks: integrations, the deliveries already taken (for dedup) and
-- the last rejected ones (for whoever configures the platform).

CREATE TABLE integrations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    -- SHA-256 of the secret, like API keys.
    secret_hash  BLOB NOT NULL,
    -- The cloud_alarm alert created with it, which turns its alarms into incidents.
    alert_id     TEXT,
    -- Grafana's HMAC key, when signatures are checked.
    hmac_key     TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A delivery's SHA-256, per integration: the same payload resent changes nothing.
CREATE TABLE deliveries (
    integration_id  TEXT NOT NULL,
    digest          TEXT NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (integration_id, digest)
);

CREATE TABLE rejected_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id  TEXT NOT NULL,
    at              INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    -- The first 4 KiB of the body.
    body            TEXT NOT NULL
);
CREATE INDEX rejected_deliveries_integration ON rejected_deliveries (integration_id, id);
