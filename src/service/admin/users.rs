//! Users of a tenant: create, list, change, delete, unlock (SPEC §8).

use super::page::{List, ListRequest, Page};
use super::{check_password, invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::principal::{validate_username, Profile, ShownProfile};
use crate::service::authenticate::is_locked;
use crate::service::{now, Error, Gateway, Result};
use crate::store::{
    AuditEvent, BulkUserChange, LockTarget, NewUser, UserChange, UserFilter, UserRecord,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: SecretString,
    #[serde(default)]
    pub roles: Vec<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
}

impl NewUserRequest {
    fn profile(&self) -> Profile {
        Profile {
            name: self.name.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
        }
    }
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

/// The most users one bulk action may name.
const MAX_BULK_USERS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    pub usernames: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    Disable,
    Enable,
    Unlock,
    Delete,
}

/// What a bulk action did to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkOutcome {
    Disabled,
    Enabled,
    Unlocked,
    Deleted,
    NotFound,
    /// A tenant file declares the user: deleting it is the file's to do.
    ManagedByFile,
}

impl BulkOutcome {
    /// The outcome in words, as a page shows it.
    pub fn words(self) -> &'static str {
        match self {
            BulkOutcome::Disabled => "disabled",
            BulkOutcome::Enabled => "enabled",
            BulkOutcome::Unlocked => "unlocked",
            BulkOutcome::Deleted => "deleted",
            BulkOutcome::NotFound => "not found",
            BulkOutcome::ManagedByFile => "not deleted: its tenant file declares it",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BulkResult {
    pub username: String,
    pub outcome: BulkOutcome,
}

impl BulkAction {
    fn change(self) -> (BulkUserChange, AuditAction, BulkOutcome) {
        match self {
            BulkAction::Disable => (
                BulkUserChange::Disable,
                AuditAction::UserDisable,
                BulkOutcome::Disabled,
            ),
            BulkAction::Enable => (
                BulkUserChange::Enable,
                AuditAction::UserEnable,
                BulkOutcome::Enabled,
            ),
            BulkAction::Unlock => (
                BulkUserChange::Unlock,
                AuditAction::UserUnlock,
                BulkOutcome::Unlocked,
            ),
            BulkAction::Delete => (
                BulkUserChange::Delete,
                AuditAction::UserDelete,
                BulkOutcome::Deleted,
            ),
        }
    }

    /// Whether the action changes what a tenant file sets for a user.
    fn sets_what_files_set(self) -> bool {
        match self {
            BulkAction::Delete => true,
            BulkAction::Disable | BulkAction::Enable | BulkAction::Unlock => false,
        }
    }
}

/// A bulk list names each user once, at most [`MAX_BULK_USERS`] of them.
fn check_bulk_names(usernames: &[String]) -> Result<()> {
    if usernames.is_empty() || usernames.len() > MAX_BULK_USERS {
        return Err(invalid(
            "usernames",
            format!("1 to {MAX_BULK_USERS} usernames, not {}", usernames.len()),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(usernames.len());
    for (i, name) in usernames.iter().enumerate() {
        validate_username(name).map_err(|e| invalid(format!("usernames[{i}]"), e.to_string()))?;
        if !seen.insert(name.as_str()) {
            return Err(invalid(
                format!("usernames[{i}]"),
                format!("{name:?} is named twice"),
            ));
        }
    }
    Ok(())
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
    #[serde(flatten)]
    pub profile: ShownProfile,
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
        profile: ShownProfile::of(&user.profile, true, true),
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
        let profile = request.profile();
        profile.check().map_err(|e| invalid(e.field, e.message))?;
        self.check_roles_exist(admin, &request.roles).await?;
        let hash = self.hash_secret(admin, &request.password).await?;
        let user = NewUser {
            username: &request.username,
            password_hash: &hash,
            roles: &request.roles,
            profile: &profile,
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

    /// Replaces the user's `name`, `email` and `email_verified`; what the body leaves
    /// out is cleared. A tenant file's user has the file's profile.
    pub async fn set_profile(
        &self,
        admin: &Admin,
        username: &str,
        profile: Profile,
    ) -> Result<UserView> {
        profile.check().map_err(|e| invalid(e.field, e.message))?;
        self.check_user_api_managed(admin, username).await?;
        self.change_user(
            admin,
            username,
            UserChange::Profile(&profile),
            AuditAction::UserProfile,
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

    /// Disables, enables, unlocks or deletes every user named, in one transaction, each
    /// audited as the single call would be; says per user what was done. A user a
    /// tenant file declares is not deleted.
    pub async fn bulk_users(&self, admin: &Admin, request: BulkRequest) -> Result<Vec<BulkResult>> {
        check_bulk_names(&request.usernames)?;
        let (change, action, done) = request.action.change();
        let mut refused = std::collections::HashSet::new();
        if request.action.sets_what_files_set() {
            for name in &request.usernames {
                let user = self.store.user(admin.tenant.id, name).await?;
                if user.is_some_and(|u| u.source.managed_by() == ManagedBy::File) {
                    refused.insert(name.as_str());
                }
            }
        }
        let named: Vec<(String, AuditEvent)> = request
            .usernames
            .iter()
            .filter(|name| !refused.contains(name.as_str()))
            .map(|name| {
                (
                    name.clone(),
                    admin.audit(action, name).with_detail("bulk".into()),
                )
            })
            .collect();
        let write = self
            .store
            .change_users(admin.tenant.id, change, &named)
            .await?;
        // One answer per user the store was given, in the order it was given them.
        let mut found = self.settle(write).await?.into_iter();
        let mut results = Vec::with_capacity(request.usernames.len());
        for name in &request.usernames {
            let outcome = if refused.contains(name.as_str()) {
                BulkOutcome::ManagedByFile
            } else {
                match found.next() {
                    Some(true) => done,
                    Some(false) | None => BulkOutcome::NotFound,
                }
            };
            results.push(BulkResult {
                username: name.clone(),
                outcome,
            });
        }
        Ok(results)
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
