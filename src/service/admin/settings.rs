//! A tenant's own settings at runtime: token lifetimes, the clients that may introspect
//! every token, and rate limits. The JSON has the shape and the names of the tenant
//! file's `[tokens]`, `[introspection]` and `[rate_limits]`, and means the same: what a
//! `PUT` leaves out takes the default a file would give it.

use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::ownership::ManagedBy;
use crate::domain::tenant::TenantSettings;
use crate::service::{Gateway, Result};
use crate::tenant_file::{IntrospectionSection, RateLimitsSection, TokensSection};
use serde::{Deserialize, Serialize};

/// The settings as `PUT` takes them and `GET` shows them.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    #[serde(default)]
    pub tokens: TokensSection,
    #[serde(default)]
    pub introspection: IntrospectionSection,
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
}

#[derive(Debug, Serialize)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: SettingsDocument,
    /// `file` when the tenant's file sets them (change it there), else `api`.
    pub managed_by: ManagedBy,
}

impl From<&TenantSettings> for SettingsDocument {
    fn from(settings: &TenantSettings) -> Self {
        SettingsDocument {
            tokens: settings.lifetimes.into(),
            introspection: IntrospectionSection {
                allowed_clients: settings.introspection_clients.clone(),
            },
            rate_limits: settings.rate_limits.into(),
        }
    }
}

impl SettingsDocument {
    fn settings(&self) -> TenantSettings {
        TenantSettings {
            lifetimes: self.tokens.lifetimes(),
            introspection_clients: self.introspection.allowed_clients.clone(),
            rate_limits: self.rate_limits.into(),
        }
    }
}

/// The keys whose values differ, named as in the tenant file: the audit entry's detail.
fn changed_keys(old: &TenantSettings, new: &TenantSettings) -> Vec<&'static str> {
    let (a, b) = (&old.lifetimes, &new.lifetimes);
    let (x, y) = (&old.rate_limits, &new.rate_limits);
    [
        ("tokens.access_token_ttl", a.access_token != b.access_token),
        (
            "tokens.refresh_token_ttl",
            a.refresh_token != b.refresh_token,
        ),
        (
            "tokens.authorization_code_ttl",
            a.authorization_code != b.authorization_code,
        ),
        (
            "tokens.grant_max_lifetime",
            a.grant_max_lifetime != b.grant_max_lifetime,
        ),
        (
            "introspection.allowed_clients",
            old.introspection_clients != new.introspection_clients,
        ),
        (
            "rate_limits.requests_per_caller",
            x.requests_per_caller != y.requests_per_caller,
        ),
        (
            "rate_limits.requests_per_tenant",
            x.requests_per_tenant != y.requests_per_tenant,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

impl Gateway {
    pub fn get_settings(&self, admin: &Admin) -> SettingsView {
        SettingsView {
            settings: (&admin.tenant.settings).into(),
            managed_by: admin.tenant.settings_managed_by,
        }
    }

    /// Replaces the tenant's settings, checked as a tenant file's are and against the
    /// tenant's clients. Every instance applies them within a second (the tenant's
    /// change notice); a `PUT` that changes nothing writes nothing.
    pub async fn set_settings(
        &self,
        admin: &Admin,
        request: SettingsDocument,
    ) -> Result<SettingsView> {
        self.check_api_managed(
            admin,
            admin.tenant.settings_managed_by,
            "the tenant's settings",
        )?;
        request
            .tokens
            .check()
            .map_err(|(key, message)| invalid(key, message))?;
        self.check_introspection_clients(admin, &request.introspection.allowed_clients)
            .await?;
        let settings = request.settings();
        let changed = changed_keys(&admin.tenant.settings, &settings);
        if !changed.is_empty() {
            let audit = admin
                .audit(AuditAction::SettingsUpdate, admin.tenant.domain.as_str())
                .with_detail(changed.join(", "));
            let write = self
                .store
                .set_settings(admin.tenant.id, &settings, &audit)
                .await?;
            self.settle(write).await?;
        }
        Ok(SettingsView {
            settings: request,
            managed_by: admin.tenant.settings_managed_by,
        })
    }

    /// Every client named is a client of this tenant, named once.
    async fn check_introspection_clients(&self, admin: &Admin, clients: &[String]) -> Result<()> {
        for (i, client_id) in clients.iter().enumerate() {
            let field = || format!("introspection.allowed_clients[{i}]");
            if clients[..i].contains(client_id) {
                return Err(invalid(field(), format!("{client_id:?} is listed twice")));
            }
            let client = self.store.client(client_id).await?;
            if client.is_none_or(|c| c.tenant_id != admin.tenant.id) {
                return Err(invalid(
                    field(),
                    format!("no client {client_id:?} in this tenant"),
                ));
            }
        }
        Ok(())
    }
}
