//! The Roles pages: the list, a new role, a role's permissions, deleting a role.

use super::page::{
    self, csrf, done_note, field, from_file_note, head_row, lines, lines_field, next_link,
    search_form, segment, Section,
};
use super::Signed;
use crate::domain::ownership::ManagedBy;
use crate::http::{ApiError, Body};
use crate::service::admin::{PermissionsRequest, RoleRequest};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};

/// What the role form shows again after a failed try.
struct RoleForm<'a> {
    /// `None` for a new role.
    existing: Option<&'a str>,
    name: &'a str,
    permissions: &'a str,
    /// The field that failed (`name` or `permissions`) and why.
    error: Option<(&'a str, String)>,
}

/// The field an error of the role API names: `permissions[2]` is the text area.
fn role_field(field: &str) -> &'static str {
    if field.starts_with("permissions") {
        "permissions"
    } else {
        "name"
    }
}

impl Signed<'_> {
    pub(super) async fn roles(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "roles", self.origin())?;
        let query = self.query()?;
        let (q, request) = Self::list_query(&query);
        let roles = self.console.gateway.list_roles(&admin, &request).await?;
        let base = &self.console.base;
        let filters: Vec<(&str, &str)> = q.map(|q| ("q", q)).into_iter().collect();
        let body = html! {
            (done_note(query.get("done")))
            @if self.session.may("POST", "roles") {
                p { a.button href={ (base) "/roles/new" } { "New role" } }
            }
            (search_form(&format!("{base}/roles"), q, "Role names that start with this."))
            div.table tabindex="0" role="region" aria-label="Roles" { table {
                caption.muted { "Roles, by name" }
                (head_row(&["Name", "Permissions", "Managed by"]))
                tbody {
                    @for role in &roles.items {
                        tr {
                            td { a href={ (base) "/roles/" (segment(&role.name)) } { (role.name) } }
                            td { @for p in &role.permissions { code { (p) } " " } }
                            td { (role.managed_by.as_str()) }
                        }
                    }
                }
            } }
            @if roles.items.is_empty() { p { "No role matches." } }
            (next_link(&format!("{base}/roles"), &filters, roles.next.as_deref()))
        };
        Ok(self.page(StatusCode::OK, "Roles", Some(Section::Roles), body))
    }

    /// The permissions the tenant's resource rules ask for: what a role is usually given.
    fn known_permissions(&self) -> Vec<&str> {
        let mut known: Vec<&str> = self
            .console
            .tenant
            .rules
            .iter()
            .flat_map(|r| r.permissions.iter().map(|p| p.as_str()))
            .collect();
        known.sort_unstable();
        known.dedup();
        known
    }

    fn role_form(
        &self,
        status: StatusCode,
        form: &RoleForm<'_>,
    ) -> Result<Response<Body>, ApiError> {
        let base = &self.console.base;
        let error_of = |name: &str| {
            form.error
                .as_ref()
                .filter(|(f, _)| *f == name)
                .map(|(_, m)| m.as_str())
        };
        let action = match form.existing {
            Some(name) => format!("{base}/roles/{}", segment(name)),
            None => format!("{base}/roles/new"),
        };
        let known = self.known_permissions();
        let note = match form.existing {
            Some(_) => self.query()?.get("done").map(str::to_owned),
            None => None,
        };
        let body = html! {
            (done_note(note.as_deref()))
            @if let Some((_, message)) = &form.error { (page::message(message)) }
            form.card method="post" action=(action) {
                (csrf(&self.session))
                @if form.existing.is_none() {
                    (field("Name", "name", "text", form.name, error_of("name")))
                }
                (lines_field("Permissions", "permissions", form.permissions,
                    "One permission per line, such as /permission/admin/manage/identity/usermgt.",
                    error_of("permissions")))
                @if !known.is_empty() {
                    details {
                        summary { "Permissions the resource rules ask for" }
                        ul { @for p in &known { li { code { (p) } } } }
                    }
                }
                div.actions {
                    button type="submit" {
                        @if form.existing.is_some() { "Save permissions" } @else { "Create role" }
                    }
                }
            }
            @if let Some(name) = form.existing {
                (self.delete_role_link(&ManagedBy::Api, &format!("roles/{}", segment(name))))
            }
        };
        let title = match form.existing {
            Some(name) => format!("Role {name}"),
            None => "New role".to_owned(),
        };
        Ok(self.page(status, &title, Some(Section::Roles), body))
    }

    pub(super) fn new_role_form(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "roles", self.origin())?;
        let empty = RoleForm {
            existing: None,
            name: "",
            permissions: "",
            error: None,
        };
        self.role_form(StatusCode::OK, &empty)
    }

    pub(super) async fn create_role(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "roles", self.origin())?;
        let form = self.form()?;
        let name = form.get("name").unwrap_or_default().trim();
        let permissions = form.get("permissions").unwrap_or_default();
        let request = RoleRequest {
            name: name.to_owned(),
            permissions: lines(permissions),
        };
        let error = match self.console.gateway.create_role(&admin, request).await {
            Ok(role) => {
                return Ok(self.done(
                    &format!("roles/{}", segment(&role.name)),
                    &format!("Role {} was created.", role.name),
                ))
            }
            Err(Error::Invalid { field, message }) => {
                (StatusCode::BAD_REQUEST, role_field(&field), message)
            }
            Err(Error::Duplicate(_)) => (
                StatusCode::CONFLICT,
                "name",
                "a role with this name already exists".to_owned(),
            ),
            Err(e) => return Err(e.into()),
        };
        let (status, field, message) = error;
        let again = RoleForm {
            existing: None,
            name,
            permissions,
            error: Some((field, format!("{field}: {message}"))),
        };
        self.role_form(status, &again)
    }

    pub(super) async fn role(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("roles/{}", segment(name));
        let admin = self.session.admin("GET", &path, self.origin())?;
        let role = self.console.gateway.get_role(&admin, name).await?;
        let editable = role.managed_by == ManagedBy::Api && self.session.may("PUT", &path);
        if editable {
            let permissions = role.permissions.join("\n");
            let form = RoleForm {
                existing: Some(name),
                name,
                permissions: &permissions,
                error: None,
            };
            return self.role_form(StatusCode::OK, &form);
        }
        let body = html! {
            (done_note(self.query()?.get("done")))
            @if role.managed_by == ManagedBy::File { (from_file_note(self.console.tenant.domain.as_str())) }
            h2 { "Permissions" }
            @if role.permissions.is_empty() { p { "None." } }
            ul { @for p in &role.permissions { li { code { (p) } } } }
            (self.delete_role_link(&role.managed_by, &path))
        };
        Ok(self.page(
            StatusCode::OK,
            &format!("Role {name}"),
            Some(Section::Roles),
            body,
        ))
    }

    fn delete_role_link(&self, managed_by: &ManagedBy, path: &str) -> Markup {
        let base = &self.console.base;
        html! {
            @if *managed_by == ManagedBy::Api && self.session.may("DELETE", path) {
                p { a.button.danger href={ (base) "/" (path) "/delete" } { "Delete" } }
            }
        }
    }

    pub(super) async fn update_role(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("roles/{}", segment(name));
        let admin = self.session.admin("PUT", &path, self.origin())?;
        let form = self.form()?;
        let permissions = form.get("permissions").unwrap_or_default();
        let request = PermissionsRequest {
            permissions: lines(permissions),
        };
        match self
            .console
            .gateway
            .update_role(&admin, name, request)
            .await
        {
            Ok(_) => Ok(self.done(&path, "The permissions were saved.")),
            Err(Error::Invalid { field, message }) => {
                let field = role_field(&field);
                let again = RoleForm {
                    existing: Some(name),
                    name,
                    permissions,
                    error: Some((field, format!("{field}: {message}"))),
                };
                self.role_form(StatusCode::BAD_REQUEST, &again)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn confirm_delete_role(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("roles/{}", segment(name));
        self.session.admin("DELETE", &path, self.origin())?;
        let question = html! {
            p { "Delete the role " strong { (name) } "? Its users lose its permissions at once." }
        };
        Ok(self.confirm(
            Section::Roles,
            "Delete role",
            question,
            &format!("{path}/delete"),
            "Delete",
            &path,
        ))
    }

    pub(super) async fn delete_role(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let path = format!("roles/{}", segment(name));
        let admin = self.session.admin("DELETE", &path, self.origin())?;
        if let Some(sign_in) = self.needs_sign_in(&format!("{path}/delete")) {
            return Ok(sign_in);
        }
        self.console.gateway.delete_role(&admin, name).await?;
        Ok(self.done("roles", &format!("Role {name} was deleted.")))
    }
}
