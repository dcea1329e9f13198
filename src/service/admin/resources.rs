//! A tenant's resource rules: which permission each admin path needs (SPEC §5).

use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::permission::ResourceRule;
use crate::service::{Gateway, Result};
use crate::store::RuleRow;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub resources: Vec<RuleRow>,
}

#[derive(Debug, Serialize)]
pub struct ResourcesView {
    #[serde(flatten)]
    pub rules: Resources,
    /// `file` when the tenant's file declares `[[resources]]` (change it there), else
    /// `api`.
    pub managed_by: ManagedBy,
}

impl Gateway {
    pub fn get_resources(&self, admin: &Admin) -> ResourcesView {
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
        ResourcesView {
            rules: Resources { resources },
            managed_by: admin.tenant.rules_managed_by,
        }
    }

    /// Replaces the tenant's rules; they apply from the next request on.
    pub async fn set_resources(&self, admin: &Admin, request: Resources) -> Result<ResourcesView> {
        self.check_api_managed(admin, admin.tenant.rules_managed_by, "the resource rules")?;
        for (i, r) in request.resources.iter().enumerate() {
            ResourceRule::new(&r.context, r.secured, &r.http_method, &r.permissions)
                .map_err(|e| invalid(format!("resources[{i}]"), e.to_string()))?;
        }
        let audit = admin.audit(AuditAction::ResourcesUpdate, admin.tenant.domain.as_str());
        let write = self
            .store
            .set_resources(admin.tenant.id, Some(&request.resources), &audit)
            .await?;
        self.settle(write).await?;
        Ok(ResourcesView {
            rules: request,
            managed_by: ManagedBy::Api,
        })
    }
}
