//! The Clients pages: the list, registering a client (its secret shown once), a
//! client's registration, rotating its secret, unlocking and deleting it.

use super::page::{
    self, check_box, csrf, done_note, from_file_note, head_row, lines, lines_field, next_link,
    optional_field, search_form, segment, Section,
};
use super::Signed;
use crate::domain::client::{AccessTokenFormat, GrantType};
use crate::domain::ownership::ManagedBy;
use crate::http::form::Form;
use crate::http::{ApiError, Body};
use crate::service::admin::{ClientPatch, ClientView, NewClientRequest};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};

/// The prefix of a grant type's checkbox (`grant:password`).
const GRANT_BOX: &str = "grant:";

/// What the client form holds: a client's registration, or what was typed.
struct ClientForm {
    client_id: String,
    name: String,
    public: bool,
    grant_types: Vec<String>,
    redirect_uris: String,
    scopes: String,
    require_pkce: bool,
    /// `opaque` or `jwt`.
    access_token_format: String,
}

impl ClientForm {
    fn blank() -> Self {
        ClientForm {
            client_id: String::new(),
            name: String::new(),
            public: false,
            grant_types: Vec::new(),
            redirect_uris: String::new(),
            scopes: String::new(),
            require_pkce: true,
            access_token_format: AccessTokenFormat::Opaque.as_str().to_owned(),
        }
    }

    fn of(client: &ClientView) -> Self {
        ClientForm {
            client_id: client.client_id.clone(),
            name: client.name.clone().unwrap_or_default(),
            public: client.public,
            grant_types: client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            redirect_uris: client.redirect_uris.join("\n"),
            scopes: client.scopes.join("\n"),
            require_pkce: client.require_pkce,
            access_token_format: client.access_token_format.as_str().to_owned(),
        }
    }

    fn sent(form: &Form) -> Self {
        let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
        ClientForm {
            client_id: text("client_id").trim().to_owned(),
            name: text("name").trim().to_owned(),
            public: form.get("public").is_some(),
            grant_types: form
                .names()
                .filter_map(|n| n.strip_prefix(GRANT_BOX))
                .map(str::to_owned)
                .collect(),
            redirect_uris: text("redirect_uris"),
            scopes: text("scopes"),
            require_pkce: form.get("require_pkce").is_some(),
            access_token_format: text("access_token_format"),
        }
    }
}

/// The form field an error of the client API names: `redirect_uris[1]` is the text
/// area of redirect URIs.
fn client_field(field: &str) -> &str {
    field.split('[').next().unwrap_or(field)
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

impl Signed<'_> {
    pub(super) async fn clients(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "clients", self.origin())?;
        let query = self.query()?;
        let (q, request) = Self::list_query(&query);
        let clients = self.console.gateway.list_clients(&admin, &request).await?;
        let base = &self.console.base;
        let filters: Vec<(&str, &str)> = q.map(|q| ("q", q)).into_iter().collect();
        let body = html! {
            (done_note(query.get("done")))
            @if self.session.may("POST", "clients") {
                p { a.button href={ (base) "/clients/new" } { "New client" } }
            }
            (search_form(&format!("{base}/clients"), q, "Client IDs that start with this."))
            div.table tabindex="0" role="region" aria-label="Clients" { table {
                caption.muted { "Clients, by client ID" }
                (head_row(&["Client ID", "Name", "Public", "Grant types", "Locked", "Managed by"]))
                tbody {
                    @for client in &clients.items {
                        tr {
                            td { a href={ (base) "/clients/" (segment(&client.client_id)) } { (client.client_id) } }
                            td { (client.name.as_deref().unwrap_or("—")) }
                            td { (yes_no(client.public)) }
                            td { (grant_list(&client.grant_types)) }
                            td { (yes_no(client.locked)) }
                            td { (client.managed_by.as_str()) }
                        }
                    }
                }
            } }
            @if clients.items.is_empty() { p { "No client matches." } }
            (next_link(&format!("{base}/clients"), &filters, clients.next.as_deref()))
        };
        Ok(self.page(StatusCode::OK, "Clients", Some(Section::Clients), body))
    }

    /// The registration form, new (`existing` is `None`) or of a client.
    fn client_form(
        &self,
        existing: Option<&str>,
        form: &ClientForm,
        error: Option<(&str, String)>,
        note: Option<&str>,
    ) -> Markup {
        let base = &self.console.base;
        let error_of = |name: &str| {
            error
                .as_ref()
                .filter(|(f, _)| *f == name)
                .map(|(_, m)| m.as_str())
        };
        let action = match existing {
            Some(id) => format!("{base}/clients/{}", segment(id)),
            None => format!("{base}/clients/new"),
        };
        html! {
            (done_note(note))
            @if let Some((_, message)) = &error { (page::message(message)) }
            form.card method="post" action=(action) {
                (csrf(&self.session))
                @if existing.is_none() {
                    (optional_field("Client ID", "client_id", "text", &form.client_id, error_of("client_id")))
                }
                (optional_field("Name", "name", "text", &form.name, error_of("name")))
                @if existing.is_none() {
                    (check_box("Public client", "public", form.public))
                    p.muted { "A public client has no secret and proves itself with PKCE: code and refresh grants only." }
                }
                fieldset {
                    legend { "Grant types" }
                    @if let Some(error) = error_of("grant_types") { p.field-error { (error) } }
                    @for grant in GrantType::ALL {
                        (check_box(grant.as_str(), &format!("{GRANT_BOX}{}", grant.as_str()),
                            form.grant_types.iter().any(|g| g == grant.as_str())))
                    }
                }
                (lines_field("Redirect URIs", "redirect_uris", &form.redirect_uris,
                    "One per line; the code grant needs at least one.", error_of("redirect_uris")))
                (lines_field("Scopes", "scopes", &form.scopes,
                    "One per line; none lets the client ask for any.", error_of("scopes")))
                (check_box("Require PKCE (S256) at the code grant", "require_pkce", form.require_pkce))
                label for="field-access_token_format" { "Access token format" }
                @if let Some(error) = error_of("access_token_format") {
                    p.field-error { (error) }
                }
                select id="field-access_token_format" name="access_token_format" aria-describedby="format-hint" {
                    @for (value, label) in [("opaque", "Opaque"), ("jwt", "JWT (RFC 9068)")] {
                        option value=(value) selected[form.access_token_format == value] { (label) }
                    }
                }
                p.muted id="format-hint" { "A JWT access token can be checked by a resource server without asking; it learns of a revocation only through introspection." }
                div.actions {
                    button type="submit" { @if existing.is_some() { "Save client" } @else { "Create client" } }
                }
            }
        }
    }

    fn client_page(
        &self,
        status: StatusCode,
        existing: Option<&str>,
        body: Markup,
    ) -> Response<Body> {
        let title = match existing {
            Some(id) => format!("Client {id}"),
            None => "New client".to_owned(),
        };
        self.page(status, &title, Some(Section::Clients), body)
    }

    pub(super) fn new_client_form(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "clients", self.origin())?;
        let blank = ClientForm::blank();
        let body = self.client_form(None, &blank, None, None);
        Ok(self.client_page(StatusCode::OK, None, body))
    }

    pub(super) async fn create_client(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "clients", self.origin())?;
        let sent = ClientForm::sent(&self.form()?);
        let request = NewClientRequest {
            client_id: Some(sent.client_id.clone()).filter(|id| !id.is_empty()),
            public: sent.public,
            grant_types: sent.grant_types.clone(),
            redirect_uris: lines(&sent.redirect_uris),
            scopes: lines(&sent.scopes),
            require_pkce: sent.require_pkce,
            name: Some(sent.name.clone()).filter(|n| !n.is_empty()),
            access_token_format: Some(sent.access_token_format.clone()).filter(|f| !f.is_empty()),
        };
        let failed = match self.console.gateway.create_client(&admin, request).await {
            Ok(registered) => {
                let body = html! {
                    p.notice role="status" { "Client " (registered.client.client_id) " was registered." }
                    dl {
                        dt { "Client ID" } dd { code { (registered.client.client_id) } }
                        @if let Some(secret) = &registered.client_secret {
                            dt { "Client secret" } dd { code { (secret) } }
                        }
                    }
                    @if registered.client_secret.is_some() {
                        p { strong { "Copy the secret now: it is stored only as a hash and is not shown again." } }
                    }
                    p { a href={ (self.console.base) "/clients/" (segment(&registered.client.client_id)) } { "Go to the client" } }
                };
                return Ok(self.page(
                    StatusCode::CREATED,
                    "Client registered",
                    Some(Section::Clients),
                    body,
                ));
            }
            Err(Error::Invalid { field, message }) => {
                let field = client_field(&field);
                (StatusCode::BAD_REQUEST, field.to_owned(), message)
            }
            Err(Error::Duplicate(_)) => (
                StatusCode::CONFLICT,
                "client_id".to_owned(),
                "a client with this ID already exists".to_owned(),
            ),
            Err(e) => return Err(e.into()),
        };
        let (status, field, message) = failed;
        let error = Some((field.as_str(), format!("{field}: {message}")));
        let body = self.client_form(None, &sent, error, None);
        Ok(self.client_page(status, None, body))
    }

    pub(super) async fn client(&self, client_id: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let admin = self.session.admin("GET", &path, self.origin())?;
        let client = self.console.gateway.get_client(&admin, client_id).await?;
        let query = self.query()?;
        let from_file = client.managed_by == ManagedBy::File;
        let shown = if !from_file && self.session.may("PATCH", &path) {
            let form = ClientForm::of(&client);
            self.client_form(Some(client_id), &form, None, query.get("done"))
        } else {
            html! {
                (done_note(query.get("done")))
                @if from_file { (from_file_note(self.console.tenant.domain.as_str())) }
                (registration(&client))
            }
        };
        let body = html! { (shown) (self.client_actions(&client, &path)) };
        Ok(self.client_page(StatusCode::OK, Some(client_id), body))
    }

    /// Rotate, unlock and delete, each shown to whom may do it.
    fn client_actions(&self, client: &ClientView, path: &str) -> Markup {
        let base = &self.console.base;
        let api = client.managed_by == ManagedBy::Api;
        let may = |method: &str, rest: &str| self.session.may(method, &format!("{path}{rest}"));
        html! {
            div.actions {
                @if api && !client.public && may("POST", "/secret") {
                    a.button href={ (base) "/" (path) "/secret" } { "Rotate secret" }
                }
                @if client.locked && may("POST", "/unlock") {
                    form method="post" action={ (base) "/" (path) "/unlock" } {
                        (csrf(&self.session))
                        button type="submit" { "Unlock" }
                    }
                }
                @if api && may("DELETE", "") {
                    a.button.danger href={ (base) "/" (path) "/delete" } { "Delete" }
                }
            }
        }
    }

    pub(super) async fn edit_client(&self, client_id: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let admin = self.session.admin("PATCH", &path, self.origin())?;
        let sent = ClientForm::sent(&self.form()?);
        let patch = ClientPatch {
            grant_types: Some(sent.grant_types.clone()),
            redirect_uris: Some(lines(&sent.redirect_uris)),
            scopes: Some(lines(&sent.scopes)),
            require_pkce: Some(sent.require_pkce),
            name: Some(sent.name.clone()),
            access_token_format: Some(sent.access_token_format.clone()).filter(|f| !f.is_empty()),
        };
        match self
            .console
            .gateway
            .edit_client(&admin, client_id, patch)
            .await
        {
            Ok(_) => Ok(self.done(&path, "The client was saved.")),
            Err(Error::Invalid { field, message }) => {
                let field = client_field(&field);
                let error = Some((field, format!("{field}: {message}")));
                let body = self.client_form(Some(client_id), &sent, error, None);
                Ok(self.client_page(StatusCode::BAD_REQUEST, Some(client_id), body))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn confirm_rotate_secret(
        &self,
        client_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        self.session
            .admin("POST", &format!("{path}/secret"), self.origin())?;
        let question = html! {
            p { "Give the client " strong { (client_id) } " a new secret? The current secret stops working at once." }
        };
        Ok(self.confirm(
            Section::Clients,
            "Rotate secret",
            question,
            &format!("{path}/secret"),
            "Rotate secret",
            &path,
        ))
    }

    pub(super) async fn rotate_secret(&self, client_id: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let admin = self
            .session
            .admin("POST", &format!("{path}/secret"), self.origin())?;
        if let Some(sign_in) = self.needs_sign_in(&format!("{path}/secret")) {
            return Ok(sign_in);
        }
        let rotated = self
            .console
            .gateway
            .rotate_secret(&admin, client_id)
            .await?;
        let body = html! {
            p.notice role="status" { "The client has a new secret; the old one no longer works." }
            dl {
                dt { "Client ID" } dd { code { (rotated.client_id) } }
                dt { "Client secret" } dd { code { (rotated.client_secret) } }
            }
            p { strong { "Copy the secret now: it is stored only as a hash and is not shown again." } }
            p { a href={ (self.console.base) "/" (path) } { "Back to the client" } }
        };
        Ok(self.page(StatusCode::OK, "New secret", Some(Section::Clients), body))
    }

    pub(super) async fn unlock_client(&self, client_id: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let admin = self
            .session
            .admin("POST", &format!("{path}/unlock"), self.origin())?;
        self.console
            .gateway
            .unlock_client(&admin, client_id)
            .await?;
        Ok(self.done(&path, "The client was unlocked."))
    }

    pub(super) fn confirm_delete_client(
        &self,
        client_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        self.session.admin("DELETE", &path, self.origin())?;
        let question = html! {
            p { "Delete the client " strong { (client_id) } "? Its tokens end at once. This cannot be undone." }
        };
        Ok(self.confirm(
            Section::Clients,
            "Delete client",
            question,
            &format!("{path}/delete"),
            "Delete",
            &path,
        ))
    }

    pub(super) async fn delete_client(&self, client_id: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("clients/{}", segment(client_id));
        let admin = self.session.admin("DELETE", &path, self.origin())?;
        if let Some(sign_in) = self.needs_sign_in(&format!("{path}/delete")) {
            return Ok(sign_in);
        }
        self.console
            .gateway
            .delete_client(&admin, client_id)
            .await?;
        Ok(self.done("clients", &format!("Client {client_id} was deleted.")))
    }
}

fn grant_list(grants: &[GrantType]) -> String {
    let names: Vec<&str> = grants.iter().map(|g| g.as_str()).collect();
    names.join(", ")
}

/// A client's registration, to read.
fn registration(client: &ClientView) -> Markup {
    html! {
        dl {
            dt { "Client ID" } dd { code { (client.client_id) } }
            dt { "Name" } dd { (client.name.as_deref().unwrap_or("—")) }
            dt { "Public client" } dd { (yes_no(client.public)) }
            dt { "Grant types" } dd { (grant_list(&client.grant_types)) }
            dt { "Redirect URIs" } dd {
                @if client.redirect_uris.is_empty() { "—" }
                @for uri in &client.redirect_uris { code { (uri) } br; }
            }
            dt { "Scopes" } dd { @if client.scopes.is_empty() { "any" } @else { (client.scopes.join(" ")) } }
            dt { "Require PKCE" } dd { (yes_no(client.require_pkce)) }
            dt { "Access token format" } dd { (client.access_token_format.as_str()) }
            dt { "Locked" } dd { (yes_no(client.locked)) }
        }
    }
}
