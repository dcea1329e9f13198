//! The console's sign-in sessions.

use super::statement::{query, Conn};
use crate::store::{ConsoleSessionRecord, Digest, NewConsoleSession, Result};

pub(super) async fn insert(conn: &mut impl Conn, session: &NewConsoleSession<'_>) -> Result<()> {
    let statement = query(
        "INSERT INTO console_sessions \
             (tenant_id, digest, username, grant_id, password_mark, csrf, signed_in_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(session.tenant_id)
    .bind(session.digest)
    .bind(session.username)
    .bind(session.grant_id)
    .bind(session.password_mark)
    .bind(session.csrf)
    .bind(session.now);
    conn.execute(statement).await?;
    Ok(())
}

pub(super) async fn find(
    conn: &mut impl Conn,
    digest: &Digest,
) -> Result<Option<ConsoleSessionRecord>> {
    let statement = query(
        "SELECT id, tenant_id, username, grant_id, password_mark, csrf, signed_in_at, last_seen_at \
         FROM console_sessions WHERE digest = $1",
    )
    .bind(digest);
    Ok(conn.fetch_optional(statement).await?)
}

pub(super) async fn touch(conn: &mut impl Conn, id: i64, now: i64) -> Result<()> {
    let statement = query("UPDATE console_sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id);
    conn.execute(statement).await?;
    Ok(())
}

/// Deletes the session; false when it was already gone.
pub(super) async fn delete(conn: &mut impl Conn, id: i64) -> Result<bool> {
    Ok(conn
        .execute(query("DELETE FROM console_sessions WHERE id = $1").bind(id))
        .await?
        == 1)
}

/// Deletes the sessions last seen at or before `idle_before`, or signed in at or before
/// `started_before`: the bounds of `domain::console::session_state`.
pub(super) async fn delete_stale(
    conn: &mut impl Conn,
    idle_before: i64,
    started_before: i64,
) -> Result<u64> {
    let statement =
        query("DELETE FROM console_sessions WHERE last_seen_at <= $1 OR signed_in_at <= $2")
            .bind(idle_before)
            .bind(started_before);
    Ok(conn.execute(statement).await?)
}
