//! Start-up: reconcile tenant files into the database and make sure the super tenant
//! has an administrator (SPEC §2, §3).

use super::credentials::hash_blocking;
use super::{now, Error, Result};
use crate::config::Config;
use crate::store::{NewClient, NewUser, Source, Store, TenantSettings};
use crate::tenant_file::{self, TenantFile};
use base64::Engine;
use rand::RngCore;

/// The role every bootstrap administrator holds: everything.
pub const ADMIN_ROLE: &str = "admin";
pub const ADMIN_USER: &str = "admin";

/// Where the first administrator's password came from.
pub enum AdminPassword {
    /// The super tenant already had users.
    Existing,
    FromEnvironment,
    /// Generated; shown once on standard error by the caller.
    Generated(String),
}

/// Reads every tenant file (failing, before any write, on the first bad one), writes
/// what they declare, and creates the super tenant and its admin when missing.
pub async fn reconcile(
    config: &Config,
    store: &Store,
    admin_password: Option<String>,
) -> Result<AdminPassword> {
    let files = tenant_file::load_dir(&config.tenants.dir)
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let now = now();
    if !files.iter().any(|f| f.domain == config.server.super_tenant) {
        let settings = TenantSettings::defaults(config.server.super_tenant.clone());
        ensure_tenant(store, &settings, now).await?;
    }
    for file in &files {
        apply_file(store, file, file.domain == config.server.super_tenant, now).await?;
    }
    let super_id = store
        .tenants()
        .await?
        .into_iter()
        .find(|t| t.domain == config.server.super_tenant)
        .map(|t| t.id)
        .ok_or_else(|| Error::InvalidRequest("the super tenant is missing".into()))?;
    if store.user_count(super_id).await? > 0 {
        return Ok(AdminPassword::Existing);
    }
    let (password, outcome) = match admin_password.filter(|p| !p.is_empty()) {
        Some(p) => (p, AdminPassword::FromEnvironment),
        None => {
            let mut bytes = [0u8; 18];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            (p.clone(), AdminPassword::Generated(p))
        }
    };
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| Error::InvalidRequest(e.to_string()))??;
    store
        .upsert_role(
            super_id,
            ADMIN_ROLE,
            &["/permission".to_owned()],
            Source::Bootstrap,
        )
        .await?;
    let roles = [ADMIN_ROLE.to_owned()];
    let admin = NewUser {
        username: ADMIN_USER,
        password_hash: &hash,
        roles: &roles,
    };
    store
        .upsert_user(super_id, &admin, Source::Bootstrap, now)
        .await?;
    Ok(outcome)
}

async fn ensure_tenant(store: &Store, settings: &TenantSettings, now: i64) -> Result<i64> {
    let existing = store
        .tenants()
        .await?
        .into_iter()
        .find(|t| t.domain == settings.domain);
    match existing {
        Some(t) => Ok(t.id),
        None => Ok(store
            .upsert_tenant(settings, Source::Bootstrap, now)
            .await?),
    }
}

/// Creates or updates what one file declares; leaves everything else alone.
async fn apply_file(store: &Store, file: &TenantFile, is_super: bool, now: i64) -> Result<()> {
    let tenant_id = store
        .upsert_tenant(&file.settings(), Source::File, now)
        .await?;
    for role in &file.roles {
        store
            .upsert_role(tenant_id, &role.name, &role.permissions, Source::File)
            .await?;
    }
    // A file user may name `admin` without declaring it: it then means what the
    // bootstrap role means, everything in this tenant (and tenant management in the
    // super tenant).
    if file
        .users
        .iter()
        .any(|u| u.roles.iter().any(|r| r == ADMIN_ROLE))
        && !file.roles.iter().any(|r| r.name == ADMIN_ROLE)
    {
        let everything = if is_super {
            "/permission"
        } else {
            "/permission/admin"
        };
        store
            .upsert_role(
                tenant_id,
                ADMIN_ROLE,
                &[everything.to_owned()],
                Source::File,
            )
            .await?;
    }
    for user in &file.users {
        let new = NewUser {
            username: &user.username,
            password_hash: &user.password_hash,
            roles: &user.roles,
        };
        store
            .upsert_user(tenant_id, &new, Source::File, now)
            .await?;
    }
    for client in &file.clients {
        let new = NewClient {
            client_id: &client.client_id,
            secret_hash: client.client_secret_hash.as_deref(),
            grant_types: &client.grant_types,
            redirect_uris: &client.redirect_uris,
            scopes: &client.scopes,
            require_pkce: client.require_pkce,
        };
        store.upsert_client(tenant_id, &new, Source::File, now).await.map_err(|e| match e {
            crate::store::Error::Duplicate(_) => Error::InvalidRequest(format!(
                "{}: clients.client_id {:?} already belongs to another tenant or was created through the API",
                file.domain, client.client_id
            )),
            other => Error::Store(other),
        })?;
    }
    Ok(())
}
