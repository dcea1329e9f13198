-- OpenID Connect. `users.subject` is the `sub` of ID tokens: random, given once to
-- each user row, so that a user deleted and made again under the same name is a new
-- subject; a trigger gives it to every new row, whichever path inserts it. A code
-- keeps the `nonce` of its authorization request, and every token of a grant that
-- began with a sign-in keeps `auth_time`, when its user entered the password.
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
