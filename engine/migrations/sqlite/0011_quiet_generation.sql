-- Bumped by every change to silences and maintenance windows: a node keeps them parsed in
-- memory for the call loops' starts and the silencing passes, and reads them again when
-- this moved.
CREATE TABLE quiet_generation (n INTEGER NOT NULL);
INSERT INTO quiet_generation (n) VALUES (0);
CREATE TRIGGER silences_inserted AFTER INSERT ON silences BEGIN UPDATE quiet_generation SET n = n + 1; END;
CREATE TRIGGER silences_updated AFTER UPDATE ON silences BEGIN UPDATE quiet_generation SET n = n + 1; END;
CREATE TRIGGER silences_deleted AFTER DELETE ON silences BEGIN UPDATE quiet_generation SET n = n + 1; END;
CREATE TRIGGER windows_inserted AFTER INSERT ON maintenance_windows BEGIN UPDATE quiet_generation SET n = n + 1; END;
CREATE TRIGGER windows_updated AFTER UPDATE ON maintenance_windows BEGIN UPDATE quiet_generation SET n = n + 1; END;
CREATE TRIGGER windows_deleted AFTER DELETE ON maintenance_windows BEGIN UPDATE quiet_generation SET n = n + 1; END;
