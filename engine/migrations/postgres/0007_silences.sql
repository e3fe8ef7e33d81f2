-- Silences, maintenance windows, and what they need of the call loop: a SILENCED state,
-- the labels silences match, and a step dialed again after a silence cut its call.

-- SILENCED: held by a silence; calls again from `step` when no silence matches.
ALTER TABLE escalations DROP CONSTRAINT escalations_state_check;
ALTER TABLE escalations ADD CONSTRAINT escalations_state_check
    CHECK (state IN ('ACTIVE', 'ACCEPTED', 'EXHAUSTED', 'STOPPED', 'SILENCED'));
-- The incident's labels as silences match them, written when the loop starts.
ALTER TABLE escalations ADD COLUMN labels JSONB NOT NULL DEFAULT '{}';
-- Times a silence held the loop: each one gives the current step a new call.
ALTER TABLE escalations ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
-- Loops running before this migration: the labels their incidents carry (an alert's
-- owner is not among them; it reads as "").
UPDATE escalations e SET labels = jsonb_build_object(
    'incidentId', i.id, 'alertId', i.alert_id, 'alertTemplateId', i.template_id,
    'subject', i.subject,
    'severity', COALESCE(i.report_open::jsonb ->> 'severity', ''),
    'source', COALESCE(i.report_open::jsonb ->> 'source', ''),
    'name', COALESCE(i.report_open::jsonb ->> 'name', ''),
    'resource', COALESCE(i.report_open::jsonb ->> 'resource', '')
)
FROM incidents i WHERE i.id = e.incident_id;

-- One call per (incident, step, attempt): the row is written before Twilio is asked, so a
-- restart never dials a step twice; a step a silence cut short is dialed again, once.
ALTER TABLE calls ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls DROP CONSTRAINT calls_incident_id_step_key;
ALTER TABLE calls ADD CONSTRAINT calls_incident_id_step_attempt_key UNIQUE (incident_id, step, attempt);

-- A silence: matchers (a JSON array of {name, op, value}) over incidents' labels, active in
-- [starts_at, ends_at). Expired ones are kept five days.
CREATE TABLE silences (
    id          TEXT PRIMARY KEY,
    matchers    TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL CHECK (ends_at >= starts_at),
    comment     TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
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
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
