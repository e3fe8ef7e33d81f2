-- A change to data goes to every other node, and each judges it against the alerts it
-- holds: only a holder knows what its alerts read (it learns that by evaluating them), so
-- the node that took the change does not pick alerts for it.
CREATE TABLE node_changes (
    id           BIGSERIAL PRIMARY KEY,
    node         TEXT NOT NULL,
    -- 'entity' (entity_type, entity_id, owner_id) or 'events' (owner_id).
    kind         TEXT NOT NULL CHECK (kind IN ('entity', 'events')),
    entity_type  TEXT,
    entity_id    TEXT,
    owner_id     TEXT
);
CREATE INDEX node_changes_node ON node_changes (node, id);

-- `alert_changes` now only carries whole alerts for their holders.
ALTER TABLE alert_changes DROP COLUMN entity_type, DROP COLUMN entity_id;
