-- Lists that scale: every admin list pages by a key in byte order, and the audit log,
-- newest first by (at, id), filters by action, actor, target and time through an
-- index each. SQLite compares text byte by byte under the name `binary`; the same name
-- here means the same order whatever the database's locale, so a cursor and a prefix
-- mean the same on both.
-- Keep in lockstep with migrations/sqlite/0010_lists.sql.

CREATE COLLATION IF NOT EXISTS "binary" FROM "C";
CREATE INDEX users_by_name ON users (tenant_id, username COLLATE "binary");
CREATE INDEX roles_by_name ON roles (tenant_id, name COLLATE "binary");
CREATE INDEX clients_by_tenant ON clients (tenant_id, client_id COLLATE "binary");
CREATE INDEX tenants_by_domain ON tenants (domain COLLATE "binary");
CREATE INDEX audit_by_action ON audit_events (tenant_id, action, at, id);
CREATE INDEX audit_by_actor ON audit_events (tenant_id, actor, at, id);
CREATE INDEX audit_by_target ON audit_events (tenant_id, target, at, id);
