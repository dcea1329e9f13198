//! Sessions: the console's, and single sign-on's on the sign-in page. Both are found by
//! the digest of their cookie, used, and ended alike; only what they hold differs.

use super::statement::{query, Conn};
use crate::store::{
    ConsoleSessionRecord, Digest, NewConsoleSession, NewSignInSession, Result, SessionKind,
    SignInSessionRecord,
};

/// The table of one kind of session.
fn table(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Console => "console_sessions",
        SessionKind::SignIn => "sign_in_sessions",
    }
}

pub(super) async fn insert_console(
    conn: &mut impl Conn,
    session: &NewConsoleSession<'_>,
) -> Result<()> {
    let statement = query(
        "INSERT INTO console_sessions \
             (tenant_id, digest, username, grant_id, password_mark, csrf, signed_in_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(session.tenant_id)
    .bind(session.digest)
    .bind(session.username)
    .bind(session.grant_id)
    .bind(session.password_mark)
    .bind(session.csrf)
    .bind(session.signed_in_at)
    .bind(session.now);
    conn.execute(statement).await?;
    Ok(())
}

pub(super) async fn find_console(
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

pub(super) async fn insert_sign_in(
    conn: &mut impl Conn,
    session: &NewSignInSession<'_>,
) -> Result<()> {
    let statement = query(
        "INSERT INTO sign_in_sessions \
             (tenant_id, digest, sid, username, password_mark, signed_in_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(session.tenant_id)
    .bind(session.digest)
    .bind(session.sid)
    .bind(session.username)
    .bind(session.password_mark)
    .bind(session.now);
    conn.execute(statement).await?;
    Ok(())
}

pub(super) async fn find_sign_in(
    conn: &mut impl Conn,
    digest: &Digest,
) -> Result<Option<SignInSessionRecord>> {
    let statement = query(
        "SELECT id, tenant_id, sid, username, password_mark, signed_in_at, last_seen_at \
         FROM sign_in_sessions WHERE digest = $1",
    )
    .bind(digest);
    Ok(conn.fetch_optional(statement).await?)
}

pub(super) async fn touch(
    conn: &mut impl Conn,
    kind: SessionKind,
    id: i64,
    now: i64,
) -> Result<()> {
    let sql = format!("UPDATE {} SET last_seen_at = $1 WHERE id = $2", table(kind));
    conn.execute(query(sql).bind(now).bind(id)).await?;
    Ok(())
}

/// Deletes the session; false when it was already gone.
pub(super) async fn delete(conn: &mut impl Conn, kind: SessionKind, id: i64) -> Result<bool> {
    let sql = format!("DELETE FROM {} WHERE id = $1", table(kind));
    Ok(conn.execute(query(sql).bind(id)).await? == 1)
}

/// Deletes the sessions last seen at or before `idle_before`, or signed in at or before
/// `started_before`: the bounds of `domain::session::SessionLimits::state`.
pub(super) async fn delete_stale(
    conn: &mut impl Conn,
    kind: SessionKind,
    idle_before: i64,
    started_before: i64,
) -> Result<u64> {
    let sql = format!(
        "DELETE FROM {} WHERE last_seen_at <= $1 OR signed_in_at <= $2",
        table(kind)
    );
    Ok(conn
        .execute(query(sql).bind(idle_before).bind(started_before))
        .await?)
}
