//! The console's sign-in and sessions. The console signs its users in through the
//! tenant's own authorization code flow, as the built-in public client
//! `portcullis-console` with PKCE and `state`, and redeems the code itself: the browser
//! gets an opaque session cookie and never a token. A browser signed in to the tenant
//! (single sign-on, `session.rs`) gets in without a password, as the `max_age` the
//! console sends allows.
//!
//! What the flow needs between its start and its callback (the `state`, the PKCE
//! verifier, where to go back to) travels in a cookie sealed with the master key, so
//! any instance can take the callback. Sessions live in the database for the same
//! reason. A session is checked at every request against its user as the directory
//! knows it, so disabling, deleting, locking or a new password ends it on every
//! instance as soon as the change reaches that instance's cache.

use super::admin::{Admin, Channel};
use super::authenticate::Lockable;
use super::redeem::Presenter;
use super::session::{password_mark, Remembered};
use super::token_text::{digest, presented_digest, random_string};
use super::{now, Error, Gateway, Origin, Result};
use crate::domain::audit::{Actor, AuditAction};
use crate::domain::client::{AccessTokenFormat, GrantType};
use crate::domain::console::{
    signed_in_recently, CONSOLE_CLIENT_ID, CONSOLE_SESSION, RECENT_SIGN_IN_SECONDS,
};
use crate::domain::permission::authorize;
use crate::domain::pkce::challenge_of;
use crate::domain::principal::qualified_name;
use crate::domain::tenant::Tenant;
use crate::domain::token::Revocation;
use crate::store::{
    AuditEvent, ChangedBy, ClientRecord, ConsoleSessionRecord, NewConsoleSession, SessionKind,
    Source, UserRecord,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// How long a started sign-in may take before its callback is refused.
const FLOW_SECONDS: i64 = 10 * 60;

/// The tenant's console client: public, code flow with PKCE only, redirecting to the
/// tenant's own console. Built for each request, never stored.
pub(super) fn console_client(tenant: &Tenant) -> ClientRecord {
    ClientRecord {
        id: 0,
        tenant_id: tenant.id,
        client_id: CONSOLE_CLIENT_ID.to_owned(),
        secret_hash: None,
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![callback_uri(tenant)],
        scopes: Vec::new(),
        require_pkce: true,
        name: Some("Console".to_owned()),
        access_token_format: AccessTokenFormat::Opaque,
        source: Source::File,
        failed_attempts: 0,
        locked_until: None,
    }
}

/// What the tenant's paths start with: nothing for the super tenant, `/t/{domain}`
/// for the others.
fn tenant_prefix(tenant: &Tenant) -> String {
    if tenant.is_super {
        String::new()
    } else {
        format!("/t/{}", tenant.domain)
    }
}

/// The path every console page of the tenant starts with.
pub fn console_path(tenant: &Tenant) -> String {
    format!("{}/console", tenant_prefix(tenant))
}

/// The admin API path a console page mirrors, as the tenant's resource rules see it.
fn api_path(tenant: &Tenant, rest: &str) -> String {
    format!("{}/api/v1/{rest}", tenant_prefix(tenant))
}

fn callback_uri(tenant: &Tenant) -> String {
    format!("{}/console/callback", tenant.issuer)
}

/// How recently the user must have entered the password for a console sign-in: the
/// `max_age` it sends, so that a single sign-on session serves only when it is young
/// enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAge {
    /// Within a console session's lifetime, so that the session does not start over.
    WithinSessionLifetime,
    /// Within the last five minutes, for a dangerous action.
    Recent,
}

impl PasswordAge {
    fn max_age(self) -> i64 {
        match self {
            PasswordAge::WithinSessionLifetime => CONSOLE_SESSION.lifetime_seconds,
            PasswordAge::Recent => RECENT_SIGN_IN_SECONDS,
        }
    }
}

/// A started sign-in: where to send the browser, and the sealed cookie to set.
#[derive(Debug)]
pub struct SignInStarted {
    pub location: String,
    pub flow_cookie: String,
}

/// A finished sign-in: the session cookie's value, and the console page to go back to.
#[allow(missing_debug_implementations, reason = "holds the session's cookie")]
pub struct SessionStarted {
    pub cookie: SecretString,
    pub return_to: String,
}

/// A live session, checked for this request.
#[allow(
    missing_debug_implementations,
    reason = "holds the user's password hash"
)]
pub struct ConsoleSession {
    tenant: Arc<Tenant>,
    record: ConsoleSessionRecord,
    user: Arc<UserRecord>,
}

impl ConsoleSession {
    /// `username@tenant`, as the page shows who is signed in.
    pub fn signed_in_as(&self) -> String {
        qualified_name(&self.user.username, &self.tenant.domain)
    }

    /// The synchronizer token every form of this session must carry.
    pub fn csrf(&self) -> &str {
        &self.record.csrf
    }

    /// Whether the session's token is the one a form sent (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        bool::from(self.record.csrf.as_bytes().ct_eq(sent.as_bytes()))
    }

    /// Whether the sign-in is recent enough for a dangerous action.
    pub fn signed_in_recently(&self) -> bool {
        signed_in_recently(self.record.signed_in_at, now())
    }

    /// Whether the tenant's resource rules let this user call the admin API's `method`
    /// on `rest` (the path after `/api/v1/`): what the console shows. Tenants are
    /// managed from the super tenant only, as in the API, whatever the rules say.
    pub fn may(&self, method: &str, rest: &str) -> bool {
        let tenants = rest == "tenants" || rest.starts_with("tenants/");
        if tenants && !self.tenant.is_super {
            return false;
        }
        let path = api_path(&self.tenant, rest);
        authorize(&self.user.permissions, &self.tenant.rules, method, &path).is_ok()
    }

    /// The admin who acts for this session on `rest`, once the resource rules allow
    /// `method` on the admin API path the page mirrors: what the console does.
    pub fn admin(&self, method: &str, rest: &str, origin: &Origin) -> Result<Admin> {
        if !self.may(method, rest) {
            return Err(Error::Forbidden);
        }
        Ok(Admin {
            tenant: self.tenant.clone(),
            name: self.signed_in_as(),
            origin: origin.clone(),
            channel: Channel::Console,
        })
    }
}

/// The sealed cookie's context: a flow started for one tenant ends in that one only.
fn flow_context(tenant: &Tenant) -> String {
    format!("console-flow:{}", tenant.id.get())
}

impl Gateway {
    /// Starts a sign-in that comes back to `return_to`, a console path of this tenant
    /// (any other value comes back to the console's first page), with a password
    /// entered within `age`.
    pub fn start_console_sign_in(
        &self,
        tenant: &Tenant,
        return_to: &str,
        age: PasswordAge,
    ) -> SignInStarted {
        let home = format!("{}/", console_path(tenant));
        let return_to = if is_console_page(tenant, return_to) {
            return_to
        } else {
            &home
        };
        let state = random_string(16);
        let verifier = random_string(32);
        let flow = format!("{state}\n{verifier}\n{}\n{return_to}", now());
        let sealed = self
            .keys
            .seal_with_master(flow.as_bytes(), flow_context(tenant).as_bytes());
        let authorize = format!("{}/oauth2/authorize", tenant_prefix(tenant));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CONSOLE_CLIENT_ID)
            .append_pair("redirect_uri", &callback_uri(tenant))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge_of(&verifier))
            .append_pair("code_challenge_method", "S256")
            .append_pair("max_age", &age.max_age().to_string())
            .finish();
        SignInStarted {
            location: format!("{authorize}?{query}"),
            flow_cookie: URL_SAFE_NO_PAD.encode(sealed),
        }
    }

    /// Redeems the code the sign-in page sent back and starts a session. `None` when
    /// the flow cookie is missing, foreign, stale or of another `state`, or the code
    /// does not redeem: the caller shows one page for all, and a new sign-in.
    /// `replaces` is the browser's current session cookie, ended when the new one
    /// starts.
    pub async fn finish_console_sign_in(
        &self,
        tenant: &Tenant,
        flow_cookie: Option<&str>,
        code: &str,
        state: &str,
        replaces: Option<&str>,
        origin: &Origin,
    ) -> Result<Option<SessionStarted>> {
        let Some(flow) = flow_cookie.and_then(|cookie| self.open_flow(tenant, cookie)) else {
            return Ok(None);
        };
        let now = now();
        let fresh = now - flow.started_at < FLOW_SECONDS;
        if !fresh || !bool::from(flow.state.as_bytes().ct_eq(state.as_bytes())) {
            return Ok(None);
        }
        let client = console_client(tenant);
        let presenter = Presenter {
            client: &client,
            by: ChangedBy::from_address(Actor::client(CONSOLE_CLIENT_ID), origin.address()),
        };
        let exchanged = self
            .exchange_code(
                tenant,
                &presenter,
                &SecretString::from(code.to_owned()),
                Some(&callback_uri(tenant)),
                Some(&SecretString::from(flow.verifier)),
                now,
            )
            .await;
        let exchanged = match exchanged {
            Ok(exchanged) => exchanged,
            Err(Error::InvalidGrant(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let user = self
            .directory
            .user(&*self.store, tenant.id, &exchanged.username)
            .await?;
        let Some(user) = user.filter(|u| u.usable(now)) else {
            return Ok(None);
        };
        let cookie = random_string(32);
        let csrf = random_string(32);
        let mark = password_mark(&user);
        let session = NewConsoleSession {
            tenant_id: tenant.id,
            digest: &digest(&cookie),
            username: &user.username,
            grant_id: &exchanged.grant_id,
            password_mark: &mark,
            csrf: &csrf,
            // The sign-in may be a single sign-on session's: its age is the password's.
            signed_in_at: exchanged.auth_time.unwrap_or(now),
            now,
        };
        let replaced = match replaces.and_then(presented_digest) {
            Some(old) => self.store.console_session(&old).await?,
            None => None,
        };
        let name = qualified_name(&user.username, &tenant.domain);
        let audit = AuditEvent::new(
            tenant.id,
            now,
            &Actor::user(&name),
            AuditAction::ConsoleSignIn,
            &user.username,
            origin.address(),
        )
        .made_via(Some("console"));
        self.store
            .start_console_session(&session, replaced.map(|r| r.id), &audit)
            .await?;
        Ok(Some(SessionStarted {
            cookie: SecretString::from(cookie),
            return_to: flow.return_to,
        }))
    }

    /// The live session this cookie names in this tenant's console; `None` for no
    /// session, another tenant's, one that has ended, or one whose user may no longer
    /// sign in as it did. An ended session is deleted.
    pub async fn console_session(
        &self,
        tenant: &Arc<Tenant>,
        cookie: &str,
    ) -> Result<Option<ConsoleSession>> {
        let Some(digest) = presented_digest(cookie) else {
            return Ok(None);
        };
        let Some(record) = self.store.console_session(&digest).await? else {
            return Ok(None);
        };
        if record.tenant_id != tenant.id {
            // Another tenant's session: refused here, and left alone there.
            return Ok(None);
        }
        let remembered = Remembered {
            kind: SessionKind::Console,
            id: record.id,
            username: &record.username,
            password_mark: &record.password_mark,
            signed_in_at: record.signed_in_at,
            last_seen_at: record.last_seen_at,
        };
        let Some(user) = self.session_user(tenant, remembered).await? else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            tenant: tenant.clone(),
            record,
            user,
        }))
    }

    /// Ends the session at "Sign out", with the browser's single sign-on session
    /// (`sign_in`, its cookie), and revokes the grant its sign-in began.
    pub async fn sign_out_of_console(
        &self,
        session: &ConsoleSession,
        sign_in: Option<&str>,
        origin: &Origin,
    ) -> Result<()> {
        if let Some(sign_in) = self.sign_in_session(&session.tenant, sign_in).await? {
            self.end_sign_in_session(&session.tenant, &sign_in, None)
                .await?;
        }
        let now = now();
        let name = session.signed_in_as();
        let audit = AuditEvent::new(
            session.tenant.id,
            now,
            &Actor::user(&name),
            AuditAction::ConsoleSignOut,
            &session.user.username,
            origin.address(),
        )
        .made_via(Some("console"));
        self.store
            .end_session(SessionKind::Console, session.record.id, Some(&audit))
            .await?;
        let by = ChangedBy::from_address(Actor::client(CONSOLE_CLIENT_ID), origin.address());
        self.revoke_grant(
            &session.tenant,
            &session.record.grant_id,
            Revocation::ByClient,
            now,
            &by,
        )
        .await
    }

    /// Deletes the console sessions that ended unseen; answers how many.
    pub async fn end_stale_console_sessions(&self) -> Result<u64> {
        self.end_stale_sessions(SessionKind::Console).await
    }

    /// The flow a cookie carries, if this server sealed it for this tenant.
    fn open_flow(&self, tenant: &Tenant, cookie: &str) -> Option<Flow> {
        let sealed = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        let opened = self
            .keys
            .open_with_master(&sealed, flow_context(tenant).as_bytes())?;
        let text = String::from_utf8(opened).ok()?;
        let mut parts = text.splitn(4, '\n');
        Some(Flow {
            state: parts.next()?.to_owned(),
            verifier: parts.next()?.to_owned(),
            started_at: parts.next()?.parse().ok()?,
            return_to: parts.next()?.to_owned(),
        })
    }
}

/// What a sign-in carries from its start to its callback.
struct Flow {
    state: String,
    verifier: String,
    started_at: i64,
    return_to: String,
}

/// Whether `path` is a page of this tenant's console: a path only, never another site.
fn is_console_page(tenant: &Tenant, path: &str) -> bool {
    let base = format!("{}/", console_path(tenant));
    path.starts_with(&base)
        && !path.contains("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
}
