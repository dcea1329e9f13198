//! Single sign-on: the session a sign-in on the sign-in page starts for its tenant, so
//! that the next authorization request of any application of the tenant gets its code
//! without a password (OpenID Connect Core §3.1.2.3).
//!
//! A session lives in the database, so any instance can use or end it. It is checked
//! at every use against its user as the directory knows it: disabling, deleting or
//! locking the user, or a new password, ends it on every instance as soon as the change
//! reaches that instance's cache, which cross-instance invalidation bounds (and which
//! fails closed while it cannot). The console's sessions are checked the same way.

use super::authenticate::Lockable;
use super::token_text::{digest, presented_digest, random_string};
use super::{now, Gateway, Origin, Result};
use crate::domain::audit::{Actor, AuditAction};
use crate::domain::console::CONSOLE_SESSION;
use crate::domain::principal::qualified_name;
use crate::domain::session::{SessionLimits, SessionState, SIGN_IN_SESSION};
use crate::domain::tenant::Tenant;
use crate::store::{AuditEvent, NewSignInSession, SessionKind, UserRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// A session's last use is written at most this often: a use is otherwise a read.
const TOUCH_EVERY_SECONDS: i64 = 30;

/// A signed-in user in a session: who a code is issued to, and the sign-in its ID
/// tokens describe.
#[allow(
    missing_debug_implementations,
    reason = "holds the user's password hash"
)]
pub struct SignedIn {
    pub user: Arc<UserRecord>,
    /// The session's public name: the `sid` of ID tokens.
    pub sid: String,
    /// When the user last entered the password.
    pub auth_time: i64,
}

/// A live sign-in session of one tenant, checked for this request.
#[allow(missing_debug_implementations, reason = "holds a user record")]
pub struct SignInSession {
    id: i64,
    pub signed_in: SignedIn,
}

/// A session just started: the cookie that names it, which only the browser keeps.
#[allow(missing_debug_implementations, reason = "holds the session's cookie")]
pub struct StartedSession {
    pub cookie: SecretString,
    pub signed_in: SignedIn,
}

/// A digest of a password hash: a session remembers it to notice a new password.
pub(super) fn password_mark(user: &UserRecord) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(user.password_hash.as_bytes()))
}

/// How long a session of `kind` lives.
fn limits_of(kind: SessionKind) -> SessionLimits {
    match kind {
        SessionKind::Console => CONSOLE_SESSION,
        SessionKind::SignIn => SIGN_IN_SESSION,
    }
}

/// What every kind of session remembers of its sign-in, checked at each use.
#[derive(Debug, Clone, Copy)]
pub(super) struct Remembered<'a> {
    pub kind: SessionKind,
    pub id: i64,
    pub username: &'a str,
    pub password_mark: &'a str,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

impl Gateway {
    /// The user a session of `tenant` still belongs to: `None` once it is idle or over,
    /// or its user is gone, disabled, locked or has another password, as this
    /// instance's directory knows them. A session that ended is deleted; a live one's
    /// use is recorded, at most every [`TOUCH_EVERY_SECONDS`].
    pub(super) async fn session_user(
        &self,
        tenant: &Tenant,
        remembered: Remembered<'_>,
    ) -> Result<Option<Arc<UserRecord>>> {
        let now = now();
        let Remembered { kind, id, .. } = remembered;
        let state = limits_of(kind).state(remembered.signed_in_at, remembered.last_seen_at, now);
        let user = if state == SessionState::Live {
            self.directory
                .user(&*self.store, tenant.id, remembered.username)
                .await?
                .filter(|u| u.usable(now) && password_mark(u) == remembered.password_mark)
        } else {
            None
        };
        if user.is_none() {
            self.store.end_session(kind, id, None).await?;
        } else if now - remembered.last_seen_at >= TOUCH_EVERY_SECONDS {
            self.store.touch_session(kind, id, now).await?;
        }
        Ok(user)
    }

    /// Deletes the sessions of `kind` that ended without being used again, idle or
    /// over; answers how many. The purge calls it every minute, on every instance: a
    /// deletion twice is no harm.
    pub(super) async fn end_stale_sessions(&self, kind: SessionKind) -> Result<u64> {
        let now = now();
        let limits = limits_of(kind);
        let ended = self
            .store
            .end_stale_sessions(
                kind,
                now - limits.idle_seconds,
                now - limits.lifetime_seconds,
            )
            .await?;
        Ok(ended)
    }

    /// The live session this cookie names in `tenant`; `None` for no cookie, another
    /// tenant's session, one that has ended, or one whose user may no longer sign in as
    /// they did. An ended session is deleted.
    pub async fn sign_in_session(
        &self,
        tenant: &Tenant,
        cookie: Option<&str>,
    ) -> Result<Option<SignInSession>> {
        let Some(digest) = cookie.and_then(presented_digest) else {
            return Ok(None);
        };
        let Some(record) = self.store.sign_in_session(&digest).await? else {
            return Ok(None);
        };
        if record.tenant_id != tenant.id {
            return Ok(None);
        }
        let remembered = Remembered {
            kind: SessionKind::SignIn,
            id: record.id,
            username: &record.username,
            password_mark: &record.password_mark,
            signed_in_at: record.signed_in_at,
            last_seen_at: record.last_seen_at,
        };
        let Some(user) = self.session_user(tenant, remembered).await? else {
            return Ok(None);
        };
        Ok(Some(SignInSession {
            id: record.id,
            signed_in: SignedIn {
                user,
                sid: record.sid,
                auth_time: record.signed_in_at,
            },
        }))
    }

    /// Starts the session of a sign-in with the password just now, replacing the
    /// browser's `current` one. The same user keeps the session's `sid` (a new sign-in
    /// of theirs, as `prompt=login` asks for); another user gets a new one. The cookie
    /// is new either way, so a cookie known before a sign-in is worthless after it.
    pub async fn start_sign_in_session(
        &self,
        tenant: &Tenant,
        user: Arc<UserRecord>,
        current: Option<&SignInSession>,
    ) -> Result<StartedSession> {
        let now = now();
        let sid = match current {
            Some(current) if current.signed_in.user.username == user.username => {
                current.signed_in.sid.clone()
            }
            _ => random_string(16),
        };
        let cookie = random_string(32);
        let mark = password_mark(&user);
        let new = NewSignInSession {
            tenant_id: tenant.id,
            digest: &digest(&cookie),
            sid: &sid,
            username: &user.username,
            password_mark: &mark,
            now,
        };
        self.store
            .start_sign_in_session(&new, current.map(|c| c.id))
            .await?;
        Ok(StartedSession {
            cookie: SecretString::from(cookie),
            signed_in: SignedIn {
                user,
                sid,
                auth_time: now,
            },
        })
    }

    /// Ends a session. A logout from `origin` is audited as the user's sign-out; the
    /// console's sign-out is audited as its own.
    pub async fn end_sign_in_session(
        &self,
        tenant: &Tenant,
        session: &SignInSession,
        logout_from: Option<&Origin>,
    ) -> Result<()> {
        let username = &session.signed_in.user.username;
        let name = qualified_name(username, &tenant.domain);
        let audit = logout_from.map(|origin| {
            AuditEvent::new(
                tenant.id,
                now(),
                &Actor::user(&name),
                AuditAction::UserSignOut,
                username,
                origin.address(),
            )
        });
        self.store
            .end_session(SessionKind::SignIn, session.id, audit.as_ref())
            .await?;
        Ok(())
    }

    /// Deletes the sign-in sessions that ended unseen; answers how many.
    pub async fn end_stale_sign_in_sessions(&self) -> Result<u64> {
        self.end_stale_sessions(SessionKind::SignIn).await
    }
}
