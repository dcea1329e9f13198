//! Tenant administration (SPEC §8): users, roles, clients, resource rules, tokens,
//! tenants and the audit log, each change audited and effective on the next request.

use super::authenticate::{is_locked, percent_decode, BearerCaller, Presented};
use super::grant::{presented_digest, random_string};
use super::hasher::Lane;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::client;
use crate::domain::permission::{authorize, Permission, ResourceRule};
use crate::domain::principal::{qualified_name, validate_username};
use crate::domain::tenant::{Tenant, TenantDomain};
use crate::domain::token::{Event, Revocation, TokenKind};
use crate::service::credentials::MAX_SECRET_BYTES;
use crate::store::{
    AuditEvent, ClientRecord, LockTarget, NewClient, NewUser, RoleRecord, RuleRow, Selection,
    TenantSettings, TokenRecord, UserChange, UserRecord,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The role a tenant's first administrator gets, and what it holds.
pub const TENANT_ADMIN_ROLE: &str = "admin";
const TENANT_ADMIN_PERMISSION: &str = "/permission/admin";
/// Shortest password the API accepts.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// An authenticated and authorized administrator acting in their own tenant.
pub struct Admin {
    pub tenant: Arc<Tenant>,
    /// `username@tenant`: the actor of every audit entry.
    pub name: String,
    pub origin: Origin,
}

impl Admin {
    fn audit(&self, action: &str, target: &str) -> AuditEvent {
        AuditEvent {
            id: 0,
            tenant_id: self.tenant.id,
            at: now(),
            actor: self.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            client_address: self.origin.address.clone(),
        }
    }
}

// ---- request and answer shapes ----------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledRequest {
    pub enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    pub permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    pub client_id: Option<String>,
    #[serde(default)]
    pub public: bool,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// PKCE S256 at the code grant; only a confidential client may turn it off.
    #[serde(default = "pkce_by_default")]
    pub require_pkce: bool,
}

fn pkce_by_default() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub resources: Vec<RuleRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: SecretString,
}

/// Exactly one of the three (SPEC §8 `POST /tokens/revoke`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: Option<SecretString>,
    pub username: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenantRequest {
    pub domain: String,
    pub admin: NewTenantAdmin,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenantAdmin {
    pub username: String,
    pub password: SecretString,
}

#[derive(Serialize)]
pub struct UserView {
    pub username: String,
    pub roles: Vec<String>,
    pub enabled: bool,
    pub locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

#[derive(Serialize)]
pub struct RoleView {
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub require_pkce: bool,
    pub locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

/// A client as registered, with its secret: the only time the secret is shown.
#[derive(Serialize)]
pub struct RegisteredClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Serialize)]
pub struct SecretView {
    pub client_id: String,
    pub client_secret: String,
}

/// What an admin may know about a token that introspection never tells (SPEC §7).
#[derive(Serialize)]
pub struct TokenView {
    pub kind: &'static str,
    pub state: &'static str,
    pub state_reason: Option<&'static str>,
    pub state_changed_at: Option<i64>,
    pub state_changed_by: Option<String>,
    pub client_id: String,
    pub username: Option<String>,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub grant_id: String,
}

#[derive(Serialize)]
pub struct TenantView {
    pub domain: String,
    pub active: bool,
}

#[derive(Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_address: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn user_view(user: &UserRecord, now: i64) -> UserView {
    let locked = is_locked(user.locked_until, now);
    UserView {
        username: user.username.clone(),
        roles: user.roles.clone(),
        enabled: user.enabled,
        locked,
        locked_until: user.locked_until.filter(|_| locked),
    }
}

fn client_view(client: &ClientRecord, now: i64) -> ClientView {
    let locked = is_locked(client.locked_until, now);
    ClientView {
        client_id: client.client_id.clone(),
        public: client.secret_hash.is_none(),
        grant_types: client.grant_types.clone(),
        redirect_uris: client.redirect_uris.clone(),
        scopes: client.scopes.clone(),
        require_pkce: client.require_pkce,
        locked,
        locked_until: client.locked_until.filter(|_| locked),
    }
}

fn check_password(field: &str, password: &SecretString) -> Result<()> {
    let p = password.expose_secret();
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if p.len() > MAX_SECRET_BYTES {
        return Err(invalid(
            field,
            format!("must be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_permissions(field: &str, permissions: &[String]) -> Result<()> {
    for (i, p) in permissions.iter().enumerate() {
        Permission::parse(p).map_err(|e| invalid(format!("{field}[{i}]"), e.to_string()))?;
    }
    Ok(())
}

fn check_role_name(name: &str) -> Result<()> {
    let ok =
        !name.is_empty() && name.len() <= 128 && !name.chars().any(|c| c.is_control() || c == '/');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "1 to 128 characters without '/' or control characters",
        ))
    }
}

impl Gateway {
    /// Authenticates an admin API caller (Basic `USERNAME@TENANT:PASSWORD` or a user's
    /// Bearer token, of this tenant only) and authorizes the request by the tenant's
    /// resource rules.
    pub async fn authenticate_admin(
        &self,
        tenant: Arc<Tenant>,
        presented: Presented,
        method: &str,
        path: &str,
        origin: Origin,
    ) -> Result<Admin> {
        let user = match presented {
            Presented::Basic { name, secret } => {
                self.authenticate_user(&tenant, &name, &secret, &origin)
                    .await?
            }
            Presented::Bearer(token) => match self.bearer_caller(&tenant, &token).await? {
                BearerCaller::User(user) => Some(user),
                BearerCaller::Client(_) => None,
            },
            Presented::ClientPost(_) | Presented::Nothing => None,
        };
        let user = user.ok_or(Error::Unauthenticated)?;
        authorize(&user.permissions, &tenant.rules, method, path).map_err(|_| Error::Forbidden)?;
        Ok(Admin {
            name: qualified_name(&user.username, &tenant.domain),
            tenant,
            origin,
        })
    }

    /// Hashes a new secret, waiting for a permit in the admin's queue like any other
    /// hash.
    async fn hash_secret(&self, admin: &Admin, secret: &SecretString) -> Result<String> {
        let lane = Lane {
            tenant_id: admin.tenant.id,
            address: admin.origin.ip,
        };
        let permit = self.credentials.permit(lane).await.map_err(Error::from)?;
        Ok(self.credentials.hash(&permit, secret).await?)
    }

    // ---- users ------------------------------------------------------------------------

    pub async fn list_users(&self, admin: &Admin) -> Result<Vec<UserView>> {
        let now = now();
        Ok(self
            .store
            .users(admin.tenant.id)
            .await?
            .iter()
            .map(|u| user_view(u, now))
            .collect())
    }

    pub async fn get_user(&self, admin: &Admin, username: &str) -> Result<UserView> {
        let user = self
            .store
            .user(admin.tenant.id, username)
            .await?
            .ok_or(Error::NotFound("user"))?;
        Ok(user_view(&user, now()))
    }

    pub async fn create_user(&self, admin: &Admin, request: NewUserRequest) -> Result<UserView> {
        validate_username(&request.username).map_err(|e| invalid("username", e.to_string()))?;
        check_password("password", &request.password)?;
        self.check_roles_exist(admin, &request.roles).await?;
        let hash = self.hash_secret(admin, &request.password).await?;
        let user = NewUser {
            username: &request.username,
            password_hash: &hash,
            roles: &request.roles,
        };
        self.store
            .create_user(
                admin.tenant.id,
                &user,
                &admin.audit("user.create", &request.username),
            )
            .await?;
        self.get_user(admin, &request.username).await
    }

    pub async fn delete_user(&self, admin: &Admin, username: &str) -> Result<()> {
        self.change_user(admin, username, UserChange::Delete, "user.delete")
            .await
    }

    pub async fn set_password(
        &self,
        admin: &Admin,
        username: &str,
        request: PasswordRequest,
    ) -> Result<()> {
        check_password("password", &request.password)?;
        let hash = self.hash_secret(admin, &request.password).await?;
        self.change_user(
            admin,
            username,
            UserChange::Password(&hash),
            "user.password",
        )
        .await
    }

    pub async fn set_roles(
        &self,
        admin: &Admin,
        username: &str,
        request: RolesRequest,
    ) -> Result<UserView> {
        self.check_roles_exist(admin, &request.roles).await?;
        self.change_user(
            admin,
            username,
            UserChange::Roles(&request.roles),
            "user.roles",
        )
        .await?;
        self.get_user(admin, username).await
    }

    pub async fn set_enabled(
        &self,
        admin: &Admin,
        username: &str,
        request: EnabledRequest,
    ) -> Result<UserView> {
        let action = if request.enabled {
            "user.enable"
        } else {
            "user.disable"
        };
        self.change_user(
            admin,
            username,
            UserChange::Enabled(request.enabled),
            action,
        )
        .await?;
        self.get_user(admin, username).await
    }

    pub async fn unlock_user(&self, admin: &Admin, username: &str) -> Result<UserView> {
        let target = LockTarget::User {
            tenant_id: admin.tenant.id,
            username,
        };
        if !self
            .store
            .clear_failures(target, Some(&admin.audit("user.unlock", username)))
            .await?
        {
            return Err(Error::NotFound("user"));
        }
        self.directory.forget_user(admin.tenant.id, username);
        self.get_user(admin, username).await
    }

    /// One user change, its token transitions and its audit entry, then the caches.
    async fn change_user(
        &self,
        admin: &Admin,
        username: &str,
        change: UserChange<'_>,
        action: &str,
    ) -> Result<()> {
        let changed = self
            .store
            .change_user(
                admin.tenant.id,
                username,
                change,
                &admin.audit(action, username),
            )
            .await?;
        let changed = changed.ok_or(Error::NotFound("user"))?;
        self.directory.forget_user(admin.tenant.id, username);
        self.tokens.forget(&changed);
        Ok(())
    }

    async fn check_roles_exist(&self, admin: &Admin, roles: &[String]) -> Result<()> {
        let known = self.store.roles(admin.tenant.id).await?;
        for (i, role) in roles.iter().enumerate() {
            if !known.iter().any(|r| &r.name == role) {
                return Err(invalid(
                    format!("roles[{i}]"),
                    format!("no role {role:?} in this tenant"),
                ));
            }
        }
        Ok(())
    }

    // ---- roles ------------------------------------------------------------------------

    pub async fn list_roles(&self, admin: &Admin) -> Result<Vec<RoleView>> {
        let roles = self.store.roles(admin.tenant.id).await?;
        Ok(roles
            .into_iter()
            .map(|r| RoleView {
                name: r.name,
                permissions: r.permissions,
            })
            .collect())
    }

    pub async fn get_role(&self, admin: &Admin, name: &str) -> Result<RoleView> {
        let roles = self.store.roles(admin.tenant.id).await?;
        let role = roles
            .into_iter()
            .find(|r| r.name == name)
            .ok_or(Error::NotFound("role"))?;
        Ok(RoleView {
            name: role.name,
            permissions: role.permissions,
        })
    }

    pub async fn create_role(&self, admin: &Admin, request: RoleRequest) -> Result<RoleView> {
        check_role_name(&request.name)?;
        check_permissions("permissions", &request.permissions)?;
        let role = RoleRecord {
            name: request.name,
            permissions: request.permissions,
        };
        self.store
            .create_role(
                admin.tenant.id,
                &role,
                &admin.audit("role.create", &role.name),
            )
            .await?;
        Ok(RoleView {
            name: role.name,
            permissions: role.permissions,
        })
    }

    pub async fn update_role(
        &self,
        admin: &Admin,
        name: &str,
        request: PermissionsRequest,
    ) -> Result<RoleView> {
        check_permissions("permissions", &request.permissions)?;
        let role = RoleRecord {
            name: name.to_owned(),
            permissions: request.permissions,
        };
        if !self
            .store
            .update_role(admin.tenant.id, &role, &admin.audit("role.update", name))
            .await?
        {
            return Err(Error::NotFound("role"));
        }
        // Every cached user of the tenant may hold this role.
        self.directory.forget_users_of(admin.tenant.id);
        Ok(RoleView {
            name: role.name,
            permissions: role.permissions,
        })
    }

    pub async fn delete_role(&self, admin: &Admin, name: &str) -> Result<()> {
        if !self
            .store
            .delete_role(admin.tenant.id, name, &admin.audit("role.delete", name))
            .await?
        {
            return Err(Error::NotFound("role"));
        }
        self.directory.forget_users_of(admin.tenant.id);
        Ok(())
    }

    // ---- clients ----------------------------------------------------------------------

    pub async fn list_clients(&self, admin: &Admin) -> Result<Vec<ClientView>> {
        let now = now();
        Ok(self
            .store
            .clients(admin.tenant.id)
            .await?
            .iter()
            .map(|c| client_view(c, now))
            .collect())
    }

    pub async fn get_client(&self, admin: &Admin, client_id: &str) -> Result<ClientView> {
        Ok(client_view(
            &self.tenant_client(admin, client_id).await?,
            now(),
        ))
    }

    /// A client of the admin's own tenant (client ids are global: another tenant's client
    /// is "not found" here, never shown).
    async fn tenant_client(&self, admin: &Admin, client_id: &str) -> Result<ClientRecord> {
        let client = self
            .store
            .client(client_id)
            .await?
            .filter(|c| c.tenant_id == admin.tenant.id);
        client.ok_or(Error::NotFound("client"))
    }

    pub async fn create_client(
        &self,
        admin: &Admin,
        request: NewClientRequest,
    ) -> Result<RegisteredClient> {
        let client_id = request.client_id.unwrap_or_else(|| random_string(18));
        client::validate(
            &client_id,
            request.public,
            &request.grant_types,
            &request.redirect_uris,
            &request.scopes,
            request.require_pkce,
        )
        .map_err(|e| invalid(e.field, e.message))?;
        let secret = (!request.public).then(|| random_string(32));
        let hash = match &secret {
            Some(secret) => Some(
                self.hash_secret(admin, &SecretString::from(secret.clone()))
                    .await?,
            ),
            None => None,
        };
        let new = NewClient {
            client_id: &client_id,
            secret_hash: hash.as_deref(),
            grant_types: &request.grant_types,
            redirect_uris: &request.redirect_uris,
            scopes: &request.scopes,
            require_pkce: request.require_pkce,
        };
        self.store
            .create_client(
                admin.tenant.id,
                &new,
                &admin.audit("client.create", &client_id),
            )
            .await?;
        // The id may be remembered as absent from an earlier sign-in attempt.
        self.directory.forget_client(&client_id);
        let client = self.get_client(admin, &client_id).await?;
        Ok(RegisteredClient {
            client,
            client_secret: secret,
        })
    }

    pub async fn delete_client(&self, admin: &Admin, client_id: &str) -> Result<()> {
        let changed = self
            .store
            .delete_client(
                admin.tenant.id,
                client_id,
                &admin.audit("client.delete", client_id),
            )
            .await?;
        let changed = changed.ok_or(Error::NotFound("client"))?;
        self.directory.forget_client(client_id);
        self.tokens.forget(&changed);
        Ok(())
    }

    /// Issues a new secret; the old one stops working at once (its hash is gone, and
    /// with it every remembered verification).
    pub async fn rotate_secret(&self, admin: &Admin, client_id: &str) -> Result<SecretView> {
        let client = self.tenant_client(admin, client_id).await?;
        if client.secret_hash.is_none() {
            return Err(invalid("client_id", "a public client has no secret"));
        }
        let secret = random_string(32);
        let hash = self
            .hash_secret(admin, &SecretString::from(secret.clone()))
            .await?;
        if !self
            .store
            .set_client_secret(
                admin.tenant.id,
                client_id,
                &hash,
                &admin.audit("client.secret", client_id),
            )
            .await?
        {
            return Err(Error::NotFound("client"));
        }
        self.directory.forget_client(client_id);
        Ok(SecretView {
            client_id: client_id.to_owned(),
            client_secret: secret,
        })
    }

    pub async fn unlock_client(&self, admin: &Admin, client_id: &str) -> Result<ClientView> {
        self.tenant_client(admin, client_id).await?;
        let target = LockTarget::Client { client_id };
        self.store
            .clear_failures(target, Some(&admin.audit("client.unlock", client_id)))
            .await?;
        self.directory.forget_client(client_id);
        self.get_client(admin, client_id).await
    }

    // ---- resources --------------------------------------------------------------------

    pub fn get_resources(&self, admin: &Admin) -> Resources {
        let resources = admin
            .tenant
            .rules
            .iter()
            .map(|r| RuleRow {
                context: r.context.clone(),
                secured: r.secured,
                http_method: r.method.as_str().to_owned(),
                permissions: r
                    .permissions
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            })
            .collect();
        Resources { resources }
    }

    /// Replaces the tenant's rules; they apply from the next request on.
    pub async fn set_resources(&self, admin: &Admin, request: Resources) -> Result<Resources> {
        for (i, r) in request.resources.iter().enumerate() {
            ResourceRule::new(&r.context, r.secured, &r.http_method, &r.permissions)
                .map_err(|e| invalid(format!("resources[{i}]"), e.to_string()))?;
        }
        let audit = admin.audit("resources.update", admin.tenant.domain.as_str());
        self.store
            .set_resources(admin.tenant.id, Some(&request.resources), &audit)
            .await?;
        self.directory.reload_tenants(&self.store).await?;
        Ok(request)
    }

    // ---- tokens -----------------------------------------------------------------------

    /// A token's kind, state and history, for admins only. Records EXPIRED first when
    /// the lifetime has passed, so the answer is what the next introspection will see.
    pub async fn lookup_token(&self, admin: &Admin, request: TokenRequest) -> Result<TokenView> {
        let tenant = &admin.tenant;
        let digest =
            presented_digest(request.token.expose_secret()).ok_or(Error::NotFound("token"))?;
        let now = now();
        // A token past its lifetime is recorded EXPIRED here, as introspection would.
        self.live_token(tenant, &digest, now).await?;
        let record = self
            .store
            .token(tenant.id, &digest)
            .await?
            .ok_or(Error::NotFound("token"))?;
        Ok(token_view(&record, tenant))
    }

    /// Revokes one token (with its cascade), every token of a user, or every token of a
    /// client, and answers how many changed.
    pub async fn revoke_tokens(&self, admin: &Admin, request: RevokeRequest) -> Result<usize> {
        let tenant = &admin.tenant;
        let event = Event::Revoke(Revocation::ByAdmin);
        let both = |selection: Selection| {
            [TokenKind::Access, TokenKind::Refresh]
                .map(|k| (k, selection.clone(), event))
                .to_vec()
        };
        let (steps, target) = match (request.token, request.username, request.client_id) {
            (Some(token), None, None) => {
                let Some(digest) = presented_digest(token.expose_secret()) else {
                    return Ok(0);
                };
                let Some(record) = self.store.token(tenant.id, &digest).await? else {
                    return Ok(0);
                };
                (
                    revocation_steps(&record, event),
                    format!("token:{}", record.token.jti),
                )
            }
            (None, Some(username), None) => (
                both(Selection::Owner(username.clone())),
                format!("user:{username}"),
            ),
            (None, None, Some(client_id)) => (
                both(Selection::Client(client_id.clone())),
                format!("client:{client_id}"),
            ),
            _ => {
                return Err(invalid(
                    "token",
                    "give exactly one of token, username and client_id",
                ))
            }
        };
        let changed = self
            .store
            .revoke_by_admin(tenant.id, &steps, &admin.audit("tokens.revoke", &target))
            .await?;
        self.tokens.forget(&changed);
        Ok(changed.len())
    }

    // ---- tenants ----------------------------------------------------------------------

    pub async fn list_tenants(&self) -> Result<Vec<TenantView>> {
        let rows = self.store.tenants().await?;
        Ok(rows
            .into_iter()
            .map(|t| TenantView {
                domain: t.domain,
                active: t.active,
            })
            .collect())
    }

    pub async fn create_tenant(
        &self,
        admin: &Admin,
        request: NewTenantRequest,
    ) -> Result<TenantView> {
        TenantDomain::parse(&request.domain).map_err(|e| invalid("domain", e.to_string()))?;
        validate_username(&request.admin.username)
            .map_err(|e| invalid("admin.username", e.to_string()))?;
        check_password("admin.password", &request.admin.password)?;
        let hash = self.hash_secret(admin, &request.admin.password).await?;
        let settings = TenantSettings::defaults(request.domain.clone());
        let role = RoleRecord {
            name: TENANT_ADMIN_ROLE.into(),
            permissions: vec![TENANT_ADMIN_PERMISSION.into()],
        };
        let roles = [TENANT_ADMIN_ROLE.to_owned()];
        let first_admin = NewUser {
            username: &request.admin.username,
            password_hash: &hash,
            roles: &roles,
        };
        self.store
            .create_tenant(
                &settings,
                &role,
                &first_admin,
                &admin.audit("tenant.create", &request.domain),
            )
            .await?;
        self.directory.reload_tenants(&self.store).await?;
        Ok(TenantView {
            domain: request.domain,
            active: true,
        })
    }

    /// Deactivates a tenant: its endpoints answer 404 and all its tokens become
    /// INACTIVE. The super tenant cannot be deactivated.
    pub async fn delete_tenant(&self, admin: &Admin, domain: &str) -> Result<()> {
        if domain == self.super_tenant.as_str() {
            return Err(invalid("domain", "the super tenant cannot be deactivated"));
        }
        let tenant = self
            .directory
            .tenant(domain)
            .ok_or(Error::NotFound("tenant"))?;
        let changed = self
            .store
            .deactivate_tenant(tenant.id, &admin.audit("tenant.deactivate", domain))
            .await?;
        self.directory.reload_tenants(&self.store).await?;
        self.directory.forget_users_of(tenant.id);
        self.tokens.forget(&changed);
        Ok(())
    }

    // ---- audit ------------------------------------------------------------------------

    pub async fn audit_log(
        &self,
        admin: &Admin,
        limit: Option<&str>,
        before: Option<&str>,
    ) -> Result<Vec<AuditView>> {
        let limit = match limit {
            None => 100,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| invalid("limit", "a number from 1 to 1000"))?,
        };
        let before = before
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| invalid("before", "an event id"))
            })
            .transpose()?;
        let events = self
            .store
            .audit_events(admin.tenant.id, limit, before)
            .await?;
        Ok(events
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                client_address: e.client_address,
            })
            .collect())
    }
}

/// What a revocation of this token also ends (SPEC §6): an access token's refresh
/// token, or a refresh token's access tokens.
pub fn revocation_steps(record: &TokenRecord, event: Event) -> Vec<(TokenKind, Selection, Event)> {
    let this = (record.token.kind, Selection::Token(record.id), event);
    match record.token.kind {
        TokenKind::Access => match record.token.refresh_digest {
            Some(refresh) => vec![
                this,
                (TokenKind::Refresh, Selection::RefreshOf(refresh), event),
            ],
            None => vec![this],
        },
        TokenKind::Refresh => vec![
            this,
            (
                TokenKind::Access,
                Selection::IssuedWith(record.token.digest),
                event,
            ),
        ],
        TokenKind::AuthorizationCode => vec![this],
    }
}

fn token_view(record: &TokenRecord, tenant: &Tenant) -> TokenView {
    let t = &record.token;
    TokenView {
        kind: t.kind.as_str(),
        state: record.state.as_str(),
        state_reason: record.state_reason.map(|r| r.as_str()),
        state_changed_at: record.state_changed_at,
        state_changed_by: record.state_changed_by.clone(),
        client_id: t.client_id.clone(),
        username: t
            .username
            .as_deref()
            .map(|u| qualified_name(u, &tenant.domain)),
        scope: t.scope.clone(),
        iat: t.issued_at,
        exp: t.expires_at,
        grant_id: t.grant_id.clone(),
    }
}

/// A path segment as sent: percent-decoded (`alice%40mail.org`).
pub fn path_segment(raw: &str) -> Result<String> {
    percent_decode(raw).ok_or_else(|| invalid("path", "not valid percent-encoded UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fuzzing of the admin API's JSON bodies: any bytes decode or are refused, never
    // panic. PROPTEST_CASES raises the number of cases.
    proptest::proptest! {
        #[test]
        fn any_json_body_decodes_or_is_refused(body in "(\\{|\\}|\\[|\\]|:|,|\"|username|password|roles|grant_types|public|true|[0-9]{1,3}| ){0,40}") {
            let bytes = body.as_bytes();
            let _ = serde_json::from_slice::<NewUserRequest>(bytes);
            let _ = serde_json::from_slice::<NewClientRequest>(bytes);
            let _ = serde_json::from_slice::<RoleRequest>(bytes);
            let _ = serde_json::from_slice::<Resources>(bytes);
            let _ = serde_json::from_slice::<RevokeRequest>(bytes);
            let _ = serde_json::from_slice::<NewTenantRequest>(bytes);
        }
    }
}
