//! The rows the store reads and writes.

use crate::domain::audit::{Actor, AuditAction};
use crate::domain::client::{AccessTokenFormat, GrantType};
use crate::domain::ownership::ManagedBy;
use crate::domain::permission::Permission;
use crate::domain::principal::Profile;
use crate::domain::tenant::{TenantId, TenantSettings};
use crate::domain::token::{Event, Reason, State, TokenKind};
use serde::{Deserialize, Serialize};

/// Where an object came from; reconciliation only touches what the files declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    Api,
    Bootstrap,
}

/// The stored names, read back; anything else is a corrupt row.
impl TryFrom<String> for Source {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "file" => Ok(Source::File),
            "api" => Ok(Source::Api),
            "bootstrap" => Ok(Source::Bootstrap),
            _ => Err(format!("unknown source {name:?}")),
        }
    }
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Api => "api",
            Source::Bootstrap => "bootstrap",
        }
    }

    /// A tenant file owns what it declares; the bootstrap's objects are the API's to
    /// change.
    pub fn managed_by(self) -> ManagedBy {
        match self {
            Source::File => ManagedBy::File,
            Source::Api | Source::Bootstrap => ManagedBy::Api,
        }
    }
}

/// A resource rule as stored and as written in tenant files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRow {
    pub context: String,
    #[serde(default = "default_true")]
    pub secured: bool,
    #[serde(default = "default_method")]
    pub http_method: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

fn default_true() -> bool {
    true
}
fn default_method() -> String {
    "all".to_owned()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: TenantId,
    pub domain: String,
    pub active: bool,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub authorization_code_ttl: i64,
    pub grant_max_lifetime: i64,
    #[sqlx(json)]
    pub introspection_clients: Vec<String>,
    /// `None`: the default rules.
    #[sqlx(json(nullable))]
    pub resources: Option<Vec<RuleRow>>,
    /// The tenant's own rate limits; `None` follows the configuration.
    pub requests_per_caller: Option<i64>,
    pub requests_per_tenant: Option<i64>,
    /// Who owns the tenant's settings (lifetimes, introspection clients, rate limits).
    #[sqlx(try_from = "String")]
    pub source: Source,
    /// Who owns its resource rules: a file only when it has `[[resources]]`.
    #[sqlx(try_from = "String")]
    pub resources_source: Source,
}

/// A tenant to create or reconcile: what a tenant file, the bootstrap or the API
/// declares.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub domain: String,
    pub settings: TenantSettings,
    /// `None` keeps the default rules (or, for a tenant that exists, its rules).
    pub resources: Option<Vec<RuleRow>>,
}

impl NewTenant {
    /// A tenant with the default lifetimes, rules and limits: the bootstrap's super
    /// tenant and tenants created through the API.
    pub fn defaults(domain: String) -> Self {
        NewTenant {
            domain,
            settings: TenantSettings::default(),
            resources: None,
        }
    }
}

/// A user with the permissions of all their roles.
#[derive(Clone)]
#[allow(missing_debug_implementations, reason = "holds a password hash")]
pub struct UserRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub enabled: bool,
    pub roles: Vec<String>,
    /// The union of the roles' permissions, parsed once when the record is loaded.
    pub permissions: Vec<Permission>,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    /// Who owns its password and roles: a tenant file, or the admin API.
    pub source: Source,
    /// The `sub` of its ID tokens: random, given once to the row, never reused.
    pub subject: String,
    pub profile: Profile,
}

/// A user to create or reconcile.
#[allow(missing_debug_implementations, reason = "holds a password hash")]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub roles: &'a [String],
    pub profile: &'a Profile,
}

#[derive(Clone, sqlx::FromRow)]
#[allow(missing_debug_implementations, reason = "holds a secret hash")]
pub struct ClientRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub client_id: String,
    /// argon2id PHC string; `None` for a public client.
    pub secret_hash: Option<String>,
    #[sqlx(json)]
    pub grant_types: Vec<GrantType>,
    #[sqlx(json)]
    pub redirect_uris: Vec<String>,
    /// Allowed scopes; empty means any.
    #[sqlx(json)]
    pub scopes: Vec<String>,
    /// PKCE S256 required at the code grant (false only for a legacy confidential client).
    pub require_pkce: bool,
    /// What people call it, when it was given a name.
    pub name: Option<String>,
    /// Opaque access tokens, or JWT access tokens (RFC 9068).
    #[sqlx(try_from = "String")]
    pub access_token_format: AccessTokenFormat,
    /// Who owns its registration: a tenant file, or the admin API.
    #[sqlx(try_from = "String")]
    pub source: Source,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

impl ClientRecord {
    /// Whether the client was given this grant.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// A client to create or reconcile.
#[allow(missing_debug_implementations, reason = "holds a secret hash")]
pub struct NewClient<'a> {
    pub client_id: &'a str,
    pub secret_hash: Option<&'a str>,
    pub grant_types: &'a [GrantType],
    pub redirect_uris: &'a [String],
    pub scopes: &'a [String],
    pub require_pkce: bool,
    pub name: Option<&'a str>,
    pub access_token_format: AccessTokenFormat,
}

/// What an edit of a client's registration sets: everything but its id and secret.
#[derive(Debug)]
pub struct ClientEdit<'a> {
    pub grant_types: &'a [GrantType],
    pub redirect_uris: &'a [String],
    pub scopes: &'a [String],
    pub require_pkce: bool,
    pub name: Option<&'a str>,
    pub access_token_format: AccessTokenFormat,
}

/// SHA-256 of a token's plaintext: the only form in which a token is stored.
pub type Digest = [u8; 32];

/// A token about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub tenant_id: TenantId,
    pub kind: TokenKind,
    pub digest: Digest,
    pub jti: String,
    pub grant_id: String,
    /// When the grant's first token was issued; a refresh chain ends
    /// `grant_max_lifetime` after it.
    pub grant_started_at: i64,
    /// For an access token: the refresh token issued with it.
    pub refresh_digest: Option<Digest>,
    pub client_id: String,
    pub username: Option<String>,
    pub scope: String,
    pub issued_at: i64,
    pub not_before: i64,
    pub expires_at: i64,
    /// For a code: the redirect URI its request named, which the exchange must repeat.
    pub redirect_uri: Option<String>,
    /// For a code: the PKCE S256 challenge the exchange's verifier must meet.
    pub code_challenge: Option<String>,
    /// For a code: the `nonce` of its OpenID Connect request, for its ID token.
    pub nonce: Option<String>,
    /// When the grant's user entered the password, for a grant that began with a
    /// sign-in (a code): every ID token of the grant says so.
    pub auth_time: Option<i64>,
    /// The sign-in session the grant began in (its `sid`), for a grant that began with a
    /// code: every ID token of the grant names it.
    pub sid: Option<String>,
}

/// A stored token and its current state.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: i64,
    pub token: NewToken,
    pub state: State,
    pub state_reason: Option<Reason>,
    pub state_changed_at: Option<i64>,
    pub state_changed_by: Option<String>,
    /// The address of the request that changed the state, when one did.
    pub state_changed_from: Option<String>,
}

/// Whose grants a list shows: a user's or a client's.
#[derive(Debug, Clone)]
pub enum GrantHolder {
    User(String),
    Client(String),
}

/// A grant that still has an active token: one authorization, across its refreshes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveGrant {
    pub grant_id: String,
    pub started_at: i64,
    pub client_id: String,
    pub username: Option<String>,
    /// The newest token's issue time.
    pub last_issued_at: i64,
    pub active_tokens: i64,
}

/// One page of a holder's live grants, newest first: those that started before
/// `before` (a start time and a grant id), at most `limit`.
#[derive(Debug, Clone)]
pub struct GrantPage {
    pub holder: GrantHolder,
    pub before: Option<(i64, String)>,
    pub now: i64,
    pub limit: i64,
}

/// Who changes a token's state, and from which address when a request does: what a
/// grant's history shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedBy {
    pub actor: Actor,
    pub address: Option<String>,
}

impl ChangedBy {
    pub fn from_address(actor: Actor, address: String) -> Self {
        ChangedBy {
            actor,
            address: Some(address),
        }
    }
}

/// The gateway itself (an expiry), or a test, acting from nowhere.
impl From<Actor> for ChangedBy {
    fn from(actor: Actor) -> Self {
        ChangedBy {
            actor,
            address: None,
        }
    }
}

/// Which tokens a bulk state change touches, always within one tenant.
#[derive(Debug, Clone)]
pub enum Selection {
    /// One token.
    Token(i64),
    /// Every token of a grant (one authorization, across its refreshes).
    Grant(String),
    /// The access tokens issued together with this refresh token.
    IssuedWith(Digest),
    /// The refresh token this access token was issued with.
    RefreshOf(Digest),
    /// Every token a user owns.
    Owner(String),
    /// Every token issued to a client.
    Client(String),
    /// Every token of the tenant.
    Tenant,
}

/// One step of a bulk state change: `event`, applied to the tokens of `kind` that
/// `selection` picks, where the state machine lets them move.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: TokenKind,
    pub selection: Selection,
    pub event: Event,
}

impl Step {
    pub fn new(kind: TokenKind, selection: Selection, event: Event) -> Self {
        Step {
            kind,
            selection,
            event,
        }
    }

    /// `event` for the access and the refresh tokens `selection` picks: how a grant, an
    /// owner or a client loses its tokens.
    pub fn access_and_refresh(selection: Selection, event: Event) -> [Step; 2] {
        [TokenKind::Access, TokenKind::Refresh]
            .map(|kind| Step::new(kind, selection.clone(), event))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRecord {
    pub name: String,
    #[sqlx(json)]
    pub permissions: Vec<String>,
    /// Who owns its permissions: a tenant file, or the admin API (or the bootstrap).
    #[sqlx(try_from = "String")]
    pub source: Source,
}

/// What a bulk action does to every user it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkUserChange {
    Disable,
    Enable,
    Unlock,
    Delete,
}

/// A change to a user, and what it does to the user's tokens.
#[derive(Debug, Clone, Copy)]
pub enum UserChange<'a> {
    Password(&'a str),
    Enabled(bool),
    Roles(&'a [String]),
    Profile(&'a Profile),
    Delete,
}

/// Whose sign-in failures are counted.
#[derive(Debug, Clone, Copy)]
pub enum LockTarget<'a> {
    User {
        tenant_id: TenantId,
        username: &'a str,
    },
    Client {
        client_id: &'a str,
    },
}

/// One audit log entry. Never holds a secret or a token. `id` is assigned by the
/// store; it is ignored when an event is written.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub tenant_id: TenantId,
    pub at: i64,
    /// Who acted, as [`Actor`] stores it: `admin@foo.com`, `system`, or the name a
    /// failed sign-in used.
    pub actor: String,
    /// What happened: an [`AuditAction`]'s name, `user.create`, `user.lock`, …
    pub action: String,
    /// What it happened to: a username, role, client id, token id, domain.
    pub target: String,
    pub client_address: String,
    /// What a change changed, when the action alone does not say (an edit's fields).
    pub detail: Option<String>,
    /// `console` for a change made in the console; `None` for the admin API and the
    /// gateway's own entries.
    pub via: Option<String>,
}

impl AuditEvent {
    /// An entry to write, by `actor`, from `client_address`.
    pub fn new(
        tenant_id: TenantId,
        at: i64,
        actor: &Actor,
        action: AuditAction,
        target: &str,
        client_address: String,
    ) -> Self {
        AuditEvent {
            id: 0,
            tenant_id,
            at,
            actor: actor.stored(),
            action: action.as_str().to_owned(),
            target: target.to_owned(),
            client_address,
            detail: None,
            via: None,
        }
    }

    /// The same entry, saying what the change changed.
    pub fn with_detail(self, detail: String) -> Self {
        AuditEvent {
            detail: Some(detail),
            ..self
        }
    }

    /// The same entry, saying through what the change was made (`console`).
    pub fn made_via(self, via: Option<&str>) -> Self {
        AuditEvent {
            via: via.map(str::to_owned),
            ..self
        }
    }
}

/// A tenant's signing key as stored: the public half in the clear, the private half
/// sealed under the master key (which the store never sees).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub tenant_id: TenantId,
    /// The domain of the tenant: what the sealed key is bound to.
    pub domain: String,
    pub kid: String,
    /// The uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    /// When a newer key took over; `None` while this one signs.
    pub retired_at: Option<i64>,
}

/// A signing key to store.
#[derive(Debug, Clone)]
pub struct NewSigningKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
}

/// The outcome of redeeming a single-use credential (a refresh token or a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The credential (and, for a refresh token, the access tokens issued with it) is
    /// INACTIVE and the new tokens are stored.
    Rotated,
    /// Another request used the credential first; nothing was written.
    Lost,
}

/// One page of a list kept in name order (byte order, on both databases): the names
/// after `after`, starting with `prefix`, at most `limit` of them.
#[derive(Debug, Clone)]
pub struct NamePage {
    pub after: Option<String>,
    pub prefix: Option<String>,
    pub limit: i64,
}

impl NamePage {
    /// The first name after every name that starts with the prefix: the prefix and the
    /// last code point, which no name of the prefix can pass.
    pub fn prefix_end(&self) -> Option<String> {
        self.prefix.as_ref().map(|p| format!("{p}\u{10FFFF}"))
    }
}

/// Which users a page holds, besides its window; `None` is either.
#[derive(Debug, Clone, Copy)]
pub struct UserFilter {
    pub enabled: Option<bool>,
    pub locked: Option<bool>,
    /// The time a lock is judged at.
    pub now: i64,
}

/// One page of the audit log, newest first by `(at, id)`: events after the cursor
/// `after` (or older than event `before`), matching every filter given, at most
/// `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// The `(at, id)` of the previous page's last event.
    pub after: Option<(i64, i64)>,
    /// An event id: only events logged before it.
    pub before: Option<i64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// From this time on, inclusive.
    pub since: Option<i64>,
    /// Up to this time, inclusive.
    pub until: Option<i64>,
    pub limit: i64,
}

/// What a tenant's file declares by name, or `None` when no file declares the tenant:
/// whatever of the tenant is marked `file` and is not in it goes to the API.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub users: Vec<String>,
    pub roles: Vec<String>,
    pub clients: Vec<String>,
}

/// What a committed write changed among the things an instance caches. The service
/// applies it to every cache in one place; it is plain data so that it can travel to
/// other instances as well.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Tokens whose state changed.
    #[serde(with = "digests")]
    pub tokens: Vec<Digest>,
    /// Users changed or deleted (password, enabled, roles, failure count), by tenant id
    /// and username.
    pub users: Vec<(TenantId, String)>,
    /// Tenants any of whose users may hold changed permissions (a role changed).
    pub users_of_tenants: Vec<TenantId>,
    /// Clients created, changed or deleted, by client id.
    pub clients: Vec<String>,
    /// Tenants created, deactivated, or whose settings or resource rules changed.
    pub tenants: Vec<TenantId>,
    /// Tenants whose signing keys changed (a rotation, a first key). Absent from the
    /// notices of instances older than signing keys.
    #[serde(default)]
    pub signing_keys: Vec<TenantId>,
}

impl Changes {
    pub fn tokens(tokens: Vec<Digest>) -> Self {
        Changes {
            tokens,
            ..Changes::default()
        }
    }

    pub fn user(tenant_id: TenantId, username: &str) -> Self {
        Changes {
            users: vec![(tenant_id, username.to_owned())],
            ..Changes::default()
        }
    }

    pub fn users_of(tenant_id: TenantId) -> Self {
        Changes {
            users_of_tenants: vec![tenant_id],
            ..Changes::default()
        }
    }

    pub fn client(client_id: &str) -> Self {
        Changes {
            clients: vec![client_id.to_owned()],
            ..Changes::default()
        }
    }

    pub fn tenant(tenant_id: TenantId) -> Self {
        Changes {
            tenants: vec![tenant_id],
            ..Changes::default()
        }
    }

    pub fn signing_keys(tenant_ids: Vec<TenantId>) -> Self {
        Changes {
            signing_keys: tenant_ids,
            ..Changes::default()
        }
    }

    /// The user or client whose sign-in failures a lockout write touched.
    pub fn principal(target: LockTarget<'_>) -> Self {
        match target {
            LockTarget::User {
                tenant_id,
                username,
            } => Changes::user(tenant_id, username),
            LockTarget::Client { client_id } => Changes::client(client_id),
        }
    }

    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: Changes) {
        self.tokens.extend(other.tokens);
        self.users.extend(other.users);
        self.users_of_tenants.extend(other.users_of_tenants);
        self.clients.extend(other.clients);
        self.tenants.extend(other.tenants);
        self.signing_keys.extend(other.signing_keys);
    }

    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// A console sign-in session as stored. The cookie itself is never stored: the row is
/// found by its digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSessionRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    pub username: String,
    /// The grant its sign-in's code was redeemed into; revoked when it ends.
    pub grant_id: String,
    /// A digest of the user's password hash at sign-in: another one means a new password.
    pub password_mark: String,
    /// The synchronizer token every form of the session carries.
    pub csrf: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

/// Which kind of session a row is: the console's, or single sign-on's. Both are used,
/// touched and ended alike; only what they hold differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Console,
    SignIn,
}

/// A console session to store.
#[derive(Debug)]
pub struct NewConsoleSession<'a> {
    pub tenant_id: TenantId,
    pub digest: &'a Digest,
    pub username: &'a str,
    pub grant_id: &'a str,
    pub password_mark: &'a str,
    pub csrf: &'a str,
    /// When the user entered the password for the sign-in the session came from.
    pub signed_in_at: i64,
    pub now: i64,
}

/// A single sign-on session of the sign-in page as stored, found by its cookie's
/// digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignInSessionRecord {
    pub id: i64,
    pub tenant_id: TenantId,
    /// Its public name, in the ID tokens of grants begun in it.
    pub sid: String,
    pub username: String,
    /// A digest of the user's password hash at sign-in: another one means a new password.
    pub password_mark: String,
    /// When the user last entered the password: an ID token's `auth_time`.
    pub signed_in_at: i64,
    pub last_seen_at: i64,
}

/// A single sign-on session to store, signed in at `now`.
#[derive(Debug)]
pub struct NewSignInSession<'a> {
    pub tenant_id: TenantId,
    pub digest: &'a Digest,
    pub sid: &'a str,
    pub username: &'a str,
    pub password_mark: &'a str,
    pub now: i64,
}

/// What one purge batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub tokens: u64,
    pub audit_events: u64,
}

/// What instances sharing one database tell each other, in commit order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// A committed write's changes, and when it committed (Unix milliseconds, on the
    /// writing instance's clock).
    Changes {
        changes: Changes,
        committed_at_ms: i64,
    },
    /// A write too large to describe in one notification: forget everything cached of
    /// this tenant.
    ForgetTenant(TenantId),
    /// The same when the write names no tenant: forget everything.
    ForgetAll,
    Heartbeat(Heartbeat),
}

/// An instance's heartbeat: its id and when it was sent, in milliseconds on its own
/// clock. On the wire it is the text `{instance}:{millis}`, as every release sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Heartbeat {
    pub instance: String,
    pub sent_ms: u64,
}

impl From<Heartbeat> for String {
    fn from(beat: Heartbeat) -> String {
        format!("{}:{}", beat.instance, beat.sent_ms)
    }
}

impl TryFrom<String> for Heartbeat {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let parsed = text.rsplit_once(':').and_then(|(instance, sent)| {
            let sent_ms = sent.parse().ok()?;
            Some(Heartbeat {
                instance: instance.to_owned(),
                sent_ms,
            })
        });
        parsed.ok_or_else(|| format!("not a heartbeat: {text:?}"))
    }
}

/// Digests as base64url text: 43 characters where a JSON array of bytes takes ~100.
mod digests {
    use super::Digest;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(digests: &[Digest], to: S) -> Result<S::Ok, S::Error> {
        to.collect_seq(digests.iter().map(|d| URL_SAFE_NO_PAD.encode(d)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Vec<Digest>, D::Error> {
        let texts = Vec::<String>::deserialize(from)?;
        texts
            .iter()
            .map(|t| {
                let bytes = URL_SAFE_NO_PAD.decode(t).map_err(D::Error::custom)?;
                Digest::try_from(bytes.as_slice()).map_err(D::Error::custom)
            })
            .collect()
    }
}
