//! The Tokens page: look a token up (its state, reason and grant history) and revoke
//! its grant. The token travels in a POST body only, never in a URL, and is never
//! shown back.

use super::page::{csrf, done_note, head_row, time, Section};
use super::Signed;
use crate::http::{ApiError, Body};
use crate::service::admin::{RevokeRequest, TokenRequest};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};
use secrecy::SecretString;

impl Signed<'_> {
    fn lookup_form(&self, error: Option<&str>) -> Markup {
        html! {
            form.card method="post" action={ (self.console.base) "/tokens/lookup" } {
                (csrf(&self.session))
                label for="token" { "Token" }
                @if let Some(error) = error {
                    input type="password" id="token" name="token" autocomplete="off" required aria-invalid="true" aria-describedby="token-error";
                    p.field-error id="token-error" { (error) }
                } @else {
                    input type="password" id="token" name="token" autocomplete="off" required aria-describedby="token-hint";
                    p.muted id="token-hint" { "An access token, a refresh token or a code of this tenant. It is not kept or shown." }
                }
                div.actions { button type="submit" { "Look up a token" } }
            }
        }
    }

    pub(super) fn token_form(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "tokens/lookup", self.origin())?;
        let query = self.query()?;
        let body = html! {
            (done_note(query.get("done")))
            (self.lookup_form(None))
        };
        Ok(self.page(StatusCode::OK, "Tokens", Some(Section::Tokens), body))
    }

    pub(super) async fn lookup_token(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "tokens/lookup", self.origin())?;
        let form = self.form()?;
        let token = SecretString::from(form.get("token").unwrap_or_default().trim().to_owned());
        let view = match self
            .console
            .gateway
            .lookup_token(&admin, TokenRequest { token })
            .await
        {
            Ok(view) => view,
            Err(Error::NotFound(_) | Error::Invalid { .. }) => {
                let body = self.lookup_form(Some("No token of this tenant has this value."));
                return Ok(self.page(StatusCode::NOT_FOUND, "Tokens", Some(Section::Tokens), body));
            }
            Err(e) => return Err(e.into()),
        };
        let may_revoke = self.session.may("POST", "tokens/revoke");
        let body = html! {
            section aria-labelledby="token-state" {
                h2 id="token-state" { "The token" }
                dl {
                    dt { "Kind" } dd { (view.kind) }
                    dt { "State" } dd { (view.state) }
                    dt { "Reason" } dd { (view.state_reason.unwrap_or("—")) }
                    dt { "Client" } dd { (view.client_id) }
                    dt { "User" } dd { (view.username.as_deref().unwrap_or("—")) }
                    dt { "Scope" } dd { @if view.scope.is_empty() { "—" } @else { (view.scope) } }
                    dt { "Issued" } dd { (time(view.iat)) }
                    dt { "Expires" } dd { (time(view.exp)) }
                }
                @if may_revoke && view.state == "ACTIVE" {
                    form method="post" action={ (self.console.base) "/tokens/revoke" } {
                        (csrf(&self.session))
                        input type="hidden" name="grant_id" value=(view.grant_id);
                        div.actions { button.danger type="submit" { "Revoke" } }
                        p.muted { "Revokes the token's whole grant: every token issued with it." }
                    }
                }
            }
            section aria-labelledby="history" {
                h2 id="history" { "Its grant" }
                p { "Started " (time(view.grant.started_at)) "." }
                div.table tabindex="0" role="region" aria-label="Tokens of the grant" { table {
                    (head_row(&["Kind", "Token id", "State", "Issued", "Ended", "By", "From"]))
                    tbody {
                        @for token in &view.grant.tokens {
                            tr {
                                td { (token.kind) }
                                td { code { (token.jti) } }
                                td { (token.state) @if let Some(r) = token.state_reason { " (" (r) ")" } }
                                td { (time(token.issued_at)) }
                                td { @if let Some(at) = token.ended_at { (time(at)) } @else { "—" } }
                                td { (token.ended_by.as_deref().unwrap_or("—")) }
                                td { (token.ended_from.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                } }
                @if !view.grant.admin_actions.is_empty() {
                    h2 { "Admin actions on it" }
                    ul {
                        @for action in &view.grant.admin_actions {
                            li { (time(action.at)) ": " (action.action) " by " (action.actor) " from " (action.client_address) }
                        }
                    }
                }
            }
            p { a href={ (self.console.base) "/tokens" } { "Look up another token" } }
        };
        Ok(self.page(StatusCode::OK, "Token", Some(Section::Tokens), body))
    }

    pub(super) async fn revoke_token_grant(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "tokens/revoke", self.origin())?;
        let form = self.form()?;
        let request = RevokeRequest {
            token: None,
            username: None,
            client_id: None,
            grant_id: form.non_empty("grant_id").map(str::to_owned),
        };
        let revoked = self.console.gateway.revoke_tokens(&admin, request).await?;
        Ok(self.done(
            "tokens",
            &format!("The grant was revoked: {revoked} tokens ended."),
        ))
    }
}
