//! The Keys page: the tenant's signing keys with their states, and rotating them.

use super::page::{done_note, head_row, time, Section};
use super::Signed;
use crate::http::{ApiError, Body};
use crate::service::admin::KeyState;
use hyper::{Response, StatusCode};
use maud::html;

impl Signed<'_> {
    pub(super) async fn keys(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "keys", self.origin())?;
        let keys = self.console.gateway.list_keys(&admin).await?;
        let query = self.query()?;
        let body = html! {
            (done_note(query.get("done")))
            p { "The active key signs every signed introspection answer; a retiring key stays in the JWKS until what it signed has expired." }
            div.table tabindex="0" role="region" aria-label="Signing keys" { table {
                caption.muted { "Signing keys, the active one first" }
                (head_row(&["Key ID", "State", "Created", "Published until"]))
                tbody {
                    @for key in &keys {
                        tr {
                            td { code { (key.kid) } }
                            td { @match key.state { KeyState::Active => "Active", KeyState::Retiring => "Retiring" } }
                            td { (time(key.created_at)) }
                            td { @if let Some(until) = key.published_until { (time(until)) } @else { "—" } }
                        }
                    }
                }
            } }
            @if self.session.may("POST", "keys/rotate") {
                p { a.button href={ (self.console.base) "/keys/rotate" } { "Rotate" } }
            }
        };
        Ok(self.page(StatusCode::OK, "Keys", Some(Section::Keys), body))
    }

    pub(super) fn confirm_rotate_key(&self) -> Result<Response<Body>, ApiError> {
        self.session.admin("POST", "keys/rotate", self.origin())?;
        let question = html! {
            p { "Make a new signing key? The current key retires: it stays published so that what it signed still verifies." }
        };
        Ok(self.confirm(
            Section::Keys,
            "Rotate the signing key",
            question,
            "keys/rotate",
            "Rotate",
            "keys",
        ))
    }

    pub(super) async fn rotate_key(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("POST", "keys/rotate", self.origin())?;
        if let Some(sign_in) = self.needs_sign_in("keys/rotate") {
            return Ok(sign_in);
        }
        let key = self.console.gateway.rotate_key(&admin).await?;
        Ok(self.done("keys", &format!("Key {} signs from now on.", key.kid)))
    }
}
