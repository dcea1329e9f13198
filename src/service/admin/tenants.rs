//! Tenants, managed from the super tenant: list, create, deactivate (SPEC §3, §8).

use super::page::{List, ListRequest, Page};
use super::{check_password, invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::principal::{validate_username, Profile};
use crate::domain::tenant::TenantDomain;
use crate::service::{Error, Gateway, Result};
use crate::store::{NewTenant, NewUser, RoleRecord, Source};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The role a tenant's first administrator gets, and what it holds.
pub const TENANT_ADMIN_ROLE: &str = "admin";
const TENANT_ADMIN_PERMISSION: &str = "/permission/admin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenantRequest {
    pub domain: String,
    pub admin: NewTenantAdmin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenantAdmin {
    pub username: String,
    pub password: SecretString,
}

#[derive(Debug, Serialize)]
pub struct TenantView {
    pub domain: String,
    pub active: bool,
}

impl Gateway {
    /// A page of every tenant by domain (the super tenant's admins only).
    pub async fn list_tenants(
        &self,
        admin: &Admin,
        request: &ListRequest,
    ) -> Result<Page<TenantView>> {
        let tenant_id = admin.tenant.id;
        let page = self.name_page(List::Tenants, tenant_id, request)?;
        let rows = self.store.tenants_page(&page).await?;
        let page = self.page(List::Tenants, tenant_id, rows, page.limit, |t| {
            t.domain.clone()
        });
        Ok(page.map(|t| TenantView {
            domain: t.domain,
            active: t.active,
        }))
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
        let settings = NewTenant::defaults(request.domain.clone());
        let role = RoleRecord {
            name: TENANT_ADMIN_ROLE.into(),
            permissions: vec![TENANT_ADMIN_PERMISSION.into()],
            source: Source::Api,
        };
        let roles = [TENANT_ADMIN_ROLE.to_owned()];
        let first_admin = NewUser {
            username: &request.admin.username,
            password_hash: &hash,
            roles: &roles,
            profile: &Profile::default(),
        };
        let audit = admin.audit(AuditAction::TenantCreate, &request.domain);
        let signing_key = self.keys.new_key(&request.domain, audit.at)?;
        let write = self
            .store
            .create_tenant(&settings, &role, &first_admin, &signing_key, &audit)
            .await?;
        self.settle(write).await?;
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
        let write = self
            .store
            .deactivate_tenant(
                tenant.id,
                &admin.audit(AuditAction::TenantDeactivate, domain),
            )
            .await?;
        self.settle(write).await
    }
}
