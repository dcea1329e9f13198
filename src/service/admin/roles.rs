//! Roles of a tenant and the permissions they hold (SPEC §5, §8).

use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::permission::{validate_role_name, Permission};
use crate::service::{Error, Gateway, Result};
use crate::store::RoleRecord;
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
}

fn check_permissions(field: &str, permissions: &[String]) -> Result<()> {
    for (i, p) in permissions.iter().enumerate() {
        Permission::parse(p).map_err(|e| invalid(format!("{field}[{i}]"), e.to_string()))?;
    }
    Ok(())
}

impl Gateway {
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
        validate_role_name(&request.name).map_err(|e| invalid("name", e.to_string()))?;
        check_permissions("permissions", &request.permissions)?;
        let role = RoleRecord {
            name: request.name,
            permissions: request.permissions,
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
        let write = self
            .store
            .update_role(
                admin.tenant.id,
                &role,
                &admin.audit(AuditAction::RoleUpdate, name),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("role"))?;
        Ok(RoleView {
            name: role.name,
            permissions: role.permissions,
        })
    }

    pub async fn delete_role(&self, admin: &Admin, name: &str) -> Result<()> {
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
