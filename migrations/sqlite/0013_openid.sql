-- OpenID Connect. `users.subject` is the `sub` of ID tokens: random, given once to
-- each user row, so that a user deleted and made again under the same name is a new
-- subject; a trigger gives it to every new row, whichever path inserts it. A code
-- keeps the `nonce` of its authorization request, and every token of a grant that
-- began with a sign-in keeps `auth_time`, when its user entered the password. A user's
-- profile (`name`, `email`, `email_verified`) feeds the claims of the same names. A
-- client's access tokens are `opaque` unless it asks for `jwt` (RFC 9068).
-- Keep in lockstep with migrations/postgres/0013_openid.sql.

ALTER TABLE users ADD COLUMN subject TEXT;
UPDATE users SET subject = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX users_by_subject ON users (tenant_id, subject);
CREATE TRIGGER users_subject AFTER INSERT ON users WHEN NEW.subject IS NULL
BEGIN
    UPDATE users SET subject = lower(hex(randomblob(16))) WHERE id = NEW.id;
END;

ALTER TABLE tokens ADD COLUMN nonce TEXT;
ALTER TABLE tokens ADD COLUMN auth_time BIGINT;

ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;

ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'opaque';
