//! The Tenants pages (super tenant only): the list, a new tenant with its first
//! administrator, and deactivating a tenant.

use super::page::{
    self, csrf, done_note, field, head_row, next_link, search_form, segment, Section,
};
use super::Signed;
use crate::http::{ApiError, Body};
use crate::service::admin::{NewTenantAdmin, NewTenantRequest};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::html;
use secrecy::SecretString;

impl Signed<'_> {
    pub(super) async fn tenants(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "tenants", self.origin())?;
        let query = self.query()?;
        let (q, request) = Self::list_query(&query);
        let tenants = self.console.gateway.list_tenants(&admin, &request).await?;
        let base = &self.console.base;
        let filters: Vec<(&str, &str)> = q.map(|q| ("q", q)).into_iter().collect();
        let super_domain = self.console.tenant.domain.as_str();
        let may_deactivate = |domain: &str| {
            domain != super_domain
                && self
                    .session
                    .may("DELETE", &format!("tenants/{}", segment(domain)))
        };
        let body = html! {
            (done_note(query.get("done")))
            @if self.session.may("POST", "tenants") {
                p { a.button href={ (base) "/tenants/new" } { "New tenant" } }
            }
            (search_form(&format!("{base}/tenants"), q, "Domains that start with this."))
            div.table tabindex="0" role="region" aria-label="Tenants" { table {
                caption.muted { "Tenants, by domain" }
                (head_row(&["Domain", "Active", "Console", "Action"]))
                tbody {
                    @for tenant in &tenants.items {
                        tr {
                            td { (tenant.domain) }
                            td { @if tenant.active { "Yes" } @else { "No" } }
                            td {
                                @if tenant.active {
                                    a href={ "/t/" (segment(&tenant.domain)) "/console/" } { "Open the console of " (tenant.domain) }
                                }
                            }
                            td {
                                @if tenant.active && may_deactivate(&tenant.domain) {
                                    a href={ (base) "/tenants/" (segment(&tenant.domain)) "/deactivate" } aria-label={ "Deactivate " (tenant.domain) } { "Deactivate" }
                                }
                            }
                        }
                    }
                }
            } }
            @if tenants.items.is_empty() { p { "No tenant matches." } }
            (next_link(&format!("{base}/tenants"), &filters, tenants.next.as_deref()))
        };
        Ok(self.page(StatusCode::OK, "Tenants", Some(Section::Tenants), body))
    }

    fn new_tenant_page(
        &self,
        status: StatusCode,
        domain: &str,
        username: &str,
        error: Option<(&str, String)>,
    ) -> Response<Body> {
        let error_of = |name: &str| {
            error
                .as_ref()
                .filter(|(f, _)| *f == name)
                .map(|(_, m)| m.as_str())
        };
        let body = html! {
            @if let Some((_, message)) = &error { (page::message(message)) }
            form.card method="post" action={ (self.console.base) "/tenants/new" } {
                (csrf(&self.session))
                (field("Domain", "domain", "text", domain, error_of("domain")))
                (field("Admin username", "admin.username", "text", username, error_of("admin.username")))
                (field("Admin password", "admin.password", "password", "", error_of("admin.password")))
                div.actions { button type="submit" { "Create tenant" } }
            }
        };
        self.page(status, "New tenant", Some(Section::Tenants), body)
    }

    pub(super) fn new_tenant_form(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "tenants", self.origin())?;
        Ok(self.new_tenant_page(StatusCode::OK, "", "", None))
    }

    pub(super) async fn create_tenant(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "tenants", self.origin())?;
        let form = self.form()?;
        let domain = form.get("domain").unwrap_or_default().trim();
        let username = form.get("admin.username").unwrap_or_default().trim();
        let request = NewTenantRequest {
            domain: domain.to_owned(),
            admin: NewTenantAdmin {
                username: username.to_owned(),
                password: SecretString::from(
                    form.get("admin.password").unwrap_or_default().to_owned(),
                ),
            },
        };
        let failed = match self.console.gateway.create_tenant(&admin, request).await {
            Ok(tenant) => {
                return Ok(self.done(
                    "tenants",
                    &format!(
                        "Tenant {} was created with its administrator.",
                        tenant.domain
                    ),
                ))
            }
            Err(Error::Invalid { field, message }) => (
                StatusCode::BAD_REQUEST,
                field.clone(),
                format!("{field}: {message}"),
            ),
            Err(Error::Duplicate(_)) => (
                StatusCode::CONFLICT,
                "domain".to_owned(),
                "A tenant with this domain already exists.".to_owned(),
            ),
            Err(e) => return Err(e.into()),
        };
        let (status, field, message) = failed;
        Ok(self.new_tenant_page(status, domain, username, Some((&field, message))))
    }

    pub(super) fn confirm_deactivate(&self, domain: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("tenants/{}", segment(domain));
        self.session.admin("DELETE", &path, self.origin())?;
        let question = html! {
            p { "Deactivate the tenant " strong { (domain) } "? Its endpoints stop answering and all its tokens become inactive." }
        };
        Ok(self.confirm(
            Section::Tenants,
            "Deactivate tenant",
            question,
            &format!("{path}/deactivate"),
            "Deactivate",
            "tenants",
        ))
    }

    pub(super) async fn deactivate(&self, domain: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("tenants/{}", segment(domain));
        let admin = self.session.admin("DELETE", &path, self.origin())?;
        if let Some(sign_in) = self.needs_sign_in(&format!("{path}/deactivate")) {
            return Ok(sign_in);
        }
        self.console.gateway.delete_tenant(&admin, domain).await?;
        Ok(self.done("tenants", &format!("Tenant {domain} was deactivated.")))
    }
}
