-- Phone escalation: rosters, routes, and each incident's call loop as a state machine.

CREATE TABLE rosters (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    -- Ordered JSON array of {"name", "phone"}.
    members               TEXT NOT NULL,
    loops                 INTEGER NOT NULL CHECK (loops BETWEEN 1 AND 10),
    ring_timeout_seconds  INTEGER NOT NULL,
    fallback_url          TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- Which incidents go to which roster. NULL criteria match anything; a route with none is
-- the default.
CREATE TABLE routes (
    id           TEXT PRIMARY KEY,
    roster_id    TEXT NOT NULL REFERENCES rosters (id),
    alert_id     TEXT,
    template_id  TEXT,
    owner_id     TEXT,
    created_at   INTEGER NOT NULL
);

-- One call loop per incident. `step` counts calls: member = step % members, loop =
-- step / members. The roster is copied when the loop starts, so later edits do not move
-- a loop under way.
CREATE TABLE escalations (
    incident_id  TEXT PRIMARY KEY REFERENCES incidents (id),
    roster_id    TEXT NOT NULL,
    roster       TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('ACTIVE', 'ACCEPTED', 'EXHAUSTED', 'STOPPED')),
    step         INTEGER NOT NULL,
    -- The order in which loops became ready for their next call (a counter, not a time):
    -- the queue is first come, first served.
    ready_at     INTEGER NOT NULL,
    -- The fallback after EXHAUSTED: PENDING until fired once, then SENT or FAILED.
    fallback     TEXT CHECK (fallback IN ('PENDING', 'SENT', 'FAILED')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX escalations_state ON escalations (state, ready_at);

-- Every call placed, one per (incident, step): the row is written before Twilio is asked,
-- so a restart never dials a step twice.
CREATE TABLE calls (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES incidents (id),
    step           INTEGER NOT NULL,
    loop_index     INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    member         TEXT NOT NULL,
    phone          TEXT NOT NULL,
    sid            TEXT UNIQUE,
    -- Twilio's status, or 'placing' until Twilio has answered the request.
    status         TEXT NOT NULL,
    -- accepted, passed, busy, no-answer, failed, canceled, no-key-press, lost, ended.
    outcome        TEXT,
    digits         TEXT NOT NULL DEFAULT '',
    -- 1: the loop stopped and this call must be ended; 2: the request to end it was made.
    end_requested  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (incident_id, step)
);
CREATE INDEX calls_status ON calls (status);
