//! OAuth clients. Client ids are unique across tenants (SPEC §6).

use super::statement::{duplicate_as, query, Conn, Statement};
use crate::domain::tenant::TenantId;
use crate::store::{ClientEdit, ClientRecord, Error, NamePage, NewClient, Result, Source};

const COLUMNS: &str = "id, tenant_id, client_id, secret_hash, grant_types, redirect_uris, scopes, \
     require_pkce, name, access_token_format, source, failed_attempts, locked_until";

/// A client by its id, whatever its tenant.
pub(super) async fn by_id(conn: &mut impl Conn, client_id: &str) -> Result<Option<ClientRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1");
    Ok(conn.fetch_optional(query(sql).bind(client_id)).await?)
}

pub(super) async fn page(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    page: &NamePage,
) -> Result<Vec<ClientRecord>> {
    let end = page.prefix_end();
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE tenant_id = $1");
    let statement = query(sql)
        .bind(tenant_id)
        .name_page("client_id", page, end.as_deref());
    Ok(conn.fetch_all(statement).await?)
}

/// Registers a client; an id taken in any tenant is `Duplicate("client_id")`.
pub(super) async fn insert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    client: &NewClient<'_>,
    source: Source,
    now: i64,
) -> Result<()> {
    let statement = query(
        "INSERT INTO clients (tenant_id, client_id, secret_hash, grant_types, redirect_uris, scopes, \
                              require_pkce, name, access_token_format, failed_attempts, source, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
    )
    .bind(tenant_id)
    .bind(client.client_id);
    let statement = bind_registration(statement, client)
        .bind(source.as_str())
        .bind(now);
    conn.execute(statement)
        .await
        .map_err(duplicate_as("client_id"))?;
    Ok(())
}

/// Creates a client, or brings one of the tenant in line with what `source` declares
/// and gives it to `source`: a file takes over a client of its tenant that the API
/// made or was given. A client id another tenant holds is a duplicate.
pub(super) async fn upsert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    client: &NewClient<'_>,
    source: Source,
    now: i64,
) -> Result<()> {
    let owner = query("SELECT tenant_id FROM clients WHERE client_id = $1").bind(client.client_id);
    let Some((owner_tenant,)) = conn.fetch_optional::<(TenantId,)>(owner).await? else {
        return insert(conn, tenant_id, client, source, now).await;
    };
    if owner_tenant != tenant_id {
        return Err(Error::Duplicate("client_id"));
    }
    let statement = query(
        "UPDATE clients SET secret_hash = $1, grant_types = $2, redirect_uris = $3, scopes = $4, \
             require_pkce = $5, name = $6, access_token_format = $7, source = $8 \
         WHERE client_id = $9",
    );
    let statement = bind_registration(statement, client)
        .bind(source.as_str())
        .bind(client.client_id);
    conn.execute(statement).await?;
    Ok(())
}

/// Binds what a registration declares, in this order: secret hash, grant types,
/// redirect URIs, scopes, require_pkce, name, access token format.
fn bind_registration<'a>(statement: Statement<'a>, client: &NewClient<'a>) -> Statement<'a> {
    statement
        .bind(client.secret_hash)
        .bind(client.grant_types)
        .bind(client.redirect_uris)
        .bind(client.scopes)
        .bind(client.require_pkce)
        .bind(client.name)
        .bind(client.access_token_format.as_str())
}

/// Replaces all but the id and secret of a client of the tenant; false when it has no
/// such client.
pub(super) async fn update(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    client_id: &str,
    edit: &ClientEdit<'_>,
) -> Result<bool> {
    let statement = query(
        "UPDATE clients SET grant_types = $1, redirect_uris = $2, scopes = $3, \
             require_pkce = $4, name = $5, access_token_format = $6 \
         WHERE tenant_id = $7 AND client_id = $8",
    )
    .bind(edit.grant_types)
    .bind(edit.redirect_uris)
    .bind(edit.scopes)
    .bind(edit.require_pkce)
    .bind(edit.name)
    .bind(edit.access_token_format.as_str())
    .bind(tenant_id)
    .bind(client_id);
    Ok(conn.execute(statement).await? == 1)
}

/// False when the tenant has no such client.
pub(super) async fn delete(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    client_id: &str,
) -> Result<bool> {
    let statement = query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
        .bind(tenant_id)
        .bind(client_id);
    Ok(conn.execute(statement).await? == 1)
}

/// False when the tenant has no such client.
pub(super) async fn set_secret(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    client_id: &str,
    secret_hash: &str,
) -> Result<bool> {
    let statement =
        query("UPDATE clients SET secret_hash = $1 WHERE tenant_id = $2 AND client_id = $3")
            .bind(secret_hash)
            .bind(tenant_id)
            .bind(client_id);
    Ok(conn.execute(statement).await? == 1)
}
