//! Tenants: their settings, resource rules and whether they are active.

use super::statement::{duplicate_as, query, Arg, Conn, Statement};
use crate::domain::tenant::TenantId;
use crate::store::{Result, RuleRow, Source, TenantRow, TenantSettings};

const COLUMNS: &str = "id, domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
     grant_max_lifetime, introspection_clients, resources, requests_per_caller, requests_per_tenant";

pub(super) async fn all(conn: &mut impl Conn) -> Result<Vec<TenantRow>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY id");
    Ok(conn.fetch_all(query(sql)).await?)
}

/// Creates the tenant when missing, else updates it to match `settings`. Resource rules
/// are only replaced when `settings` declares some: a file without `[[resources]]`
/// leaves rules set through the admin API alone. Returns the tenant's id.
pub(super) async fn upsert(
    conn: &mut impl Conn,
    settings: &TenantSettings,
    source: Source,
    now: i64,
) -> Result<TenantId> {
    let statement = query(
        "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                              introspection_clients, resources, source, created_at, grant_max_lifetime, \
                              requests_per_caller, requests_per_tenant) \
         VALUES ($1, TRUE, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (domain) DO UPDATE SET access_token_ttl = $2, refresh_token_ttl = $3, \
             authorization_code_ttl = $4, introspection_clients = $5, \
             resources = COALESCE($6, tenants.resources), grant_max_lifetime = $9, \
             requests_per_caller = $10, requests_per_tenant = $11 \
         RETURNING id",
    );
    let (id,): (TenantId,) = conn
        .fetch_one(bind_settings(statement, settings, source, now))
        .await?;
    Ok(id)
}

/// Creates a tenant through the API, with the default rules; a taken domain is
/// `Duplicate("domain")`.
pub(super) async fn insert(
    conn: &mut impl Conn,
    settings: &TenantSettings,
    now: i64,
) -> Result<TenantId> {
    let statement = query(
        "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                              introspection_clients, resources, source, created_at, grant_max_lifetime, \
                              requests_per_caller, requests_per_tenant) \
         VALUES ($1, TRUE, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    );
    let (id,): (TenantId,) = conn
        .fetch_one(bind_settings(statement, settings, Source::Api, now))
        .await
        .map_err(duplicate_as("domain"))?;
    Ok(id)
}

/// Binds `$1`..`$11` of both inserts.
fn bind_settings<'a>(
    statement: Statement<'a>,
    settings: &'a TenantSettings,
    source: Source,
    now: i64,
) -> Statement<'a> {
    statement
        .bind(&settings.domain)
        .bind(settings.access_token_ttl)
        .bind(settings.refresh_token_ttl)
        .bind(settings.authorization_code_ttl)
        .bind(&settings.introspection_clients[..])
        .bind(Arg::Rules(settings.resources.as_deref()))
        .bind(source.as_str())
        .bind(now)
        .bind(settings.grant_max_lifetime)
        .bind(settings.requests_per_caller)
        .bind(settings.requests_per_tenant)
}

/// Replaces a tenant's resource rules; `None` restores the defaults.
pub(super) async fn set_resources(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    rules: Option<&[RuleRow]>,
) -> Result<()> {
    let statement = query("UPDATE tenants SET resources = $1 WHERE id = $2")
        .bind(Arg::Rules(rules))
        .bind(tenant_id);
    conn.execute(statement).await?;
    Ok(())
}

pub(super) async fn deactivate(conn: &mut impl Conn, tenant_id: TenantId) -> Result<()> {
    conn.execute(query("UPDATE tenants SET active = FALSE WHERE id = $1").bind(tenant_id))
        .await?;
    Ok(())
}
