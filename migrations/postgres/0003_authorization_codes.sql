-- Authorization codes live in `tokens` (kind 'authorization_code') and carry what the
-- exchange must match: the redirect URI the request named (NULL when it named none)
-- and the PKCE S256 challenge (NULL without PKCE).
-- Keep in lockstep with migrations/sqlite/0003_authorization_codes.sql.

ALTER TABLE tokens ADD COLUMN redirect_uri TEXT;
ALTER TABLE tokens ADD COLUMN code_challenge TEXT;
