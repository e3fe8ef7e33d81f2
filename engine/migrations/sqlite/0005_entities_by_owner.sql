-- An owner's entities of a type, in id order, straight from one index: with only
-- (entity_type, owner_id), SQLite preferred the primary key to skip the sort and read every
-- entity of the type to find one owner's.
DROP INDEX entities_owner;
CREATE INDEX entities_owner ON entities (entity_type, owner_id, entity_id);
