//! Start-up: reconcile tenant files into the database and make sure the super tenant
//! has an administrator (SPEC §2, §3).

use super::credentials::hash_blocking;
use super::token_text::random_string;
use super::{now, StartupError};
use crate::config::Config;
use crate::domain::client;
use crate::domain::principal::Profile;
use crate::store::{Committed, Declared, NewClient, NewTenant, NewUser, RoleRecord, Source, Store};
use crate::tenant_file::{self, TenantFile};

/// The role every bootstrap administrator holds: everything.
const ADMIN_ROLE: &str = "admin";
const ADMIN_USER: &str = "admin";

/// Where the first administrator's password came from.
#[allow(missing_debug_implementations, reason = "holds a generated password")]
pub enum AdminPassword {
    /// The super tenant already had users.
    Existing,
    FromEnvironment,
    /// Generated; shown once on standard error by the caller.
    Generated(String),
}

/// Reads every tenant file (failing, before any write, on the first bad one), writes
/// what they declare, hands to the admin API what they no longer declare, and creates the super tenant and its admin when missing. The
/// result is settled by the gateway built afterwards, whose caches then hear of it.
pub async fn reconcile(
    config: &Config,
    store: &dyn Store,
    admin_password: Option<String>,
) -> Result<Committed<AdminPassword>, StartupError> {
    let files = tenant_file::load_dir(&config.tenants.dir)
        .map_err(|e| StartupError::TenantFiles(e.to_string()))?;
    let now = now();
    let mut written = Committed::default();
    if !files.iter().any(|f| f.domain == config.server.super_tenant) {
        let settings = NewTenant::defaults(config.server.super_tenant.clone());
        ensure_tenant(store, &settings, now, &mut written).await?;
    }
    for file in &files {
        let is_super = file.domain == config.server.super_tenant;
        apply_file(store, file, is_super, now, &mut written).await?;
    }
    let tenants = store.tenants().await?;
    for tenant in &tenants {
        let file = files.iter().find(|f| f.domain == tenant.domain);
        let declared = file.map(declared_by);
        written.absorb(
            store
                .release_undeclared(tenant.id, declared.as_ref())
                .await?,
        );
    }
    let super_id = tenants
        .iter()
        .find(|t| t.domain == config.server.super_tenant)
        .map(|t| t.id)
        .ok_or_else(|| StartupError::Config("the super tenant is missing".into()))?;
    if store.user_count(super_id).await? > 0 {
        return Ok(written.map(|()| AdminPassword::Existing));
    }
    let (password, outcome) = match admin_password.filter(|p| !p.is_empty()) {
        Some(p) => (p, AdminPassword::FromEnvironment),
        None => {
            let p = random_string(18);
            (p.clone(), AdminPassword::Generated(p))
        }
    };
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| StartupError::Hash(e.to_string()))?
        .map_err(|e| StartupError::Hash(e.to_string()))?;
    let role = RoleRecord {
        name: ADMIN_ROLE.to_owned(),
        permissions: vec!["/permission".to_owned()],
        source: Source::Bootstrap,
    };
    written.absorb(store.upsert_role(super_id, &role).await?);
    let roles = [ADMIN_ROLE.to_owned()];
    let admin = NewUser {
        username: ADMIN_USER,
        password_hash: &hash,
        roles: &roles,
        profile: &Profile::default(),
    };
    written.absorb(
        store
            .upsert_user(super_id, &admin, Source::Bootstrap, now)
            .await?,
    );
    Ok(written.map(|()| outcome))
}

async fn ensure_tenant(
    store: &dyn Store,
    settings: &NewTenant,
    now: i64,
    written: &mut Committed<()>,
) -> Result<(), StartupError> {
    let exists = store
        .tenants()
        .await?
        .iter()
        .any(|t| t.domain == settings.domain);
    if !exists {
        written.absorb(
            store
                .upsert_tenant(settings, Source::Bootstrap, now)
                .await?,
        );
    }
    Ok(())
}

/// The names a file declares, the `admin` role it may imply included.
fn declared_by(file: &TenantFile) -> Declared {
    let mut roles: Vec<String> = file.roles.iter().map(|r| r.name.clone()).collect();
    if implies_admin_role(file) {
        roles.push(ADMIN_ROLE.to_owned());
    }
    Declared {
        users: file.users.iter().map(|u| u.username.clone()).collect(),
        roles,
        clients: file.clients.iter().map(|c| c.client_id.clone()).collect(),
    }
}

/// A file user may name `admin` without declaring it: it then means what the bootstrap
/// role means, everything in this tenant (and tenant management in the super tenant).
fn implies_admin_role(file: &TenantFile) -> bool {
    file.users
        .iter()
        .any(|u| u.roles.iter().any(|r| r == ADMIN_ROLE))
        && !file.roles.iter().any(|r| r.name == ADMIN_ROLE)
}

/// Creates or updates what one file declares; leaves everything else alone.
async fn apply_file(
    store: &dyn Store,
    file: &TenantFile,
    is_super: bool,
    now: i64,
    written: &mut Committed<()>,
) -> Result<(), StartupError> {
    let tenant_id = written.absorb(
        store
            .upsert_tenant(&file.tenant(), Source::File, now)
            .await?,
    );
    for role in &file.roles {
        let role = RoleRecord {
            name: role.name.clone(),
            permissions: role.permissions.clone(),
            source: Source::File,
        };
        written.absorb(store.upsert_role(tenant_id, &role).await?);
    }
    if implies_admin_role(file) {
        let everything = if is_super {
            "/permission"
        } else {
            "/permission/admin"
        };
        let role = RoleRecord {
            name: ADMIN_ROLE.to_owned(),
            permissions: vec![everything.to_owned()],
            source: Source::File,
        };
        written.absorb(store.upsert_role(tenant_id, &role).await?);
    }
    for user in &file.users {
        let profile = user.profile();
        let new = NewUser {
            username: &user.username,
            password_hash: &user.password_hash,
            roles: &user.roles,
            profile: &profile,
        };
        written.absorb(
            store
                .upsert_user(tenant_id, &new, Source::File, now)
                .await?,
        );
    }
    for client in &file.clients {
        // Checked when the file was read; a failure here is a file changed since.
        let public = client.client_secret_hash.is_none();
        let grant_types = client::parse_grant_types(&client.grant_types, public)
            .map_err(|e| StartupError::TenantFiles(format!("{}: {}", file.domain, e.message)))?;
        let new = NewClient {
            client_id: &client.client_id,
            secret_hash: client.client_secret_hash.as_deref(),
            grant_types: &grant_types,
            redirect_uris: &client.redirect_uris,
            scopes: &client.scopes,
            require_pkce: client.require_pkce,
            name: client.name.as_deref(),
            access_token_format: client.access_token_format,
        };
        let upserted = store.upsert_client(tenant_id, &new, Source::File, now).await.map_err(|e| match e {
            crate::store::Error::Duplicate(_) => StartupError::TenantFiles(format!(
                "{}: clients.client_id {:?} already belongs to another tenant or was created through the API",
                file.domain, client.client_id
            )),
            other => StartupError::Store(other),
        })?;
        written.absorb(upserted);
    }
    Ok(())
}
