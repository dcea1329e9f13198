-- Tenants, principals and tokens. Times are Unix seconds; JSON lists are TEXT.
-- Keep in lockstep with migrations/postgres/0001_initial.sql.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1,
    access_token_ttl INTEGER NOT NULL,
    refresh_token_ttl INTEGER NOT NULL,
    authorization_code_ttl INTEGER NOT NULL,
    introspection_clients TEXT NOT NULL DEFAULT '[]',
    resources TEXT,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE roles (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE user_roles (
    tenant_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    grant_types TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Codes, access and refresh tokens. Only the SHA-256 digest of a token is stored.
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    jti TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    refresh_digest BLOB,
    client_id TEXT NOT NULL,
    username TEXT,
    scope TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    state_changed_at INTEGER,
    state_changed_by TEXT
);

CREATE INDEX tokens_by_grant ON tokens (tenant_id, grant_id);
CREATE INDEX tokens_by_refresh ON tokens (refresh_digest);
CREATE INDEX tokens_by_owner ON tokens (tenant_id, username);
CREATE INDEX tokens_by_client ON tokens (client_id);
