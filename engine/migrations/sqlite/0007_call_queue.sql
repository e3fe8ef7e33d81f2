-- The dialer takes the longest-waiting loop whose next number is free. Each active loop's
-- next number is derived from its roster copy and step (the database keeps it in step with
-- both) and indexed with the loop's place in the queue, so finding the next call reads a
-- few index entries per number, however many loops wait.
ALTER TABLE escalations ADD COLUMN next_phone TEXT GENERATED ALWAYS AS (
    CASE WHEN state = 'ACTIVE' THEN json_extract(
        roster, '$.members[' || (step % json_array_length(roster, '$.members')) || '].phone'
    ) END
) VIRTUAL;
CREATE INDEX escalations_waiting ON escalations (next_phone, ready_at, incident_id)
    WHERE state = 'ACTIVE';

-- The numbers on a call now: a handful of rows, however many calls were ever placed.
CREATE INDEX calls_live_phone ON calls (phone)
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled');

-- What the driver looks at on every pass: calls to end and fallbacks to fire, a handful
-- of rows among every call and loop there ever was.
CREATE INDEX calls_to_end ON calls (incident_id) WHERE end_requested = 1 AND sid IS NOT NULL;
CREATE INDEX escalations_fallback_pending ON escalations (incident_id) WHERE fallback = 'PENDING';
