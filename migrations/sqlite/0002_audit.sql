-- The audit log: every admin change, sign-in failure and lock. Never a secret.
-- Keep in lockstep with migrations/postgres/0002_audit.sql.

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    client_address TEXT NOT NULL
);

CREATE INDEX audit_by_tenant ON audit_events (tenant_id, id);
