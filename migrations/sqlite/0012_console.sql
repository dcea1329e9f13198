-- The console's sign-in sessions, kept in the database so that every instance knows
-- them. A session is found by the digest of its cookie, never by the cookie itself;
-- `password_mark` is a digest of the user's password hash at sign-in, so that a new
-- password ends the session. An audit entry says when a change was made in the console.
-- Keep in lockstep with migrations/postgres/0012_console.sql.

CREATE TABLE console_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    digest BLOB NOT NULL UNIQUE,
    username TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    password_mark TEXT NOT NULL,
    csrf TEXT NOT NULL,
    signed_in_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen_at);
CREATE INDEX console_sessions_by_signed_in ON console_sessions (signed_in_at);

ALTER TABLE audit_events ADD COLUMN via TEXT;
