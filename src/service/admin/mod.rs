//! Tenant administration (SPEC §8): users, roles, clients, resource rules, settings,
//! tokens, tenants and the audit log, one file each. Every change is audited and reaches the
//! caches through `Gateway::settle` before the answer goes out.

mod audit;
mod clients;
mod keys;
mod page;
mod resources;
mod roles;
mod settings;
mod tenants;
mod tokens;
mod users;

/// The parts of the use cases' requests that other layers define: a resource rule as
/// written, and the settings' sections, named as in a tenant file.
pub use crate::store::RuleRow;
pub use crate::tenant_file::{IntrospectionSection, RateLimitsSection, TokensSection};
pub use audit::{AuditFilter, AuditView};
pub use clients::{ClientPatch, ClientView, NewClientRequest};
pub use keys::KeyState;
pub use page::{ListRequest, Page, MAX_PAGE};
pub use resources::{PathTest, Resources};
pub use roles::{PermissionsRequest, RoleRequest};
pub use settings::SettingsDocument;
pub use tenants::{NewTenantAdmin, NewTenantRequest, TENANT_ADMIN_ROLE};
pub use tokens::{GrantsOf, RevokeRequest, TokenRequest};
pub use users::{
    BulkAction, BulkRequest, EnabledRequest, NewUserRequest, PasswordRequest, RolesRequest,
};

use super::authenticate::{BearerCaller, Presented};
use super::hasher::Lane;
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::audit::{Actor, AuditAction};
use crate::domain::ownership::ManagedBy;
use crate::domain::permission::authorize;
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::service::credentials::MAX_SECRET_BYTES;
use crate::store::AuditEvent;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// Shortest password the API accepts.
const MIN_PASSWORD_CHARS: usize = 8;

/// An authenticated and authorized administrator acting in their own tenant.
#[derive(Debug)]
pub struct Admin {
    pub tenant: Arc<Tenant>,
    /// `username@tenant`: the actor of every audit entry.
    pub name: String,
    pub origin: Origin,
    pub channel: Channel,
}

/// What an admin acts through. The changes are the same; the audit log tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Api,
    Console,
}

impl Channel {
    /// The audit entry's `via`.
    fn audit_mark(self) -> Option<&'static str> {
        match self {
            Channel::Api => None,
            Channel::Console => Some("console"),
        }
    }
}

impl Admin {
    fn audit(&self, action: AuditAction, target: &str) -> AuditEvent {
        let actor = Actor::user(&self.name);
        let address = self.origin.address();
        AuditEvent::new(self.tenant.id, now(), &actor, action, target, address)
            .made_via(self.channel.audit_mark())
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
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
            Presented::Basic { name, secret, .. } => {
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
            channel: Channel::Api,
        })
    }

    /// Refuses an API change to what a tenant file declares: the next start would undo
    /// it. `what` names the object, as in `user "alice"`.
    fn check_api_managed(
        &self,
        admin: &Admin,
        managed_by: ManagedBy,
        what: impl std::fmt::Display,
    ) -> Result<()> {
        match managed_by {
            ManagedBy::Api => Ok(()),
            ManagedBy::File => {
                let file = (self.config.tenants.dir).join(format!("{}.toml", admin.tenant.domain));
                Err(Error::ManagedByFile(format!(
                    "{what} is declared in {}; change it there",
                    file.display()
                )))
            }
        }
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
}

#[cfg(test)]
mod tests {
    use super::clients::NewClientRequest;
    use super::resources::Resources;
    use super::roles::RoleRequest;
    use super::settings::SettingsDocument;
    use super::tenants::NewTenantRequest;
    use super::tokens::RevokeRequest;
    use super::users::{BulkRequest, NewUserRequest};

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
            let _ = serde_json::from_slice::<SettingsDocument>(bytes);
            let _ = serde_json::from_slice::<BulkRequest>(bytes);
        }
    }
}
