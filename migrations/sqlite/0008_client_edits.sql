-- Client edits through the admin API: a client may carry a display name, and an audit
-- entry may say what a change changed (the fields of an edited client).
-- Keep in lockstep with migrations/postgres/0008_client_edits.sql.

ALTER TABLE clients ADD COLUMN name TEXT;
ALTER TABLE audit_events ADD COLUMN detail TEXT;
