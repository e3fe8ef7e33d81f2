-- Who is on call: operators, rotations, schedules and their overrides (as SQLite's
-- 0008_oncall.sql). Who holds a rotation or is on a schedule is never stored.

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL UNIQUE,
    sms_phone   TEXT,
    time_zone   TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE rotations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    time_zone     TEXT NOT NULL,
    unit          TEXT NOT NULL CHECK (unit IN ('hourly', 'daily', 'weekly')),
    shift_length  BIGINT NOT NULL CHECK (shift_length BETWEEN 1 AND 9000),
    -- A local date-time on the wall clock of time_zone (no zone of its own).
    handoff_at    TIMESTAMP NOT NULL,
    participants  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    rules       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_overrides (
    id           TEXT PRIMARY KEY,
    schedule_id  TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    add_id       TEXT,
    remove_id    TEXT,
    starts_at    TIMESTAMPTZ NOT NULL,
    ends_at      TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    CHECK (add_id IS NOT NULL OR remove_id IS NOT NULL),
    CHECK (starts_at < ends_at)
);
CREATE INDEX schedule_overrides_range ON schedule_overrides (schedule_id, ends_at);

-- Bumped by every change to the four tables above (see SQLite's 0008_oncall.sql).
CREATE TABLE oncall_generation (n BIGINT NOT NULL);
INSERT INTO oncall_generation (n) VALUES (0);
CREATE FUNCTION oncall_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE oncall_generation SET n = n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER operators_changed AFTER INSERT OR UPDATE OR DELETE ON operators
    FOR EACH STATEMENT EXECUTE FUNCTION oncall_changed();
CREATE TRIGGER rotations_changed AFTER INSERT OR UPDATE OR DELETE ON rotations
    FOR EACH STATEMENT EXECUTE FUNCTION oncall_changed();
CREATE TRIGGER schedules_changed AFTER INSERT OR UPDATE OR DELETE ON schedules
    FOR EACH STATEMENT EXECUTE FUNCTION oncall_changed();
CREATE TRIGGER overrides_changed AFTER INSERT OR UPDATE OR DELETE ON schedule_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION oncall_changed();

ALTER TABLE calls ADD COLUMN operator_id TEXT;
ALTER TABLE calls ADD COLUMN answered_at TIMESTAMPTZ;
ALTER TABLE calls ADD COLUMN decided_at TIMESTAMPTZ;
CREATE INDEX calls_operator ON calls (operator_id, created_at) WHERE operator_id IS NOT NULL;

ALTER TABLE rosters ADD COLUMN sms TEXT NOT NULL DEFAULT 'off' CHECK (sms IN ('off', 'on-miss'));

CREATE TABLE texts (
    id           TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id),
    call_id      TEXT NOT NULL UNIQUE REFERENCES calls (id),
    member       TEXT NOT NULL,
    operator_id  TEXT,
    phone        TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    sid          TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX texts_pending ON texts (created_at) WHERE status = 'pending';
CREATE INDEX texts_phone ON texts (phone, created_at) WHERE status IN ('sending', 'sent');

-- Every member already on a roster becomes an operator, and the rosters name them.
INSERT INTO operators (id, name, phone, created_at, updated_at)
SELECT DISTINCT ON (m ->> 'phone') 'op_' || md5(random()::text || (m ->> 'phone')),
       m ->> 'name', m ->> 'phone', r.created_at, r.created_at
FROM rosters r, json_array_elements(r.members::json) m
ORDER BY m ->> 'phone', r.created_at;
UPDATE rosters SET members = (
    SELECT json_agg(json_build_object('operatorId', o.id) ORDER BY m.i)::text
    FROM json_array_elements(rosters.members::json) WITH ORDINALITY AS m (value, i)
    JOIN operators o ON o.phone = m.value ->> 'phone'
);
