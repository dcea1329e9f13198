//! Who owns what: objects a tenant file stopped declaring go to the admin API, so that
//! no object stays marked `file` with no file to change it in.

use super::statement::{query, Conn};
use crate::domain::tenant::TenantId;
use crate::store::{Changes, Declared, Result, Source};

pub(super) async fn release_undeclared(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    declared: Option<&Declared>,
) -> Result<Changes> {
    let nothing = Declared::default();
    let names = declared.unwrap_or(&nothing);
    let mut changes = Changes::default();
    if !release(conn, tenant_id, "users", "username", &names.users)
        .await?
        .is_empty()
    {
        changes.merge(Changes::users_of(tenant_id));
    }
    // Roles are read from the table each time; no cache holds their owner.
    release(conn, tenant_id, "roles", "name", &names.roles).await?;
    for client_id in release(conn, tenant_id, "clients", "client_id", &names.clients).await? {
        changes.merge(Changes::client(&client_id));
    }
    if declared.is_none() {
        let release = query(
            "UPDATE tenants SET source = $1, resources_source = $1 \
             WHERE id = $2 AND (source = $3 OR resources_source = $3)",
        )
        .bind(Source::Api.as_str())
        .bind(tenant_id)
        .bind(Source::File.as_str());
        if conn.execute(release).await? > 0 {
            changes.merge(Changes::tenant(tenant_id));
        }
    }
    Ok(changes)
}

/// Marks `api` the rows of `table` in the tenant that are marked `file` and whose
/// `column` is not in `kept`; returns their names.
async fn release(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    table: &str,
    column: &str,
    kept: &[String],
) -> Result<Vec<String>> {
    let marked = query(format!(
        "SELECT {column} FROM {table} WHERE tenant_id = $1 AND source = $2"
    ))
    .bind(tenant_id)
    .bind(Source::File.as_str());
    let marked: Vec<(String,)> = conn.fetch_all(marked).await?;
    let mut released = Vec::new();
    for (name,) in marked.into_iter().filter(|(n,)| !kept.contains(n)) {
        let statement = query(format!(
            "UPDATE {table} SET source = $1 WHERE tenant_id = $2 AND {column} = $3"
        ))
        .bind(Source::Api.as_str())
        .bind(tenant_id)
        .bind(&name);
        conn.execute(statement).await?;
        released.push(name);
    }
    Ok(released)
}
