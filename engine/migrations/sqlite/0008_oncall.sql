-- Who is on call: operators, rotations, schedules and their overrides. Who holds a
-- rotation or is on a schedule is never stored: it is computed from these at the instant
-- asked about (tocsin_domain::oncall).

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    -- E.164; one operator per number, so a number's calls are one person's.
    phone       TEXT NOT NULL UNIQUE,
    sms_phone   TEXT,
    time_zone   TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE rotations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    time_zone     TEXT NOT NULL,
    unit          TEXT NOT NULL CHECK (unit IN ('hourly', 'daily', 'weekly')),
    shift_length  INTEGER NOT NULL CHECK (shift_length BETWEEN 1 AND 9000),
    -- A local date-time, 'YYYY-MM-DDTHH:MM:SS', on the wall clock of time_zone.
    handoff_at    TEXT NOT NULL,
    -- Ordered JSON array of operator ids.
    participants  TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE schedules (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    -- Ordered JSON array of {"rotationId" | "operatorId", "days", "start", "end"}.
    rules       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE schedule_overrides (
    id           TEXT PRIMARY KEY,
    schedule_id  TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    add_id       TEXT,
    remove_id    TEXT,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    CHECK (add_id IS NOT NULL OR remove_id IS NOT NULL),
    CHECK (starts_at < ends_at)
);
CREATE INDEX schedule_overrides_range ON schedule_overrides (schedule_id, ends_at);

-- Bumped by every change to the four tables above: a node keeps them in memory for the
-- call loops' starts and reads them again when this moved.
CREATE TABLE oncall_generation (n INTEGER NOT NULL);
INSERT INTO oncall_generation (n) VALUES (0);
CREATE TRIGGER operators_inserted AFTER INSERT ON operators BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER operators_updated AFTER UPDATE ON operators BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER operators_deleted AFTER DELETE ON operators BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER rotations_inserted AFTER INSERT ON rotations BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER rotations_updated AFTER UPDATE ON rotations BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER rotations_deleted AFTER DELETE ON rotations BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER schedules_inserted AFTER INSERT ON schedules BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER schedules_updated AFTER UPDATE ON schedules BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER schedules_deleted AFTER DELETE ON schedules BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER overrides_inserted AFTER INSERT ON schedule_overrides BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER overrides_updated AFTER UPDATE ON schedule_overrides BEGIN UPDATE oncall_generation SET n = n + 1; END;
CREATE TRIGGER overrides_deleted AFTER DELETE ON schedule_overrides BEGIN UPDATE oncall_generation SET n = n + 1; END;

-- Which operator a call rang, when its roster named one: answer statistics per operator.
ALTER TABLE calls ADD COLUMN operator_id TEXT;
-- When it was answered, and when its outcome was settled: seconds to answer and to accept.
ALTER TABLE calls ADD COLUMN answered_at INTEGER;
ALTER TABLE calls ADD COLUMN decided_at INTEGER;
CREATE INDEX calls_operator ON calls (operator_id, created_at) WHERE operator_id IS NOT NULL;

-- SMS follow-up: with 'on-miss', a member whose call is missed is texted the incident and
-- may accept it by replying 1.
ALTER TABLE rosters ADD COLUMN sms TEXT NOT NULL DEFAULT 'off' CHECK (sms IN ('off', 'on-miss'));

-- One text per missed call, written with the call's outcome; sent at most once
-- (pending -> sending -> sent | failed), a reply matched by the number it came from.
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
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX texts_pending ON texts (created_at) WHERE status = 'pending';
CREATE INDEX texts_phone ON texts (phone, created_at) WHERE status IN ('sending', 'sent');

-- Every member already on a roster becomes an operator (one per number, named as on the
-- oldest roster that lists it), and the rosters name those operators.
INSERT INTO operators (id, name, phone, created_at, updated_at)
SELECT 'op_' || lower(hex(randomblob(16))), name, phone, created_at, created_at
FROM (
    SELECT json_extract(m.value, '$.name') AS name, json_extract(m.value, '$.phone') AS phone,
           MIN(r.created_at) AS created_at
    FROM rosters r, json_each(r.members) m
    GROUP BY json_extract(m.value, '$.phone')
);
UPDATE rosters SET members = (
    SELECT json_group_array(json(entry)) FROM (
        SELECT json_object('operatorId', o.id) AS entry
        FROM json_each(rosters.members) m
        JOIN operators o ON o.phone = json_extract(m.value, '$.phone')
        ORDER BY m.key
    )
);
