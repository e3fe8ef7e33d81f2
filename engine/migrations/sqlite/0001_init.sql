-- Tocsin's store. Instants are microseconds since the Unix epoch (INTEGER) so that range
-- queries compare integers; decimals are TEXT and summed exactly in Rust.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer', 'ingest')),
    -- SHA-256 of the key. Keys are 256 random bits, so a fast hash is enough.
    hash        BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    created_by  TEXT,
    revoked_at  INTEGER
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    detail      TEXT NOT NULL
);

-- Every component ever registered, by content hash.
CREATE TABLE plugins (
    digest       TEXT PRIMARY KEY,
    template_id  TEXT NOT NULL,
    version      TEXT NOT NULL,
    wasm         BLOB NOT NULL,
    builtin      INTEGER NOT NULL,
    uploaded_at  INTEGER NOT NULL,
    uploaded_by  TEXT
);

-- The component each template id currently runs.
CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    digest      TEXT NOT NULL REFERENCES plugins (digest),
    version     TEXT NOT NULL,
    info        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE alerts (
    id                 TEXT PRIMARY KEY,
    template_id        TEXT NOT NULL,
    version            INTEGER NOT NULL,
    description        TEXT,
    status             TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    interval_minutes   INTEGER NOT NULL,
    validity_minutes   INTEGER,
    valid_until        INTEGER,
    owner_details      TEXT,
    entity_details     TEXT,
    parameters         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- The data the last evaluation asked for (JSON queries), so a change can find the
    -- alerts it affects after a restart.
    dependencies       TEXT NOT NULL DEFAULT '[]',
    last_evaluated_at  INTEGER,
    last_outcome       TEXT,
    last_message       TEXT,
    last_template_version TEXT,
    expired_at         INTEGER
);

-- Failed and no-data evaluations, a bounded history per alert.
CREATE TABLE evaluation_problems (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id  TEXT NOT NULL,
    at        INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    subject   TEXT,
    message   TEXT NOT NULL
);
CREATE INDEX evaluation_problems_alert ON evaluation_problems (alert_id, id);

CREATE TABLE entities (
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    owner_type   TEXT,
    owner_id     TEXT,
    attributes   TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
);
CREATE INDEX entities_owner ON entities (entity_type, owner_id);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    event_type   TEXT,
    owner_type   TEXT,
    owner_id     TEXT,
    entity_type  TEXT,
    entity_id    TEXT,
    ts           INTEGER NOT NULL,
    value        TEXT,
    attributes   TEXT NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX events_owner_ts ON events (owner_id, ts);
CREATE INDEX events_ts ON events (ts);

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    alert_id         TEXT NOT NULL,
    alert_version    INTEGER NOT NULL,
    template_id      TEXT NOT NULL,
    subject          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('OPEN', 'ACKNOWLEDGED', 'CLOSED')),
    summary          TEXT NOT NULL,
    report_open      TEXT NOT NULL,
    report_latest    TEXT NOT NULL,
    report_close     TEXT,
    valid_until      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_checked_at  INTEGER NOT NULL,
    closed_at        INTEGER,
    closed_by        TEXT,
    acknowledged_by  TEXT
);
-- At most one incident that is not CLOSED per (alert, subject), whatever races above.
CREATE UNIQUE INDEX incidents_one_open ON incidents (alert_id, subject) WHERE status != 'CLOSED';
CREATE INDEX incidents_alert ON incidents (alert_id, id);
CREATE INDEX incidents_status ON incidents (status, id);

CREATE TABLE timeline (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  TEXT NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_id, id);
