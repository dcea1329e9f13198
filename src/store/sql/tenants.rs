//! Tenants: their settings, resource rules and whether they are active.

use super::statement::{duplicate_as, query, Arg, Conn, Statement};
use crate::domain::tenant::{TenantId, TenantSettings};
use crate::store::{NamePage, NewTenant, Result, RuleRow, Source, TenantRow};

const COLUMNS: &str = "id, domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
     grant_max_lifetime, introspection_clients, resources, requests_per_caller, requests_per_tenant, \
     source, resources_source";

pub(super) async fn all(conn: &mut impl Conn) -> Result<Vec<TenantRow>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY id");
    Ok(conn.fetch_all(query(sql)).await?)
}

pub(super) async fn page(conn: &mut impl Conn, page: &NamePage) -> Result<Vec<TenantRow>> {
    let end = page.prefix_end();
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE TRUE");
    let statement = query(sql).name_page("domain", page, end.as_deref());
    Ok(conn.fetch_all(statement).await?)
}

/// Creates the tenant when missing, else updates it to match `settings` and takes it
/// over for `source`. Resource rules are only replaced when `settings` declares some: a
/// file without `[[resources]]` leaves rules set through the admin API alone, and the
/// API keeps them. Returns the tenant's id.
pub(super) async fn upsert(
    conn: &mut impl Conn,
    tenant: &NewTenant,
    source: Source,
    now: i64,
) -> Result<TenantId> {
    let statement = query(
        "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                              introspection_clients, resources, source, created_at, grant_max_lifetime, \
                              requests_per_caller, requests_per_tenant, resources_source) \
         VALUES ($1, TRUE, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (domain) DO UPDATE SET access_token_ttl = $2, refresh_token_ttl = $3, \
             authorization_code_ttl = $4, introspection_clients = $5, \
             resources = COALESCE($6, tenants.resources), source = $7, grant_max_lifetime = $9, \
             requests_per_caller = $10, requests_per_tenant = $11, resources_source = $12 \
         RETURNING id",
    );
    let (id,): (TenantId,) = conn
        .fetch_one(bind_tenant(statement, tenant, source, now))
        .await?;
    Ok(id)
}

/// Creates a tenant through the API, with the default rules; a taken domain is
/// `Duplicate("domain")`.
pub(super) async fn insert(conn: &mut impl Conn, tenant: &NewTenant, now: i64) -> Result<TenantId> {
    let statement = query(
        "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                              introspection_clients, resources, source, created_at, grant_max_lifetime, \
                              requests_per_caller, requests_per_tenant, resources_source) \
         VALUES ($1, TRUE, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    );
    let (id,): (TenantId,) = conn
        .fetch_one(bind_tenant(statement, tenant, Source::Api, now))
        .await
        .map_err(duplicate_as("domain"))?;
    Ok(id)
}

/// Binds `$1`..`$12` of both inserts. Rules are the file's when it declares them.
fn bind_tenant<'a>(
    statement: Statement<'a>,
    tenant: &'a NewTenant,
    source: Source,
    now: i64,
) -> Statement<'a> {
    let settings = &tenant.settings;
    let rules_source = match tenant.resources {
        Some(_) => source,
        None => Source::Api,
    };
    statement
        .bind(&tenant.domain)
        .bind(settings.lifetimes.access_token)
        .bind(settings.lifetimes.refresh_token)
        .bind(settings.lifetimes.authorization_code)
        .bind(&settings.introspection_clients[..])
        .bind(Arg::Rules(tenant.resources.as_deref()))
        .bind(source.as_str())
        .bind(now)
        .bind(settings.lifetimes.grant_max_lifetime)
        .bind(settings.rate_limits.requests_per_caller.map(i64::from))
        .bind(settings.rate_limits.requests_per_tenant.map(i64::from))
        .bind(rules_source.as_str())
}

/// Replaces a tenant's settings through the API.
pub(super) async fn set_settings(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    settings: &TenantSettings,
) -> Result<()> {
    let statement = query(
        "UPDATE tenants SET access_token_ttl = $1, refresh_token_ttl = $2, authorization_code_ttl = $3, \
             grant_max_lifetime = $4, introspection_clients = $5, requests_per_caller = $6, \
             requests_per_tenant = $7 \
         WHERE id = $8",
    )
    .bind(settings.lifetimes.access_token)
    .bind(settings.lifetimes.refresh_token)
    .bind(settings.lifetimes.authorization_code)
    .bind(settings.lifetimes.grant_max_lifetime)
    .bind(&settings.introspection_clients[..])
    .bind(settings.rate_limits.requests_per_caller.map(i64::from))
    .bind(settings.rate_limits.requests_per_tenant.map(i64::from))
    .bind(tenant_id);
    conn.execute(statement).await?;
    Ok(())
}

/// Replaces a tenant's resource rules through the API; `None` restores the defaults.
pub(super) async fn set_resources(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    rules: Option<&[RuleRow]>,
) -> Result<()> {
    let statement =
        query("UPDATE tenants SET resources = $1, resources_source = 'api' WHERE id = $2")
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
