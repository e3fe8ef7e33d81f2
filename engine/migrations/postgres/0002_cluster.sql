-- Several nodes on one database: who is alive, who holds which work, and what changed.
-- Every time here is the database's clock (`now()`), the one clock all nodes share.

-- Each node's heartbeat, written about once a second.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    address     TEXT NOT NULL,
    version     TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL
);

-- Named cluster-wide leases; `dialer` is the one that places calls (and so paces them).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Which node evaluates which alert: one row per alert, claimed with SKIP LOCKED, renewed
-- by its holder, anyone's once expired.
CREATE TABLE alert_leases (
    alert_id    TEXT PRIMARY KEY,
    owner       TEXT,
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
CREATE INDEX alert_leases_owner ON alert_leases (owner);
INSERT INTO alert_leases (alert_id) SELECT id FROM alerts;

CREATE FUNCTION alert_lease_row() RETURNS trigger AS $$
BEGIN
    INSERT INTO alert_leases (alert_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER alerts_lease AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION alert_lease_row();

-- Changes taken by a node that does not hold the alert, waiting for the one that does.
CREATE TABLE alert_changes (
    id          BIGSERIAL PRIMARY KEY,
    alert_id    TEXT NOT NULL,
    entity_type TEXT,
    entity_id   TEXT
);
CREATE INDEX alert_changes_alert ON alert_changes (alert_id);

-- What nodes cache in memory, versioned: a write bumps its counter and notifies, and every
-- node reloads what moved (it also polls, since a notification can be missed).
CREATE TABLE versions (
    name     TEXT PRIMARY KEY,
    version  BIGINT NOT NULL
);
INSERT INTO versions (name, version) VALUES ('alerts', 0), ('templates', 0), ('keys', 0);

CREATE FUNCTION bump_version() RETURNS trigger AS $$
BEGIN
    UPDATE versions SET version = version + 1 WHERE name = TG_ARGV[0];
    PERFORM pg_notify('tocsin_versions', TG_ARGV[0]);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
-- Only the definition: the results evaluations write are not a change to reload.
CREATE TRIGGER alerts_version
    AFTER INSERT OR DELETE OR UPDATE OF template_id, version, description, status,
        interval_minutes, validity_minutes, valid_until, owner_details, entity_details,
        parameters, expired_at
    ON alerts FOR EACH STATEMENT EXECUTE FUNCTION bump_version('alerts');
CREATE TRIGGER templates_version AFTER INSERT OR UPDATE OR DELETE ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_version('templates');
CREATE TRIGGER keys_version AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_version('keys');

-- One live call per number, whichever node dials.
CREATE UNIQUE INDEX calls_one_live_per_phone ON calls (phone)
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled');
