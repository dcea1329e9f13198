-- Each tenant's ES256 keys for signed introspection answers (RFC 9701). The private key
-- is PKCS#8, sealed with AES-256-GCM under the master key, which never enters the
-- database; the public key is the uncompressed P-256 point. A key signs while
-- retired_at is NULL, and stays published for keys.retire_after_seconds after that.
-- Keep in lockstep with migrations/postgres/0007_signing_keys.sql.

CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kid TEXT NOT NULL UNIQUE,
    public_key BLOB NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

-- One signing key per tenant: instances starting together cannot both give a tenant
-- its first key, and two rotations at once cannot leave two keys signing.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE retired_at IS NULL;
CREATE INDEX signing_keys_by_tenant ON signing_keys (tenant_id, created_at);
