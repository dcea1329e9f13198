-- A grant's history: the address a request changed a token's state from (a client's
-- revocation, a reuse, an admin's change), and the audit log by time (the order it is
-- shown in, and how a grant's admin actions are found).
-- Keep in lockstep with migrations/sqlite/0011_grant_history.sql.

ALTER TABLE tokens ADD COLUMN state_changed_from TEXT;
CREATE INDEX audit_by_time ON audit_events (tenant_id, at, id);
