-- The dialer takes the longest-waiting loop whose next number is free. Each active loop's
-- next number is derived from its roster copy and step (the database keeps it in step with
-- both) and indexed with the loop's place in the queue, so finding the next call reads a
-- few index entries per number, however many loops wait.
ALTER TABLE escalations ADD COLUMN next_phone TEXT GENERATED ALWAYS AS (
    CASE WHEN state = 'ACTIVE' THEN
        roster -> 'members' -> (step % NULLIF(json_array_length(roster -> 'members'), 0))::int ->> 'phone'
    END
) STORED;
CREATE INDEX escalations_waiting ON escalations (next_phone, ready_at, incident_id)
    WHERE state = 'ACTIVE';

-- What the driver looks at on every pass: calls to end and fallbacks to fire, a handful
-- of rows among every call and loop there ever was.
CREATE INDEX calls_to_end ON calls (incident_id) WHERE end_requested = 1 AND sid IS NOT NULL;
CREATE INDEX escalations_fallback_pending ON escalations (incident_id) WHERE fallback = 'PENDING';
