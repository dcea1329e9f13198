//! The audit log.

use super::statement::{query, Conn};
use crate::domain::tenant::TenantId;
use crate::store::{AuditEvent, AuditQuery, Result};

pub(super) async fn insert(conn: &mut impl Conn, event: &AuditEvent) -> Result<()> {
    let statement = query(
        "INSERT INTO audit_events (tenant_id, at, actor, action, target, client_address, detail, via) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event.tenant_id)
    .bind(event.at)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(&event.client_address)
    .bind(event.detail.as_deref())
    .bind(event.via.as_deref());
    conn.execute(statement).await?;
    Ok(())
}

/// A page of the tenant's events, newest first by `(at, id)`: each filter given
/// narrows it, and each has an index that yields its events in that order.
pub(super) async fn page(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    page: &AuditQuery,
) -> Result<Vec<AuditEvent>> {
    let mut statement = query(
        "SELECT id, tenant_id, at, actor, action, target, client_address, detail, via FROM audit_events \
         WHERE tenant_id = $1",
    )
    .bind(tenant_id);
    if let Some((at, id)) = page.after {
        // `(at, id) < (a, i)`: a range of the time in each index, and a filter on the
        // one second the cursor's event shares with others.
        statement = statement
            .push(" AND at <= $?", at)
            .push(" AND (at < $?", at)
            .push(" OR id < $?)", id);
    }
    if let Some(before) = page.before {
        // Bounded by the event's time too, so that the time index finds the page; an
        // event purged since bounds by its id alone.
        statement = statement.push(" AND id < $?", before).push(
            " AND at <= COALESCE((SELECT b.at FROM audit_events b WHERE b.id = $?), \
             9223372036854775807)",
            before,
        );
    }
    for (column, value) in [
        ("action", &page.action),
        ("actor", &page.actor),
        ("target", &page.target),
    ] {
        if let Some(value) = value {
            statement = statement.push(&format!(" AND {column} = $?"), value.as_str());
        }
    }
    if let Some(since) = page.since {
        statement = statement.push(" AND at >= $?", since);
    }
    if let Some(until) = page.until {
        statement = statement.push(" AND at <= $?", until);
    }
    let statement = statement.push(" ORDER BY at DESC, id DESC LIMIT $?", page.limit);
    Ok(conn.fetch_all(statement).await?)
}

/// The entries naming a token of the grant (`token:{jti}`), and those written in the
/// same transaction as a change of one of its tokens' state: the same actor at the
/// same second, found through the time index.
pub(super) async fn of_grant(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    grant_id: &str,
) -> Result<Vec<AuditEvent>> {
    let statement = query(
        "SELECT a.id, a.tenant_id, a.at, a.actor, a.action, a.target, a.client_address, a.detail, a.via \
         FROM audit_events a \
         WHERE a.tenant_id = $1 AND a.id IN ( \
             SELECT e.id FROM tokens t JOIN audit_events e \
               ON e.tenant_id = t.tenant_id AND e.target = 'token:' || t.jti \
             WHERE t.tenant_id = $1 AND t.grant_id = $2 \
             UNION \
             SELECT e.id FROM tokens t JOIN audit_events e \
               ON e.tenant_id = t.tenant_id AND e.at = t.state_changed_at \
              AND e.actor = t.state_changed_by \
             WHERE t.tenant_id = $1 AND t.grant_id = $2) \
         ORDER BY a.id",
    )
    .bind(tenant_id)
    .bind(grant_id);
    Ok(conn.fetch_all(statement).await?)
}

/// Deletes at most `batch` events from before `before`, oldest first.
pub(super) async fn purge(conn: &mut impl Conn, before: i64, batch: i64) -> Result<u64> {
    let statement = query(
        "DELETE FROM audit_events WHERE id IN ( \
             SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)",
    )
    .bind(before)
    .bind(batch);
    Ok(conn.execute(statement).await?)
}
