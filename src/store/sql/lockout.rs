//! Sign-in failure counters and locks, of users and of clients.

use super::statement::{query, Conn, Statement};
use crate::domain::tenant::TenantId;
use crate::store::{LockTarget, Result};

/// The table and `WHERE` clause of a lock target, its parameters numbered from `first`.
fn filter(target: LockTarget<'_>, first: usize) -> (&'static str, String) {
    match target {
        LockTarget::User { .. } => (
            "users",
            format!("tenant_id = ${first} AND username = ${}", first + 1),
        ),
        LockTarget::Client { .. } => ("clients", format!("client_id = ${first}")),
    }
}

fn bind_target<'a>(statement: Statement<'a>, target: LockTarget<'a>) -> Statement<'a> {
    match target {
        LockTarget::User {
            tenant_id,
            username,
        } => statement.bind(tenant_id).bind(username),
        LockTarget::Client { client_id } => statement.bind(client_id),
    }
}

/// Counts one failed sign-in. The count reaching `threshold` locks the principal until
/// `locked_until` and starts the count again. Returns the lock's end when this failure
/// locked it.
pub(super) async fn count_failure(
    conn: &mut impl Conn,
    target: LockTarget<'_>,
    threshold: i64,
    locked_until: i64,
) -> Result<Option<i64>> {
    let (table, filter) = filter(target, 3);
    let sql = format!(
        "UPDATE {table} SET \
             locked_until = CASE WHEN failed_attempts + 1 >= $1 THEN $2 ELSE locked_until END, \
             failed_attempts = CASE WHEN failed_attempts + 1 >= $1 THEN 0 ELSE failed_attempts + 1 END \
         WHERE {filter} RETURNING failed_attempts, locked_until"
    );
    let statement = bind_target(query(sql).bind(threshold).bind(locked_until), target);
    let row: Option<(i64, Option<i64>)> = conn.fetch_optional(statement).await?;
    Ok(match row {
        Some((0, Some(until))) if until == locked_until => Some(until),
        Some(_) | None => None,
    })
}

/// Resets the count and lifts any lock (an admin's unlock); false when the principal
/// is gone.
pub(super) async fn clear(conn: &mut impl Conn, target: LockTarget<'_>) -> Result<bool> {
    let (table, filter) = filter(target, 1);
    let sql = format!("UPDATE {table} SET failed_attempts = 0, locked_until = NULL WHERE {filter}");
    Ok(conn.execute(bind_target(query(sql), target)).await? == 1)
}

/// Resets the count after a successful sign-in, unless a lock is in force: a lock set
/// by a concurrent failure is never lifted by a success. False when the principal is
/// locked (or gone).
pub(super) async fn reset_unless_locked(
    conn: &mut impl Conn,
    target: LockTarget<'_>,
    now: i64,
) -> Result<bool> {
    let (table, filter) = filter(target, 2);
    let sql = format!(
        "UPDATE {table} SET failed_attempts = 0 \
         WHERE {filter} AND (locked_until IS NULL OR locked_until <= $1)"
    );
    Ok(conn
        .execute(bind_target(query(sql).bind(now), target))
        .await?
        == 1)
}

/// Users and clients locked at `now`, counted by tenant.
pub(super) async fn locked_by_tenant(
    conn: &mut impl Conn,
    now: i64,
) -> Result<Vec<(TenantId, i64)>> {
    let statement = query(
        "SELECT tenant_id, COUNT(*) FROM ( \
             SELECT tenant_id FROM users WHERE locked_until > $1 \
             UNION ALL SELECT tenant_id FROM clients WHERE locked_until > $1) locked \
         GROUP BY tenant_id ORDER BY tenant_id",
    )
    .bind(now);
    Ok(conn.fetch_all(statement).await?)
}
