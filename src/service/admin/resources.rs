//! A tenant's resource rules: which permission each admin path needs (SPEC §5).

use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::permission::{deciding_rule, with_guards, MethodMatch, ResourceRule};
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

/// Which rule decides a request, and what it asks: the answer to "Test a path".
#[derive(Debug)]
pub struct PathTest {
    /// The deciding rule's place among the rules in force (0 is the first), and the
    /// rule; `None` when no rule matches and the path is open.
    pub rule: Option<(usize, RuleRow)>,
    /// The permissions a caller must hold; empty when the path is open.
    pub needs: Vec<String>,
}

/// The rules in force, as they are written.
fn view(rules: &[ResourceRule], managed_by: ManagedBy) -> ResourcesView {
    let resources = rules.iter().map(row).collect();
    ResourcesView {
        rules: Resources { resources },
        managed_by,
    }
}

fn row(rule: &ResourceRule) -> RuleRow {
    RuleRow {
        context: rule.context.clone(),
        secured: rule.secured,
        http_method: rule.method.as_str().to_owned(),
        permissions: rule
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    }
}

impl Gateway {
    /// Which of the tenant's rules in force decides `method` on `path` (a whole
    /// request path, such as `/t/foo.com/api/v1/users`), and what it asks.
    pub fn test_resource_path(&self, admin: &Admin, method: &str, path: &str) -> Result<PathTest> {
        MethodMatch::parse(method).map_err(|e| invalid("method", e.to_string()))?;
        if !path.starts_with('/') {
            return Err(invalid("path", "a request path starts with /"));
        }
        let rule = deciding_rule(&admin.tenant.rules, method, path);
        let needs = match rule {
            Some((_, r)) if r.secured => row(r).permissions,
            Some(_) | None => Vec::new(),
        };
        Ok(PathTest {
            rule: rule.map(|(i, r)| (i, row(r))),
            needs,
        })
    }

    /// The rules in force: the tenant's own, then the guards it does not write itself
    /// (see [`with_guards`]), so that what this shows can be put back as it is.
    pub fn get_resources(&self, admin: &Admin) -> ResourcesView {
        view(&admin.tenant.rules, admin.tenant.rules_managed_by)
    }

    /// Replaces the tenant's rules; they apply from the next request on. The answer is
    /// what the next `GET` shows.
    pub async fn set_resources(&self, admin: &Admin, request: Resources) -> Result<ResourcesView> {
        self.check_api_managed(admin, admin.tenant.rules_managed_by, "the resource rules")?;
        let mut rules = Vec::with_capacity(request.resources.len());
        for (i, r) in request.resources.iter().enumerate() {
            let rule = ResourceRule::new(&r.context, r.secured, &r.http_method, &r.permissions)
                .map_err(|e| invalid(format!("resources[{i}]"), e.to_string()))?;
            rules.push(rule);
        }
        let audit = admin.audit(AuditAction::ResourcesUpdate, admin.tenant.domain.as_str());
        let write = self
            .store
            .set_resources(admin.tenant.id, Some(&request.resources), &audit)
            .await?;
        self.settle(write).await?;
        Ok(view(&with_guards(rules), ManagedBy::Api))
    }
}
