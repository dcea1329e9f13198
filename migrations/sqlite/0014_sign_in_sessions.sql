-- Single sign-on: a sign-in on the sign-in page starts a session for its tenant, kept
-- in the database so that every instance knows it. A session is found by the digest of
-- its cookie, never by the cookie itself; `sid` is its public name, which ID tokens
-- carry (OpenID Connect Front-Channel Logout 1.0 §3) and a logout's `id_token_hint`
-- is matched against. `signed_in_at` is when the user last entered the password;
-- `password_mark` is a digest of the password hash then, so that a new password ends
-- the session. Every token of a grant begun in a session keeps its `sid`.
-- Keep in lockstep with migrations/postgres/0014_sign_in_sessions.sql.

CREATE TABLE sign_in_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    digest BLOB NOT NULL UNIQUE,
    sid TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    password_mark TEXT NOT NULL,
    signed_in_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sign_in_sessions_by_last_seen ON sign_in_sessions (last_seen_at);
CREATE INDEX sign_in_sessions_by_signed_in ON sign_in_sessions (signed_in_at);

ALTER TABLE tokens ADD COLUMN sid TEXT;
