//! The Users pages: the list with search, filters and bulk actions; a new user; a
//! user's page with its roles, state, password and live grants.

use super::page::{
    self, check_box, csrf, done_note, field, head_row, next_link, optional_field, search_field,
    segment, time, Section, PAGE_SIZE,
};
use super::Signed;
use crate::domain::principal::Profile;
use crate::http::form::Form;
use crate::http::{ApiError, Body};
use crate::service::admin::{
    BulkAction, BulkRequest, EnabledRequest, GrantsOf, ListRequest, NewUserRequest,
    PasswordRequest, RevokeRequest, RolesRequest, MAX_PAGE,
};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};
use secrecy::SecretString;

/// The prefix of a user's checkbox in the list (`user:alice`) and of a role's on a
/// user's page (`role:admin`): one name each, so no parameter repeats.
const USER_BOX: &str = "user:";
const ROLE_BOX: &str = "role:";

/// The names of the checked boxes that start with `prefix`.
fn checked<'f>(form: &'f Form, prefix: &str) -> Vec<&'f str> {
    form.names()
        .filter_map(|n| n.strip_prefix(prefix))
        .map(|n| n.trim_end_matches('\0'))
        .collect()
}

fn bulk_action(word: Option<&str>) -> Option<(BulkAction, &'static str)> {
    match word {
        Some("disable") => Some((BulkAction::Disable, "Disable")),
        Some("enable") => Some((BulkAction::Enable, "Enable")),
        Some("unlock") => Some((BulkAction::Unlock, "Unlock")),
        Some("delete") => Some((BulkAction::Delete, "Delete")),
        _ => None,
    }
}

/// What a failed form on a user's page sent back: the field marked, and what was
/// typed (never a password).
pub(super) enum Failed<'a> {
    Password(&'a str),
    Profile {
        typed: &'a Profile,
        field: &'a str,
        message: &'a str,
    },
}

/// A yes/no filter from a `<select>`: any other value means either.
fn filter(value: Option<&str>) -> Option<bool> {
    match value {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

fn yes_no_any(name: &str, label: &str, value: Option<bool>) -> Markup {
    let id = format!("filter-{name}");
    html! {
        div {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" selected[value.is_none()] { "Either" }
                option value="yes" selected[value == Some(true)] { "Yes" }
                option value="no" selected[value == Some(false)] { "No" }
            }
        }
    }
}

impl Signed<'_> {
    pub(super) async fn users(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "users", self.origin())?;
        let query = self.query()?;
        let q = query.non_empty("q").map(str::to_owned);
        let (enabled, locked) = (filter(query.get("enabled")), filter(query.get("locked")));
        let request = ListRequest {
            limit: Some(PAGE_SIZE),
            after: query.non_empty("after").map(str::to_owned),
            q: q.clone(),
        };
        let g = self.console.gateway;
        let users = g.list_users(&admin, &request, enabled, locked).await?;
        let base = &self.console.base;
        let may_bulk = self.session.may("POST", "users/bulk");
        let mut filters = Vec::new();
        if let Some(q) = &q {
            filters.push(("q", q.as_str()));
        }
        for (name, value) in [("enabled", enabled), ("locked", locked)] {
            if let Some(v) = value {
                filters.push((name, if v { "yes" } else { "no" }));
            }
        }
        let body = html! {
            (done_note(query.get("done")))
            @if self.session.may("POST", "users") {
                p { a.button href={ (base) "/users/new" } { "New user" } }
            }
            form.filters method="get" action={ (base) "/users" } role="search" {
                (search_field(q.as_deref(), "Usernames that start with this."))
                (yes_no_any("enabled", "Enabled", enabled))
                (yes_no_any("locked", "Locked", locked))
                div { button type="submit" { "Filter" } }
            }
            form method="get" action={ (base) "/users/bulk" } {
                div.table tabindex="0" role="region" aria-label="Users" {
                    table {
                        caption.muted { "Users, by username" }
                        @if may_bulk {
                            (head_row(&["Select", "Username", "Roles", "Enabled", "Locked", "Managed by"]))
                        } @else {
                            (head_row(&["Username", "Roles", "Enabled", "Locked", "Managed by"]))
                        }
                        tbody {
                            @for user in &users.items {
                                tr {
                                    @if may_bulk {
                                        td { input type="checkbox" name={ (USER_BOX) (user.username) } id={ "select-" (user.username) } aria-label={ "Select " (user.username) }; }
                                    }
                                    td { a href={ (base) "/users/" (segment(&user.username)) } { (user.username) } }
                                    td { (user.roles.join(", ")) }
                                    td { @if user.enabled { "Yes" } @else { "No" } }
                                    td { @if user.locked { "Yes" } @else { "No" } }
                                    td { (user.managed_by.as_str()) }
                                }
                            }
                        }
                    }
                }
                @if users.items.is_empty() {
                    p { "No user matches." }
                }
                @if may_bulk && !users.items.is_empty() {
                    div.actions {
                        button type="submit" name="action" value="disable" { "Disable" }
                        button type="submit" name="action" value="enable" { "Enable" }
                        button type="submit" name="action" value="unlock" { "Unlock" }
                        button.danger type="submit" name="action" value="delete" { "Delete" }
                    }
                }
            }
            (next_link(&format!("{base}/users"), &filters, users.next.as_deref()))
        };
        Ok(self.page(StatusCode::OK, "Users", Some(Section::Users), body))
    }

    /// Every role of the tenant, for the checkboxes of a user.
    async fn role_names(&self) -> Result<Vec<String>, ApiError> {
        let admin = self.session.admin("GET", "roles", self.origin());
        let Ok(admin) = admin else {
            // Without the right to list roles, no roles are offered.
            return Ok(Vec::new());
        };
        let request = ListRequest {
            limit: Some(MAX_PAGE),
            ..ListRequest::default()
        };
        let roles = self.console.gateway.list_roles(&admin, &request).await?;
        Ok(roles.items.into_iter().map(|r| r.name).collect())
    }

    fn role_boxes(roles: &[String], checked: &[&str]) -> Markup {
        html! {
            fieldset {
                legend { "Roles" }
                @if roles.is_empty() { p.muted { "The tenant has no roles." } }
                @for role in roles {
                    label.check {
                        input type="checkbox" name={ (ROLE_BOX) (role) } checked[checked.contains(&role.as_str())];
                        (role)
                    }
                }
            }
        }
    }

    fn new_user_page(
        &self,
        status: StatusCode,
        roles: &[String],
        username: &str,
        checked: &[&str],
        error: Option<(&str, &str)>,
    ) -> Response<Body> {
        let base = &self.console.base;
        let error_of = |name: &str| error.filter(|(f, _)| *f == name).map(|(_, m)| m);
        let body = html! {
            // The summary at the top; the field itself says it again beside it.
            @if let Some((_, message)) = error { (page::message(message)) }
            form.card method="post" action={ (base) "/users/new" } {
                (csrf(&self.session))
                (field("Username", "username", "text", username, error_of("username")))
                (field("Password", "password", "password", "", error_of("password")))
                (Self::role_boxes(roles, checked))
                div.actions { button type="submit" { "Create user" } }
            }
        };
        self.page(status, "New user", Some(Section::Users), body)
    }

    pub(super) async fn new_user_form(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "users", self.origin())?;
        let roles = self.role_names().await?;
        Ok(self.new_user_page(StatusCode::OK, &roles, "", &[], None))
    }

    pub(super) async fn create_user(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "users", self.origin())?;
        let form = self.form()?;
        let username = form.get("username").unwrap_or_default().trim();
        let picked = checked(&form, ROLE_BOX);
        let request = NewUserRequest {
            username: username.to_owned(),
            password: SecretString::from(form.get("password").unwrap_or_default().to_owned()),
            roles: picked.iter().map(|r| (*r).to_owned()).collect(),
            // The profile is set on the user's page.
            name: None,
            email: None,
            email_verified: false,
        };
        match self.console.gateway.create_user(&admin, request).await {
            Ok(user) => Ok(self.done(
                &format!("users/{}", segment(&user.username)),
                &format!("User {} was created.", user.username),
            )),
            Err(Error::Invalid { field, message }) => {
                let roles = self.role_names().await?;
                let field = if field.starts_with("roles") {
                    "roles"
                } else {
                    &field
                };
                Ok(self.new_user_page(
                    StatusCode::BAD_REQUEST,
                    &roles,
                    username,
                    &picked,
                    Some((field, &format!("{field}: {message}"))),
                ))
            }
            Err(Error::Duplicate(_)) => {
                let roles = self.role_names().await?;
                Ok(self.new_user_page(
                    StatusCode::CONFLICT,
                    &roles,
                    username,
                    &picked,
                    Some(("username", "A user with this name already exists.")),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn user(
        &self,
        username: &str,
        failed: Option<Failed<'_>>,
    ) -> Result<Response<Body>, ApiError> {
        let password_error = match &failed {
            Some(Failed::Password(message)) => Some(*message),
            _ => None,
        };
        let path = format!("users/{}", segment(username));
        let admin = self.session.admin("GET", &path, self.origin())?;
        let g = self.console.gateway;
        let user = g.get_user(&admin, username).await?;
        let roles = self.role_names().await?;
        let grants = if self.session.may("GET", "tokens") {
            let request = ListRequest {
                limit: Some(PAGE_SIZE),
                ..ListRequest::default()
            };
            Some(
                g.list_grants(&admin, &request, GrantsOf::User(username.to_owned()))
                    .await?,
            )
        } else {
            None
        };
        let from_file = user.managed_by.as_str() == "file";
        let base = &self.console.base;
        let here = format!("{base}/{path}");
        let may = |method: &str, rest: &str| self.session.may(method, &format!("{path}/{rest}"));
        let query = self.query()?;
        let current: Vec<&str> = user.roles.iter().map(String::as_str).collect();
        let shown = &user.profile;
        let profile = Profile {
            name: shown.name.clone(),
            email: shown.email.clone(),
            email_verified: shown.email_verified.unwrap_or(false),
        };
        let body = html! {
            (done_note(query.get("done")))
            section aria-labelledby="state" {
                h2 id="state" { "State" }
                dl {
                    dt { "Enabled" } dd { @if user.enabled { "Yes" } @else { "No" } }
                    dt { "Locked" } dd {
                        @if let Some(until) = user.locked_until { "Yes, until " (time(until)) } @else { "No" }
                    }
                    dt { "Managed by" } dd {
                        @if from_file {
                            "the tenant file " code { "tenants/" (self.console.tenant.domain.as_str()) ".toml" }
                            ": its password and roles are changed there"
                        } @else { "the admin API and this console" }
                    }
                }
                div.actions {
                    @if may("PUT", "enabled") {
                        form method="post" action={ (here) "/enabled" } {
                            (csrf(&self.session))
                            @if user.enabled {
                                input type="hidden" name="enabled" value="false";
                                button type="submit" { "Disable" }
                            } @else {
                                input type="hidden" name="enabled" value="true";
                                button type="submit" { "Enable" }
                            }
                        }
                    }
                    @if user.locked && may("POST", "unlock") {
                        form method="post" action={ (here) "/unlock" } {
                            (csrf(&self.session))
                            button type="submit" { "Unlock" }
                        }
                    }
                    @if !from_file && self.session.may("DELETE", &path) {
                        a.button.danger href={ (here) "/delete" } { "Delete" }
                    }
                }
            }
            section aria-labelledby="roles" {
                h2 id="roles" { "Roles" }
                @if from_file || !may("PUT", "roles") {
                    p { @if current.is_empty() { "No roles." } @else { (current.join(", ")) } }
                } @else {
                    form method="post" action={ (here) "/roles" } {
                        (csrf(&self.session))
                        (Self::role_boxes(&roles, &current))
                        div.actions { button type="submit" { "Save roles" } }
                    }
                }
            }
            (self.profile_section(&here, &profile, from_file || !may("PUT", "profile"), failed.as_ref()))
            @if !from_file && may("PUT", "password") {
                section aria-labelledby="password" {
                    h2 id="password" { "Password" }
                    form method="post" action={ (here) "/password" } {
                        (csrf(&self.session))
                        (field("New password", "password", "password", "", password_error))
                        div.actions { button type="submit" { "Set password" } }
                    }
                }
            }
            @if let Some(grants) = &grants {
                section aria-labelledby="grants" {
                    h2 id="grants" { "Live grants" }
                    @if grants.items.is_empty() {
                        p { "No live grant." }
                    } @else {
                        div.table tabindex="0" role="region" aria-label="Live grants" { table {
                            (head_row(&["Client", "Started", "Last issued", "Active tokens", "Action"]))
                            tbody {
                                @for grant in &grants.items {
                                    tr {
                                        td { (grant.client_id) }
                                        td { (time(grant.started_at)) }
                                        td { (time(grant.last_issued_at)) }
                                        td { (grant.active_tokens) }
                                        td {
                                            @if self.session.may("POST", "tokens/revoke") {
                                                form method="post" action={ (here) "/revoke" } {
                                                    (csrf(&self.session))
                                                    input type="hidden" name="grant_id" value=(grant.grant_id);
                                                    button type="submit" aria-label={ "Revoke the grant of " (grant.client_id) " started " (time(grant.started_at)) } { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        } }
                    }
                }
            }
        };
        let status = match failed {
            Some(_) => StatusCode::BAD_REQUEST,
            None => StatusCode::OK,
        };
        Ok(self.page(
            status,
            &format!("User {}", user.username),
            Some(Section::Users),
            body,
        ))
    }

    /// The user's name, email and whether the email is verified: a form, or what it
    /// says when the user may not change it here.
    fn profile_section(
        &self,
        here: &str,
        profile: &Profile,
        read_only: bool,
        failed: Option<&Failed<'_>>,
    ) -> Markup {
        let (shown, error) = match failed {
            Some(Failed::Profile {
                typed,
                field,
                message,
            }) => (*typed, Some((*field, *message))),
            _ => (profile, None),
        };
        let error_of = |name: &str| error.filter(|(f, _)| *f == name).map(|(_, m)| m);
        html! {
            section aria-labelledby="profile" {
                h2 id="profile" { "Profile" }
                @if read_only {
                    dl {
                        dt { "Name" } dd { (profile.name.as_deref().unwrap_or("—")) }
                        dt { "Email" } dd { (profile.email.as_deref().unwrap_or("—")) }
                        dt { "Email verified" } dd { @if profile.email_verified { "Yes" } @else { "No" } }
                    }
                } @else {
                    form method="post" action={ (here) "/profile" } {
                        (csrf(&self.session))
                        (optional_field("Name", "name", "text", shown.name.as_deref().unwrap_or_default(), error_of("name")))
                        (optional_field("Email", "email", "email", shown.email.as_deref().unwrap_or_default(), error_of("email")))
                        @if let Some(error) = error_of("email_verified") { p.field-error { (error) } }
                        (check_box("Email verified", "email_verified", shown.email_verified))
                        div.actions { button type="submit" { "Save profile" } }
                    }
                }
            }
        }
    }

    pub(super) async fn save_profile(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("PUT", username, "/profile")?;
        let form = self.form()?;
        let text = |name: &str| form.non_empty(name).map(|v| v.trim().to_owned());
        let profile = Profile {
            name: text("name"),
            email: text("email"),
            email_verified: form.get("email_verified").is_some(),
        };
        match self
            .console
            .gateway
            .set_profile(&admin, username, profile.clone())
            .await
        {
            Ok(_) => Ok(self.back_to_user(username, "The profile was saved.")),
            Err(Error::Invalid { field, message }) => {
                let message = format!("{field}: {message}");
                let failed = Failed::Profile {
                    typed: &profile,
                    field: &field,
                    message: &message,
                };
                self.user(username, Some(failed)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    fn user_admin(
        &self,
        method: &str,
        username: &str,
        rest: &str,
    ) -> Result<crate::service::admin::Admin, ApiError> {
        let path = format!("users/{}{rest}", segment(username));
        Ok(self.session.admin(method, &path, self.origin())?)
    }

    fn back_to_user(&self, username: &str, note: &str) -> Response<Body> {
        self.done(&format!("users/{}", segment(username)), note)
    }

    pub(super) async fn save_roles(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("PUT", username, "/roles")?;
        let form = self.form()?;
        let roles = checked(&form, ROLE_BOX)
            .into_iter()
            .map(str::to_owned)
            .collect();
        self.console
            .gateway
            .set_roles(&admin, username, RolesRequest { roles })
            .await?;
        Ok(self.back_to_user(username, "The roles were saved."))
    }

    pub(super) async fn set_enabled(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("PUT", username, "/enabled")?;
        let enabled = self.form()?.get("enabled") == Some("true");
        self.console
            .gateway
            .set_enabled(&admin, username, EnabledRequest { enabled })
            .await?;
        let note = if enabled {
            "The user was enabled."
        } else {
            "The user was disabled; their tokens ended."
        };
        Ok(self.back_to_user(username, note))
    }

    pub(super) async fn unlock(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("POST", username, "/unlock")?;
        self.console.gateway.unlock_user(&admin, username).await?;
        Ok(self.back_to_user(username, "The user was unlocked."))
    }

    pub(super) async fn set_password(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("PUT", username, "/password")?;
        let form = self.form()?;
        let password = SecretString::from(form.get("password").unwrap_or_default().to_owned());
        let set = self
            .console
            .gateway
            .set_password(&admin, username, PasswordRequest { password })
            .await;
        match set {
            Ok(()) => {
                Ok(self.back_to_user(username, "The password was set; the user's tokens ended."))
            }
            Err(Error::Invalid { message, .. }) => {
                let message = format!("The new password {message}.");
                self.user(username, Some(Failed::Password(&message))).await
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn revoke_grant(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "tokens/revoke", self.origin())?;
        let form = self.form()?;
        let grant_id = form.non_empty("grant_id").map(str::to_owned);
        let request = RevokeRequest {
            token: None,
            username: None,
            client_id: None,
            grant_id,
        };
        let revoked = self.console.gateway.revoke_tokens(&admin, request).await?;
        Ok(self.back_to_user(
            username,
            &format!("The grant was revoked: {revoked} tokens ended."),
        ))
    }

    pub(super) fn confirm_delete(&self, username: &str) -> Result<Response<Body>, ApiError> {
        self.user_admin("DELETE", username, "")?;
        let question = html! {
            p { "Delete the user " strong { (username) } "? Their tokens end at once. This cannot be undone." }
        };
        let user = format!("users/{}", segment(username));
        Ok(self.confirm(
            Section::Users,
            "Delete user",
            question,
            &format!("{user}/delete"),
            "Delete",
            &user,
        ))
    }

    pub(super) async fn delete_user(&self, username: &str) -> Result<Response<Body>, ApiError> {
        let admin = self.user_admin("DELETE", username, "")?;
        if let Some(sign_in) = self.needs_sign_in(&format!("users/{}/delete", segment(username))) {
            return Ok(sign_in);
        }
        self.console.gateway.delete_user(&admin, username).await?;
        Ok(self.done("users", &format!("User {username} was deleted.")))
    }

    /// `GET users/bulk`: what the list's checked boxes and button asked, to confirm.
    pub(super) fn confirm_bulk(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "users/bulk", self.origin())?;
        let query = self.query()?;
        let Some((_, label)) = bulk_action(query.get("action")) else {
            return Err(ApiError::BadRequest(
                "choose Disable, Enable, Unlock or Delete".into(),
            ));
        };
        let names = checked(&query, USER_BOX);
        let uri = self.console.request.uri();
        let here = uri
            .path_and_query()
            .map_or(uri.path(), |p| p.as_str())
            .to_owned();
        if let Some(sign_in) = self.recent_sign_in(&here) {
            return Ok(sign_in);
        }
        let base = &self.console.base;
        let body = html! {
            @if names.is_empty() {
                p { "No user was selected. " a href={ (base) "/users" } { "Back to the users" } }
            } @else {
                p { (label) " these " (names.len()) " users?" }
                ul { @for name in &names { li { (name) } } }
                form method="post" action={ (base) "/users/bulk" } {
                    (csrf(&self.session))
                    input type="hidden" name="action" value=(query.get("action").unwrap_or_default());
                    @for name in &names {
                        input type="hidden" name={ (USER_BOX) (name) } value="on";
                    }
                    div.actions {
                        button.danger type="submit" { (label) }
                        a href={ (base) "/users" } { "Cancel" }
                    }
                }
            }
        };
        Ok(self.page(
            StatusCode::OK,
            &format!("{label} users"),
            Some(Section::Users),
            body,
        ))
    }

    pub(super) async fn bulk(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "users/bulk", self.origin())?;
        let form = self.form()?;
        let Some((action, label)) = bulk_action(form.get("action")) else {
            return Err(ApiError::BadRequest(
                "choose Disable, Enable, Unlock or Delete".into(),
            ));
        };
        if let Some(sign_in) = self.needs_sign_in("users") {
            return Ok(sign_in);
        }
        let usernames = checked(&form, USER_BOX)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let results = self
            .console
            .gateway
            .bulk_users(&admin, BulkRequest { action, usernames })
            .await?;
        let body = html! {
            p role="status" { (label) ": done. What happened to each user:" }
            div.table tabindex="0" role="region" aria-label="Outcomes" { table {
                (head_row(&["Username", "Outcome"]))
                tbody {
                    @for result in &results {
                        tr { td { (result.username) } td { (result.outcome.words()) } }
                    }
                }
            } }
            p { a href={ (self.console.base) "/users" } { "Back to the users" } }
        };
        Ok(self.page(
            StatusCode::OK,
            &format!("{label} users"),
            Some(Section::Users),
            body,
        ))
    }
}
