//! Roles: named lists of permission paths.

use super::statement::{duplicate_as, query, Conn};
use crate::domain::tenant::TenantId;
use crate::store::{NamePage, Result, RoleRecord};

pub(super) async fn all(conn: &mut impl Conn, tenant_id: TenantId) -> Result<Vec<RoleRecord>> {
    let statement =
        query("SELECT name, permissions, source FROM roles WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant_id);
    Ok(conn.fetch_all(statement).await?)
}

pub(super) async fn page(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    page: &NamePage,
) -> Result<Vec<RoleRecord>> {
    let end = page.prefix_end();
    let statement = query("SELECT name, permissions, source FROM roles WHERE tenant_id = $1")
        .bind(tenant_id)
        .name_page("name", page, end.as_deref());
    Ok(conn.fetch_all(statement).await?)
}

/// Creates a role; a taken name is `Duplicate("name")`.
pub(super) async fn insert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    role: &RoleRecord,
) -> Result<()> {
    let statement =
        query("INSERT INTO roles (tenant_id, name, permissions, source) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(&role.name)
            .bind(&role.permissions[..])
            .bind(role.source.as_str());
    conn.execute(statement)
        .await
        .map_err(duplicate_as("name"))?;
    Ok(())
}

/// Creates a role or replaces its permission list; a file that declares a role the API
/// made takes it over.
pub(super) async fn upsert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    role: &RoleRecord,
) -> Result<()> {
    let statement = query(
        "INSERT INTO roles (tenant_id, name, permissions, source) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = $3, source = $4",
    )
    .bind(tenant_id)
    .bind(&role.name)
    .bind(&role.permissions[..])
    .bind(role.source.as_str());
    conn.execute(statement).await?;
    Ok(())
}

/// Replaces an existing role's permissions; false when there is no such role.
pub(super) async fn update(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    role: &RoleRecord,
) -> Result<bool> {
    let statement = query("UPDATE roles SET permissions = $1 WHERE tenant_id = $2 AND name = $3")
        .bind(&role.permissions[..])
        .bind(tenant_id)
        .bind(&role.name);
    Ok(conn.execute(statement).await? == 1)
}

/// Deletes a role and takes it from every user who had it; false when there is none.
pub(super) async fn delete(conn: &mut impl Conn, tenant_id: TenantId, name: &str) -> Result<bool> {
    let holders = query("DELETE FROM user_roles WHERE tenant_id = $1 AND role = $2")
        .bind(tenant_id)
        .bind(name);
    conn.execute(holders).await?;
    let role = query("DELETE FROM roles WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(name);
    Ok(conn.execute(role).await? == 1)
}
