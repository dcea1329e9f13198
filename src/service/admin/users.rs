//! Users of a tenant: create, list, change, delete, unlock (SPEC §8).

use super::page::{List, ListRequest, Page};
use super::{check_password, invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::principal::validate_username;
use crate::service::authenticate::is_locked;
use crate::service::{now, Error, Gateway, Result};
use crate::store::{LockTarget, NewUser, UserChange, UserFilter, UserRecord};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub password: SecretString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledRequest {
    pub enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub username: String,
    pub roles: Vec<String>,
    pub enabled: bool,
    pub locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
    /// Who owns its password and roles: `file` (a tenant file; change it there) or
    /// `api`. Enabling, disabling and unlocking are the API's for every user.
    pub managed_by: ManagedBy,
}

fn user_view(user: &UserRecord, now: i64) -> UserView {
    let locked = is_locked(user.locked_until, now);
    UserView {
        username: user.username.clone(),
        roles: user.roles.clone(),
        enabled: user.enabled,
        locked,
        locked_until: user.locked_until.filter(|_| locked),
        managed_by: user.source.managed_by(),
    }
}

impl Gateway {
    /// A page of the tenant's users by username, of those `enabled` and `locked` say.
    pub async fn list_users(
        &self,
        admin: &Admin,
        request: &ListRequest,
        enabled: Option<bool>,
        locked: Option<bool>,
    ) -> Result<Page<UserView>> {
        let tenant_id = admin.tenant.id;
        let page = self.name_page(List::Users, tenant_id, request)?;
        let now = now();
        let filter = UserFilter {
            enabled,
            locked,
            now,
        };
        let rows = self.store.users_page(tenant_id, &page, filter).await?;
        let page = self.page(List::Users, tenant_id, rows, page.limit, |u| {
            u.username.clone()
        });
        Ok(page.map(|u| user_view(&u, now)))
    }

    pub async fn get_user(&self, admin: &Admin, username: &str) -> Result<UserView> {
        let user = self.tenant_user(admin, username).await?;
        Ok(user_view(&user, now()))
    }

    async fn tenant_user(&self, admin: &Admin, username: &str) -> Result<UserRecord> {
        let user = self.store.user(admin.tenant.id, username).await?;
        user.ok_or(Error::NotFound("user"))
    }

    /// Refuses a change to what a tenant file sets for a user: its password, its roles,
    /// that it exists.
    async fn check_user_api_managed(&self, admin: &Admin, username: &str) -> Result<()> {
        let user = self.tenant_user(admin, username).await?;
        let what = format!("user {username:?}");
        self.check_api_managed(admin, user.source.managed_by(), what)
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
        let write = self
            .store
            .create_user(
                admin.tenant.id,
                &user,
                &admin.audit(AuditAction::UserCreate, &request.username),
            )
            .await?;
        self.settle(write).await?;
        self.get_user(admin, &request.username).await
    }

    pub async fn delete_user(&self, admin: &Admin, username: &str) -> Result<()> {
        self.check_user_api_managed(admin, username).await?;
        self.change_user(admin, username, UserChange::Delete, AuditAction::UserDelete)
            .await
    }

    pub async fn set_password(
        &self,
        admin: &Admin,
        username: &str,
        request: PasswordRequest,
    ) -> Result<()> {
        check_password("password", &request.password)?;
        self.check_user_api_managed(admin, username).await?;
        let hash = self.hash_secret(admin, &request.password).await?;
        self.change_user(
            admin,
            username,
            UserChange::Password(&hash),
            AuditAction::UserPassword,
        )
        .await
    }

    pub async fn set_roles(
        &self,
        admin: &Admin,
        username: &str,
        request: RolesRequest,
    ) -> Result<UserView> {
        self.check_user_api_managed(admin, username).await?;
        self.check_roles_exist(admin, &request.roles).await?;
        self.change_user(
            admin,
            username,
            UserChange::Roles(&request.roles),
            AuditAction::UserRoles,
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
            AuditAction::UserEnable
        } else {
            AuditAction::UserDisable
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
        let write = self
            .store
            .clear_failures(target, &admin.audit(AuditAction::UserUnlock, username))
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("user"))?;
        self.get_user(admin, username).await
    }

    /// One user change, its token transitions and its audit entry, then the caches.
    async fn change_user(
        &self,
        admin: &Admin,
        username: &str,
        change: UserChange<'_>,
        action: AuditAction,
    ) -> Result<()> {
        let write = self
            .store
            .change_user(
                admin.tenant.id,
                username,
                change,
                &admin.audit(action, username),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("user"))
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
}
