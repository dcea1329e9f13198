//! The Settings page: the tenant's token lifetimes, the clients that may introspect
//! every token, and its rate limits.

use super::page::{self, csrf, done_note, from_file_note, lines, lines_field, Section};
use super::Signed;
use crate::domain::ownership::ManagedBy;
use crate::http::form::Form;
use crate::http::{ApiError, Body};
use crate::service::admin::{
    IntrospectionSection, RateLimitsSection, SettingsDocument, TokensSection,
};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};

/// The number fields: label, name (as in the tenant file), hint.
const LIFETIMES: [(&str, &str, &str); 4] = [
    (
        "Access token lifetime",
        "tokens.access_token_ttl",
        "Seconds.",
    ),
    (
        "Refresh token lifetime",
        "tokens.refresh_token_ttl",
        "Seconds.",
    ),
    (
        "Authorization code lifetime",
        "tokens.authorization_code_ttl",
        "Seconds.",
    ),
    (
        "Grant lifetime",
        "tokens.grant_max_lifetime",
        "Seconds from sign-in after which no refresh is allowed.",
    ),
];
const LIMITS: [(&str, &str, &str); 2] = [
    (
        "Requests per caller",
        "rate_limits.requests_per_caller",
        "Per second; empty for the server's default.",
    ),
    (
        "Requests per tenant",
        "rate_limits.requests_per_tenant",
        "Per second; empty for the server's default.",
    ),
];

/// The form's text for each field, as shown or as typed.
struct SettingsForm {
    values: Vec<(&'static str, String)>,
    introspection: String,
}

impl SettingsForm {
    fn of(document: &SettingsDocument) -> Self {
        let t = &document.tokens;
        let r = &document.rate_limits;
        let text = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        SettingsForm {
            values: vec![
                (LIFETIMES[0].1, t.access_token_ttl.to_string()),
                (LIFETIMES[1].1, t.refresh_token_ttl.to_string()),
                (LIFETIMES[2].1, t.authorization_code_ttl.to_string()),
                (LIFETIMES[3].1, t.grant_max_lifetime.to_string()),
                (LIMITS[0].1, text(r.requests_per_caller)),
                (LIMITS[1].1, text(r.requests_per_tenant)),
            ],
            introspection: document.introspection.allowed_clients.join("\n"),
        }
    }

    fn sent(form: &Form) -> Self {
        let names = LIFETIMES.iter().chain(LIMITS.iter()).map(|(_, n, _)| *n);
        SettingsForm {
            values: names
                .map(|n| (n, form.get(n).unwrap_or_default().trim().to_owned()))
                .collect(),
            introspection: form
                .get("introspection.allowed_clients")
                .unwrap_or_default()
                .to_owned(),
        }
    }

    fn value(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The document the form means, or the field that is not a number.
    fn document(&self) -> Result<SettingsDocument, &'static str> {
        let whole = |name: &'static str| self.value(name).parse::<i64>().map_err(|_| name);
        let limit = |name: &'static str| match self.value(name) {
            "" => Ok(None),
            text => text.parse::<u32>().map(Some).map_err(|_| name),
        };
        Ok(SettingsDocument {
            tokens: TokensSection {
                access_token_ttl: whole(LIFETIMES[0].1)?,
                refresh_token_ttl: whole(LIFETIMES[1].1)?,
                authorization_code_ttl: whole(LIFETIMES[2].1)?,
                grant_max_lifetime: whole(LIFETIMES[3].1)?,
            },
            introspection: IntrospectionSection {
                allowed_clients: lines(&self.introspection),
            },
            rate_limits: RateLimitsSection {
                requests_per_caller: limit(LIMITS[0].1)?,
                requests_per_tenant: limit(LIMITS[1].1)?,
            },
        })
    }
}

/// The field an error of the settings API names: `introspection.allowed_clients[0]`
/// is the text area.
fn settings_field(field: &str) -> &str {
    field.split('[').next().unwrap_or(field)
}

impl Signed<'_> {
    pub(super) fn settings(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "settings", self.origin())?;
        let view = self.console.gateway.get_settings(&admin);
        let query = self.query()?;
        let form = SettingsForm::of(&view.settings);
        let editable = view.managed_by == ManagedBy::Api && self.session.may("PUT", "settings");
        let body = html! {
            (done_note(query.get("done")))
            @if view.managed_by == ManagedBy::File { (from_file_note(self.console.tenant.domain.as_str())) }
            (self.settings_form(&form, editable, None))
        };
        Ok(self.page(StatusCode::OK, "Settings", Some(Section::Settings), body))
    }

    fn settings_form(
        &self,
        form: &SettingsForm,
        editable: bool,
        error: Option<(&str, &str)>,
    ) -> Markup {
        let error_of = |name: &str| error.filter(|(f, _)| *f == name).map(|(_, m)| m);
        let number = |(label, name, hint): &(&str, &str, &str)| {
            let id = format!("field-{}", name.replace('.', "-"));
            let note = format!("{id}-note");
            html! {
                label for=(id) { (label) }
                @if let Some(error) = error_of(name) {
                    input type="text" inputmode="numeric" id=(id) name=(name) value=(form.value(name)) readonly[!editable] aria-invalid="true" aria-describedby=(note);
                    p.field-error id=(note) { (error) }
                } @else {
                    input type="text" inputmode="numeric" id=(id) name=(name) value=(form.value(name)) readonly[!editable] aria-describedby=(note);
                    p.muted id=(note) { (hint) }
                }
            }
        };
        html! {
            @if let Some((_, message)) = error { (page::message(message)) }
            form.card method="post" action={ (self.console.base) "/settings" } {
                (csrf(&self.session))
                fieldset {
                    legend { "Token lifetimes" }
                    @for field in &LIFETIMES { (number(field)) }
                }
                fieldset {
                    legend { "Introspection" }
                    @if editable {
                        (lines_field("Allowed introspection clients", "introspection.allowed_clients", &form.introspection,
                            "Client IDs of this tenant, one per line, that may introspect every token of the tenant.",
                            error_of("introspection.allowed_clients")))
                    } @else {
                        p { "Allowed introspection clients: " @if form.introspection.is_empty() { "none" } @else { (form.introspection.replace('\n', ", ")) } }
                    }
                }
                fieldset {
                    legend { "Rate limits" }
                    @for field in &LIMITS { (number(field)) }
                }
                @if editable {
                    div.actions { button type="submit" { "Save settings" } }
                }
            }
        }
    }

    pub(super) async fn save_settings(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("PUT", "settings", self.origin())?;
        let sent = SettingsForm::sent(&self.form()?);
        let failed = match sent.document() {
            Err(field) => (field.to_owned(), format!("{field}: must be a whole number")),
            Ok(document) => match self.console.gateway.set_settings(&admin, document).await {
                Ok(_) => return Ok(self.done("settings", "The settings were saved.")),
                Err(Error::Invalid { field, message }) => {
                    let name = settings_field(&field).to_owned();
                    (name, format!("{field}: {message}"))
                }
                Err(e) => return Err(e.into()),
            },
        };
        let (field, message) = failed;
        let body = self.settings_form(&sent, true, Some((&field, &message)));
        Ok(self.page(
            StatusCode::BAD_REQUEST,
            "Settings",
            Some(Section::Settings),
            body,
        ))
    }
}
