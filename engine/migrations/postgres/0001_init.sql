-- Tocsin's store on PostgreSQL: the same tables as on SQLite (migrations/sqlite), with
-- PostgreSQL's types. Instants are timestamptz (microseconds, like the SQLite store's
-- integers); decimals stay TEXT and are summed exactly in Rust; JSON that queries look
-- into is `json`, which keeps the text as it was written (attributes reach templates byte
-- for byte); JSON only ever read whole is TEXT.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer', 'ingest')),
    hash        BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT,
    revoked_at  TIMESTAMPTZ
);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    detail      TEXT NOT NULL
);

CREATE TABLE plugins (
    digest       TEXT PRIMARY KEY,
    template_id  TEXT NOT NULL,
    version      TEXT NOT NULL,
    wasm         BYTEA NOT NULL,
    builtin      BOOLEAN NOT NULL,
    uploaded_at  TIMESTAMPTZ NOT NULL,
    uploaded_by  TEXT
);

CREATE TABLE templates (
    id          TEXT PRIMARY KEY,
    digest      TEXT NOT NULL REFERENCES plugins (digest),
    version     TEXT NOT NULL,
    info        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE alerts (
    id                 TEXT PRIMARY KEY,
    template_id        TEXT NOT NULL,
    version            BIGINT NOT NULL,
    description        TEXT,
    status             TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
    interval_minutes   BIGINT NOT NULL,
    validity_minutes   BIGINT,
    valid_until        TIMESTAMPTZ,
    owner_details      TEXT,
    entity_details     TEXT,
    parameters         TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    dependencies       TEXT NOT NULL DEFAULT '[]',
    last_evaluated_at  TIMESTAMPTZ,
    last_outcome       TEXT,
    last_message       TEXT,
    last_template_version TEXT,
    expired_at         TIMESTAMPTZ
);

CREATE TABLE evaluation_problems (
    id        BIGSERIAL PRIMARY KEY,
    alert_id  TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
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
    attributes   JSON NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (entity_type, entity_id)
);
CREATE INDEX entities_owner ON entities (entity_type, owner_id, entity_id);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    event_type   TEXT,
    owner_type   TEXT,
    owner_id     TEXT,
    entity_type  TEXT,
    entity_id    TEXT,
    ts           TIMESTAMPTZ NOT NULL,
    value        TEXT,
    attributes   JSON NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_owner_ts ON events (owner_id, ts);
CREATE INDEX events_ts ON events (ts);

CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    alert_id         TEXT NOT NULL,
    alert_version    BIGINT NOT NULL,
    template_id      TEXT NOT NULL,
    subject          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('OPEN', 'ACKNOWLEDGED', 'CLOSED')),
    summary          TEXT NOT NULL,
    report_open      TEXT NOT NULL,
    report_latest    TEXT NOT NULL,
    report_close     TEXT,
    valid_until      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    last_checked_at  TIMESTAMPTZ NOT NULL,
    closed_at        TIMESTAMPTZ,
    closed_by        TEXT,
    acknowledged_by  TEXT
);
-- At most one incident that is not CLOSED per (alert, subject), whichever node writes.
CREATE UNIQUE INDEX incidents_one_open ON incidents (alert_id, subject) WHERE status <> 'CLOSED';
CREATE INDEX incidents_alert ON incidents (alert_id, id);
CREATE INDEX incidents_status ON incidents (status, id);

CREATE TABLE timeline (
    id           BIGSERIAL PRIMARY KEY,
    incident_id  TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_id, id);

CREATE TABLE rosters (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    members               TEXT NOT NULL,
    loops                 BIGINT NOT NULL CHECK (loops BETWEEN 1 AND 10),
    ring_timeout_seconds  BIGINT NOT NULL,
    fallback_url          TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE routes (
    id           TEXT PRIMARY KEY,
    roster_id    TEXT NOT NULL REFERENCES rosters (id),
    alert_id     TEXT,
    template_id  TEXT,
    owner_id     TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);

-- The call queue's order: taken from a sequence, so writers on several nodes never take
-- the same place.
CREATE SEQUENCE escalation_queue;

CREATE TABLE escalations (
    incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
    roster_id    TEXT NOT NULL,
    roster       JSON NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('ACTIVE', 'ACCEPTED', 'EXHAUSTED', 'STOPPED')),
    step         BIGINT NOT NULL,
    ready_at     BIGINT NOT NULL,
    fallback     TEXT CHECK (fallback IN ('PENDING', 'SENT', 'FAILED')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX escalations_state ON escalations (state, ready_at);

CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES incidents (id),
    step           BIGINT NOT NULL,
    loop_index     BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    member         TEXT NOT NULL,
    phone          TEXT NOT NULL,
    sid            TEXT UNIQUE,
    status         TEXT NOT NULL,
    outcome        TEXT,
    digits         TEXT NOT NULL DEFAULT '',
    end_requested  BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (incident_id, step)
);
CREATE INDEX calls_status ON calls (status);

CREATE TABLE integrations (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    secret_hash          BYTEA NOT NULL,
    alert_id             TEXT,
    hmac_key             TEXT,
    pinned_certificates  TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE deliveries (
    integration_id  TEXT NOT NULL,
    digest          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (integration_id, digest)
);
CREATE INDEX deliveries_at ON deliveries (at);

CREATE TABLE rejected_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    integration_id  TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    reason          TEXT NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX rejected_deliveries_integration ON rejected_deliveries (integration_id, id);
