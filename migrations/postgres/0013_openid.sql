-- OpenID Connect. `users.subject` is the `sub` of ID tokens: random, given once to
-- each user row, so that a user deleted and made again under the same name is a new
-- subject; the column's default gives it to every row, existing and new. A code
-- keeps the `nonce` of its authorization request, and every token of a grant that
-- began with a sign-in keeps `auth_time`, when its user entered the password. A user's
-- profile (`name`, `email`, `email_verified`) feeds the claims of the same names. A
-- client's access tokens are `opaque` unless it asks for `jwt` (RFC 9068).
-- Keep in lockstep with migrations/sqlite/0013_openid.sql.

ALTER TABLE users ADD COLUMN subject TEXT NOT NULL
    DEFAULT md5(random()::text || clock_timestamp()::text);
CREATE UNIQUE INDEX users_by_subject ON users (tenant_id, subject);

ALTER TABLE tokens ADD COLUMN nonce TEXT;
ALTER TABLE tokens ADD COLUMN auth_time BIGINT;

ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'opaque';
