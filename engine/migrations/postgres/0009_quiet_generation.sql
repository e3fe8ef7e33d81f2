-- Bumped by every change to silences and maintenance windows (see SQLite's
-- 0011_quiet_generation.sql). Row triggers, not statement ones: the passes' sweep of
-- long-expired silences usually deletes nothing, and must not make every node parse
-- every silence again.
CREATE TABLE quiet_generation (n BIGINT NOT NULL);
INSERT INTO quiet_generation (n) VALUES (0);
CREATE FUNCTION quiet_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE quiet_generation SET n = n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER silences_changed AFTER INSERT OR UPDATE OR DELETE ON silences
    FOR EACH ROW EXECUTE FUNCTION quiet_changed();
CREATE TRIGGER windows_changed AFTER INSERT OR UPDATE OR DELETE ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION quiet_changed();
