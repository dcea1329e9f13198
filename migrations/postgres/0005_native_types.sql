-- PostgreSQL's own types where the schema had bent to a lowest common denominator:
-- booleans become BOOLEAN (they were BIGINT 0/1) and lists become JSONB (they were
-- JSON text). Every value converts in place; nothing is dropped.
-- Keep in lockstep with migrations/sqlite/0005_native_types.sql.

ALTER TABLE tenants
    ALTER COLUMN active DROP DEFAULT,
    ALTER COLUMN active TYPE BOOLEAN USING active <> 0,
    ALTER COLUMN active SET DEFAULT TRUE,
    ALTER COLUMN introspection_clients DROP DEFAULT,
    ALTER COLUMN introspection_clients TYPE JSONB USING introspection_clients::jsonb,
    ALTER COLUMN introspection_clients SET DEFAULT '[]'::jsonb,
    ALTER COLUMN resources TYPE JSONB USING resources::jsonb;

ALTER TABLE roles
    ALTER COLUMN permissions TYPE JSONB USING permissions::jsonb;

ALTER TABLE users
    ALTER COLUMN enabled DROP DEFAULT,
    ALTER COLUMN enabled TYPE BOOLEAN USING enabled <> 0,
    ALTER COLUMN enabled SET DEFAULT TRUE;

ALTER TABLE clients
    ALTER COLUMN grant_types TYPE JSONB USING grant_types::jsonb,
    ALTER COLUMN redirect_uris TYPE JSONB USING redirect_uris::jsonb,
    ALTER COLUMN scopes TYPE JSONB USING scopes::jsonb,
    ALTER COLUMN require_pkce DROP DEFAULT,
    ALTER COLUMN require_pkce TYPE BOOLEAN USING require_pkce <> 0,
    ALTER COLUMN require_pkce SET DEFAULT TRUE;
