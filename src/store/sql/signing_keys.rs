//! Tenants' signing keys: the one that signs, and the retired ones still published.

use super::statement::{query, Arg, Conn};
use crate::domain::tenant::TenantId;
use crate::store::{NewSigningKey, Result, SigningKeyRow};

const COLUMNS: &str = "k.tenant_id, t.domain, k.kid, k.public_key, k.sealed_private_key, \
                       k.created_at, k.retired_at";

/// The tenant's keys that sign or were retired after `retired_after`, newest first.
pub(super) async fn published(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    retired_after: i64,
) -> Result<Vec<SigningKeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id \
         WHERE k.tenant_id = $1 AND (k.retired_at IS NULL OR k.retired_at > $2) \
         ORDER BY k.created_at DESC, k.id DESC"
    );
    Ok(conn
        .fetch_all(query(sql).bind(tenant_id).bind(retired_after))
        .await?)
}

/// Every tenant's signing key.
pub(super) async fn active(conn: &mut impl Conn) -> Result<Vec<SigningKeyRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id \
         WHERE k.retired_at IS NULL ORDER BY k.tenant_id"
    );
    Ok(conn.fetch_all(query(sql)).await?)
}

/// Stores `key` as the tenant's signing key, unless it has one already (then false).
pub(super) async fn insert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    key: &NewSigningKey,
) -> Result<bool> {
    let statement = query(
        "INSERT INTO signing_keys (tenant_id, kid, public_key, sealed_private_key, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&key.kid)
    .bind(Arg::Bytes(Some(&key.public_key)))
    .bind(Arg::Bytes(Some(&key.sealed_private_key)))
    .bind(key.created_at);
    Ok(conn.execute(statement).await? == 1)
}

/// Retires the tenant's signing key at `now`, and deletes keys retired before
/// `unpublished_before`, which no JWKS shows any more, and every retired key past the
/// `keep` most recent.
pub(super) async fn retire(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    now: i64,
    unpublished_before: i64,
    keep: usize,
) -> Result<()> {
    let retire = query(
        "UPDATE signing_keys SET retired_at = $1 WHERE tenant_id = $2 AND retired_at IS NULL",
    )
    .bind(now)
    .bind(tenant_id);
    conn.execute(retire).await?;
    let forget = query("DELETE FROM signing_keys WHERE tenant_id = $1 AND retired_at <= $2")
        .bind(tenant_id)
        .bind(unpublished_before);
    conn.execute(forget).await?;
    let oldest = query(
        "DELETE FROM signing_keys WHERE tenant_id = $1 AND retired_at IS NOT NULL \
         AND id NOT IN (SELECT id FROM signing_keys WHERE tenant_id = $1 \
         AND retired_at IS NOT NULL ORDER BY retired_at DESC, id DESC LIMIT $2)",
    )
    .bind(tenant_id)
    .bind(i64::try_from(keep).unwrap_or(i64::MAX));
    conn.execute(oldest).await?;
    Ok(())
}
