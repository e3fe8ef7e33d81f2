-- Silences, maintenance windows, and what they need of the call loop: a SILENCED state,
-- the labels silences match, and a step dialed again after a silence cut its call.
--
-- SQLite cannot change a CHECK or a UNIQUE constraint in place, so `escalations` and
-- `calls` are rebuilt: new table, copy, drop, rename, indexes. Foreign keys stay on (the
-- migration is one transaction, where they cannot be turned off), so `texts`, which
-- references `calls`, is set aside while `calls` is rebuilt and put back after.

CREATE TABLE escalations_new (
    incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
    roster_id    TEXT NOT NULL,
    roster       TEXT NOT NULL,
    -- SILENCED: held by a silence; calls again from `step` when no silence matches.
    state        TEXT NOT NULL
                 CHECK (state IN ('ACTIVE', 'ACCEPTED', 'EXHAUSTED', 'STOPPED', 'SILENCED')),
    step         INTEGER NOT NULL,
    -- The order in which loops became ready for their next call (a counter, not a time):
    -- the queue is first come, first served.
    ready_at     INTEGER NOT NULL,
    -- The fallback after EXHAUSTED: PENDING until fired once, then SENT or FAILED.
    fallback     TEXT CHECK (fallback IN ('PENDING', 'SENT', 'FAILED')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- The incident's labels as silences match them (a JSON object of strings), written
    -- when the loop starts.
    labels       TEXT NOT NULL DEFAULT '{}',
    -- Times a silence held the loop: each one gives the current step a new call.
    attempt      INTEGER NOT NULL DEFAULT 0,
    next_phone   TEXT GENERATED ALWAYS AS (
        CASE WHEN state = 'ACTIVE' THEN json_extract(
            roster, '$.members[' || (step % json_array_length(roster, '$.members')) || '].phone'
        ) END
    ) VIRTUAL
);
-- Loops running before this migration: the labels their incidents carry (an alert's
-- owner is not among them; it reads as "").
INSERT INTO escalations_new
    (incident_id, roster_id, roster, state, step, ready_at, fallback, created_at, updated_at, labels)
SELECT e.incident_id, e.roster_id, e.roster, e.state, e.step, e.ready_at, e.fallback,
       e.created_at, e.updated_at,
       json_object(
           'incidentId', i.id, 'alertId', i.alert_id, 'alertTemplateId', i.template_id,
           'subject', i.subject,
           'severity', COALESCE(json_extract(i.report_open, '$.severity'), ''),
           'source', COALESCE(json_extract(i.report_open, '$.source'), ''),
           'name', COALESCE(json_extract(i.report_open, '$.name'), ''),
           'resource', COALESCE(json_extract(i.report_open, '$.resource'), '')
       )
FROM escalations e JOIN incidents i ON i.id = e.incident_id;
DROP TABLE escalations;
ALTER TABLE escalations_new RENAME TO escalations;
CREATE INDEX escalations_state ON escalations (state, ready_at);
CREATE INDEX escalations_ready ON escalations (ready_at);
CREATE INDEX escalations_waiting ON escalations (next_phone, ready_at, incident_id)
    WHERE state = 'ACTIVE';
CREATE INDEX escalations_fallback_pending ON escalations (incident_id) WHERE fallback = 'PENDING';

-- One call per (incident, step, attempt): the row is written before Twilio is asked, so a
-- restart never dials a step twice; a step a silence cut short is dialed again, once.
CREATE TABLE calls_new (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES incidents (id),
    step           INTEGER NOT NULL,
    attempt        INTEGER NOT NULL DEFAULT 0,
    loop_index     INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    member         TEXT NOT NULL,
    phone          TEXT NOT NULL,
    sid            TEXT UNIQUE,
    -- Twilio's status, or 'placing' until Twilio has answered the request.
    status         TEXT NOT NULL,
    -- accepted, passed, busy, no-answer, failed, canceled, no-key-press, lost, silenced.
    outcome        TEXT,
    digits         TEXT NOT NULL DEFAULT '',
    -- 1: the loop stopped and this call must be ended; 2: the request to end it was made.
    end_requested  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    operator_id    TEXT,
    answered_at    INTEGER,
    decided_at     INTEGER,
    UNIQUE (incident_id, step, attempt)
);
INSERT INTO calls_new
    (id, incident_id, step, loop_index, position, member, phone, sid, status, outcome, digits,
     end_requested, created_at, updated_at, operator_id, answered_at, decided_at)
SELECT id, incident_id, step, loop_index, position, member, phone, sid, status, outcome, digits,
       end_requested, created_at, updated_at, operator_id, answered_at, decided_at
FROM calls;
CREATE TABLE texts_aside AS SELECT * FROM texts;
DROP TABLE texts;
DROP TABLE calls;
ALTER TABLE calls_new RENAME TO calls;
CREATE INDEX calls_status ON calls (status);
CREATE INDEX calls_live_phone ON calls (phone)
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled');
CREATE INDEX calls_to_end ON calls (incident_id) WHERE end_requested = 1 AND sid IS NOT NULL;
CREATE INDEX calls_operator ON calls (operator_id, created_at) WHERE operator_id IS NOT NULL;

-- As 0008_oncall.sql made it.
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
INSERT INTO texts (id, incident_id, call_id, member, operator_id, phone, body, status, sid, created_at, updated_at)
SELECT id, incident_id, call_id, member, operator_id, phone, body, status, sid, created_at, updated_at
FROM texts_aside;
DROP TABLE texts_aside;
CREATE INDEX texts_pending ON texts (created_at) WHERE status = 'pending';
CREATE INDEX texts_phone ON texts (phone, created_at) WHERE status IN ('sending', 'sent');

-- A silence: matchers (a JSON array of {name, op, value}) over incidents' labels, active in
-- [starts_at, ends_at). Expired ones are kept five days.
CREATE TABLE silences (
    id          TEXT PRIMARY KEY,
    matchers    TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL CHECK (ends_at >= starts_at),
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_at);

-- A weekly recurring window that silences what its matchers match while it is open, on
-- the wall clock of time_zone (the rules of schedules).
CREATE TABLE maintenance_windows (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    matchers    TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    -- JSON array of MON … SUN.
    days        TEXT NOT NULL,
    -- Local 'HH:MM'.
    start_time  TEXT NOT NULL,
    end_time    TEXT NOT NULL,
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

