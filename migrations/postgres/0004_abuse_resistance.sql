-- OAuth 2.1 / RFC 9700 defaults and per-tenant rate limits.
--  * clients.require_pkce: PKCE S256 is required unless a confidential client is
--    declared require_pkce = false; every existing client starts with the default.
--  * tenants.grant_max_lifetime: a refresh chain ends this long after its first token.
--  * tokens.grant_started_at: when the token's grant was first issued, carried through
--    every rotation; existing tokens take the earliest issue time of their grant.
--  * tenants.requests_per_caller / requests_per_tenant: a tenant file's own rate
--    limits; NULL follows the instance's configuration.
-- Keep in lockstep with migrations/sqlite/0004_abuse_resistance.sql.

ALTER TABLE clients ADD COLUMN require_pkce BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tenants ADD COLUMN grant_max_lifetime BIGINT NOT NULL DEFAULT 2592000;
ALTER TABLE tenants ADD COLUMN requests_per_caller BIGINT;
ALTER TABLE tenants ADD COLUMN requests_per_tenant BIGINT;
ALTER TABLE tokens ADD COLUMN grant_started_at BIGINT NOT NULL DEFAULT 0;
UPDATE tokens SET grant_started_at = (
    SELECT MIN(g.issued_at) FROM tokens g
    WHERE g.tenant_id = tokens.tenant_id AND g.grant_id = tokens.grant_id
);
