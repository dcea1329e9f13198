-- Lists that scale: every admin list pages by a key in byte order (the `binary`
-- collation, SQLite's default), and the audit log, newest first by (at, id), filters
-- by action, actor, target and time through an index each.
-- Keep in lockstep with migrations/postgres/0010_lists.sql.

CREATE INDEX clients_by_tenant ON clients (tenant_id, client_id);
CREATE INDEX audit_by_action ON audit_events (tenant_id, action, at, id);
CREATE INDEX audit_by_actor ON audit_events (tenant_id, actor, at, id);
CREATE INDEX audit_by_target ON audit_events (tenant_id, target, at, id);
