-- Token lookups that every refresh, revocation cascade and client removal makes name a
-- tenant as well. With single-column indexes SQLite's planner took the (tenant_id,
-- username) index for them and scanned every token of the tenant; these two lead with
-- the tenant, so the equality on both columns wins.
DROP INDEX tokens_by_refresh;
DROP INDEX tokens_by_client;
CREATE INDEX tokens_by_refresh ON tokens (tenant_id, refresh_digest);
CREATE INDEX tokens_by_client ON tokens (tenant_id, client_id);

-- When a token stopped being active: what the background purge looks for. The
-- expression is the one store/sql/tokens.rs writes as `ended`, so both planners use
-- the index instead of reading every token once a minute.
CREATE INDEX tokens_by_end ON tokens
    ((CASE WHEN state = 'ACTIVE' THEN expires_at ELSE COALESCE(state_changed_at, expires_at) END));
-- Keep in lockstep with migrations/postgres/0006_token_indexes.sql.
