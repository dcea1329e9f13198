//! Roles of a tenant and the permissions they hold (SPEC §5, §8).

use super::page::{List, ListRequest, Page};
use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::permission::{validate_role_name, Permission};
use crate::service::{Error, Gateway, Result};
use crate::store::{RoleRecord, Source};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RoleView {
    pub name: String,
    pub permissions: Vec<String>,
    /// Who owns its permissions: `file` (a tenant file; change it there) or `api`.
    pub managed_by: ManagedBy,
}

impl From<RoleRecord> for RoleView {
    fn from(role: RoleRecord) -> Self {
        RoleView {
            managed_by: role.source.managed_by(),
            name: role.name,
            permissions: role.permissions,
        }
    }
}

fn check_permissions(field: &str, permissions: &[String]) -> Result<()> {
    for (i, p) in permissions.iter().enumerate() {
        Permission::parse(p).map_err(|e| invalid(format!("{field}[{i}]"), e.to_string()))?;
    }
    Ok(())
}

impl Gateway {
    /// A page of the tenant's roles by name.
    pub async fn list_roles(&self, admin: &Admin, request: &ListRequest) -> Result<Page<RoleView>> {
        let tenant_id = admin.tenant.id;
        let page = self.name_page(List::Roles, tenant_id, request)?;
        let rows = self.store.roles_page(tenant_id, &page).await?;
        let page = self.page(List::Roles, tenant_id, rows, page.limit, |r| r.name.clone());
        Ok(page.map(RoleView::from))
    }

    pub async fn get_role(&self, admin: &Admin, name: &str) -> Result<RoleView> {
        Ok(self.tenant_role(admin, name).await?.into())
    }

    async fn tenant_role(&self, admin: &Admin, name: &str) -> Result<RoleRecord> {
        let roles = self.store.roles(admin.tenant.id).await?;
        let role = roles.into_iter().find(|r| r.name == name);
        role.ok_or(Error::NotFound("role"))
    }

    /// A role of the admin's tenant that the API may change.
    async fn api_managed_role(&self, admin: &Admin, name: &str) -> Result<RoleRecord> {
        let role = self.tenant_role(admin, name).await?;
        let what = format!("role {name:?}");
        self.check_api_managed(admin, role.source.managed_by(), what)?;
        Ok(role)
    }

    pub async fn create_role(&self, admin: &Admin, request: RoleRequest) -> Result<RoleView> {
        validate_role_name(&request.name).map_err(|e| invalid("name", e.to_string()))?;
        check_permissions("permissions", &request.permissions)?;
        let role = RoleRecord {
            name: request.name,
            permissions: request.permissions,
            source: Source::Api,
        };
        let write = self
            .store
            .create_role(
                admin.tenant.id,
                &role,
                &admin.audit(AuditAction::RoleCreate, &role.name),
            )
            .await?;
        self.settle(write).await?;
        Ok(role.into())
    }

    pub async fn update_role(
        &self,
        admin: &Admin,
        name: &str,
        request: PermissionsRequest,
    ) -> Result<RoleView> {
        check_permissions("permissions", &request.permissions)?;
        let role = RoleRecord {
            permissions: request.permissions,
            ..self.api_managed_role(admin, name).await?
        };
        let write = self
            .store
            .update_role(
                admin.tenant.id,
                &role,
                &admin.audit(AuditAction::RoleUpdate, name),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("role"))?;
        Ok(role.into())
    }

    pub async fn delete_role(&self, admin: &Admin, name: &str) -> Result<()> {
        self.api_managed_role(admin, name).await?;
        let write = self
            .store
            .delete_role(
                admin.tenant.id,
                name,
                &admin.audit(AuditAction::RoleDelete, name),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("role"))
    }
}
