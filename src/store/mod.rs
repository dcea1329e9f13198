//! Durable storage: SQLite for one machine, PostgreSQL for many.
//!
//! [`Store`] is every operation the services need. [`connect`] picks the backend once,
//! from the URL scheme; both run the SQL of [`sql`], each through its own driver and
//! with its database's own types. A method that works inside one tenant names it, as
//! a [`TenantId`] or in the record, target or audit entry it is given. The reads
//! across tenants are few and said so: the client lookup (client ids are unique across
//! tenants, SPEC §6), every tenant's keys and locks at start and for metrics, the
//! lookup of a leaked code wherever it lives, which spends it (RFC 9700 §4.5), and
//! the purge. Every method that commits a change to something a cache may hold
//! returns its result as [`Committed`], which yields it only once the caches have
//! heard of the change.

mod committed;
mod postgres;
mod records;
mod sql;
mod sqlite;

pub use committed::{Caches, Committed};
pub use records::{
    AuditEvent, AuditQuery, BulkUserChange, ChangedBy, Changes, ClientEdit, ClientRecord,
    ConsoleSessionRecord, Declared, Digest, GrantHolder, GrantPage, Heartbeat, LiveGrant,
    LockTarget, NamePage, NewClient, NewConsoleSession, NewSignInSession, NewSigningKey, NewTenant,
    NewToken, NewUser, Notice, Purged, RoleRecord, Rotation, RuleRow, Selection, SessionKind,
    SignInSessionRecord, SigningKeyRow, Source, Step, TenantRow, TokenRecord, UserChange,
    UserFilter, UserRecord,
};

use crate::domain::tenant::{TenantId, TenantSettings};
use std::sync::Arc;

/// What went wrong below the domain. The detail stays in logs; callers see the kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or failed to commit.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique key already holds this value.
    #[error("a duplicate of {0}")]
    Duplicate(&'static str),
    /// A stored value does not parse: a bug or a hand-edited database.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL names no supported backend.
    #[error("unsupported database URL scheme {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Another `serve` already uses this SQLite database.
    #[error(
        "another instance is serving {0}: SQLite serves one instance; use PostgreSQL for several"
    )]
    InUse(String),
    /// An SQLite database has no other instances to hear from.
    #[error("an SQLite database serves one instance and carries no notices")]
    SingleInstance,
    /// The group commit this write was part of failed; every write in it failed.
    #[error("a batched write failed: {0}")]
    Batch(std::sync::Arc<Error>),
    /// The writer of batched writes has stopped (the store is closing).
    #[error("the store's writer has stopped")]
    WriterGone,
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_) => Error::Corrupt(e.to_string()),
            other => Error::Unavailable(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The notices of every instance sharing the database.
#[async_trait::async_trait]
pub trait Feed: Send {
    /// The next notice. `Ok(None)` means the connection was lost, so notices may have
    /// been missed; the next call reconnects.
    async fn next(&mut self) -> Result<Option<Notice>>;
}

/// Opens the store `url` names: `sqlite://FILE` (created with its folder when missing)
/// or `postgres://…`. Migrations are not applied here; see [`Store::migrate`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sql::SqlStore::new(
            sqlite::Sqlite::connect(url).await?,
        )))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(sql::SqlStore::new(
            postgres::Postgres::connect(url).await?,
        )))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::UnsupportedUrl(scheme.to_owned()))
    }
}

/// Every operation on durable state. Writes commit before they return; an audited
/// change commits together with its audit entry, and a change that ends tokens (a
/// password change, a deleted client, a deactivated tenant) together with those
/// tokens' transitions: there is no moment at which one is true without the other.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<()>;
    /// A round trip to the database, for readiness.
    async fn ping(&self) -> Result<()>;
    async fn close(&self);

    // ---- instances ----------------------------------------------------------------

    /// Claims the database for a serving instance. SQLite serves one instance, and a
    /// second claim fails with `InUse` while the first process lives; PostgreSQL takes
    /// any number.
    async fn claim(&self) -> Result<()>;
    /// Whether several instances may share this database, so that every write's
    /// [`Notice`] reaches them all (PostgreSQL) or none is sent (SQLite).
    fn shared(&self) -> bool;
    /// Every instance's notices, this one's included, in commit order.
    async fn subscribe(&self) -> Result<Box<dyn Feed>>;
    /// Sends `notice` at once, outside any write: a heartbeat.
    async fn notify(&self, notice: &Notice) -> Result<()>;

    // ---- tenants ------------------------------------------------------------------

    /// Every tenant, active or not, by id.
    async fn tenants(&self) -> Result<Vec<TenantRow>>;
    /// A page of tenants by domain.
    async fn tenants_page(&self, page: &NamePage) -> Result<Vec<TenantRow>>;
    /// Creates the tenant when missing, else brings it in line with `settings`. Resource
    /// rules are only replaced when `settings` declares some. Returns the tenant's id.
    async fn upsert_tenant(
        &self,
        tenant: &NewTenant,
        source: Source,
        now: i64,
    ) -> Result<Committed<TenantId>>;
    /// Gives to the API what the tenant's file no longer declares: users, roles and
    /// clients marked `file` that `declared` does not name, and, when no file declares
    /// the tenant (`None`), its settings and rules.
    async fn release_undeclared(
        &self,
        tenant_id: TenantId,
        declared: Option<&Declared>,
    ) -> Result<Committed<()>>;
    /// Replaces a tenant's settings (lifetimes, introspection clients, rate limits).
    async fn set_settings(
        &self,
        tenant_id: TenantId,
        settings: &TenantSettings,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Replaces a tenant's resource rules; `None` restores the defaults.
    async fn set_resources(
        &self,
        tenant_id: TenantId,
        rules: Option<&[RuleRow]>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Creates a tenant with its first administrator, who holds `admin_role`, and its
    /// signing key; a taken domain is `Duplicate("domain")`. The audit entry goes to
    /// the tenant that asked.
    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin_role: &RoleRecord,
        admin: &NewUser<'_>,
        signing_key: &NewSigningKey,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Deactivates a tenant and makes all its tokens INACTIVE.
    async fn deactivate_tenant(
        &self,
        tenant_id: TenantId,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;

    // ---- signing keys -------------------------------------------------------------

    /// The tenant's signing key and the keys retired after `retired_after`, newest
    /// first.
    async fn signing_keys(
        &self,
        tenant_id: TenantId,
        retired_after: i64,
    ) -> Result<Vec<SigningKeyRow>>;
    /// Every tenant's signing key, for the start-up check that the master key opens
    /// them.
    async fn active_signing_keys(&self) -> Result<Vec<SigningKeyRow>>;
    /// Gives each tenant its first signing key, in one transaction; a tenant that has
    /// one meanwhile (another instance starting) keeps its own.
    async fn add_signing_keys(&self, keys: &[(TenantId, NewSigningKey)]) -> Result<Committed<()>>;
    /// Makes `key` the tenant's signing key: the previous one retires now, and keys
    /// retired before `unpublished_before` are deleted, as are all but the
    /// `keep_retiring` most recently retired. A rotation that lost a race with another
    /// is `Duplicate("signing key")`.
    async fn rotate_signing_key(
        &self,
        tenant_id: TenantId,
        key: &NewSigningKey,
        unpublished_before: i64,
        keep_retiring: usize,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;

    // ---- users and roles ----------------------------------------------------------

    /// One user with the permissions of their roles, in one query.
    async fn user(&self, tenant_id: TenantId, username: &str) -> Result<Option<UserRecord>>;
    /// A page of the tenant's users by username.
    async fn users_page(
        &self,
        tenant_id: TenantId,
        page: &NamePage,
        filter: UserFilter,
    ) -> Result<Vec<UserRecord>>;
    async fn user_count(&self, tenant_id: TenantId) -> Result<i64>;
    /// Creates a user, or brings one of the same `source` back in line with it. A user
    /// created through the API is never overwritten by a file.
    async fn upsert_user(
        &self,
        tenant_id: TenantId,
        user: &NewUser<'_>,
        source: Source,
        now: i64,
    ) -> Result<Committed<()>>;
    /// Creates a user through the API; a taken username is `Duplicate("username")`.
    async fn create_user(
        &self,
        tenant_id: TenantId,
        user: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Applies `change` to every user named, in one transaction, each with its audit
    /// entry; a disable or a deletion makes the user's tokens INACTIVE. Answers, in the
    /// same order, whether each user was there.
    async fn change_users(
        &self,
        tenant_id: TenantId,
        change: BulkUserChange,
        users: &[(String, AuditEvent)],
    ) -> Result<Committed<Vec<bool>>>;
    /// Applies `change` and, for a password change, a disable or a deletion, makes the
    /// user's tokens INACTIVE. `None` when there is no such user.
    async fn change_user(
        &self,
        tenant_id: TenantId,
        username: &str,
        change: UserChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;
    async fn roles(&self, tenant_id: TenantId) -> Result<Vec<RoleRecord>>;
    /// A page of the tenant's roles by name.
    async fn roles_page(&self, tenant_id: TenantId, page: &NamePage) -> Result<Vec<RoleRecord>>;
    /// Creates a role or replaces its permission list, and gives it to `role.source`.
    async fn upsert_role(&self, tenant_id: TenantId, role: &RoleRecord) -> Result<Committed<()>>;
    /// A taken name is `Duplicate("name")`.
    async fn create_role(
        &self,
        tenant_id: TenantId,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Replaces an existing role's permissions; `None` when there is no such role.
    async fn update_role(
        &self,
        tenant_id: TenantId,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;
    /// Deletes a role and takes it from every user who had it.
    async fn delete_role(
        &self,
        tenant_id: TenantId,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;

    // ---- clients ------------------------------------------------------------------

    /// A client by its id, whatever its tenant.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    /// A page of the tenant's clients by client id.
    async fn clients_page(&self, tenant_id: TenantId, page: &NamePage)
        -> Result<Vec<ClientRecord>>;
    /// Creates a client, or brings a file-declared one in line with its file. A client
    /// id taken by another tenant, or by the API, is a duplicate.
    async fn upsert_client(
        &self,
        tenant_id: TenantId,
        client: &NewClient<'_>,
        source: Source,
        now: i64,
    ) -> Result<Committed<()>>;
    /// Registers a client; an id taken in any tenant is `Duplicate("client_id")`.
    async fn create_client(
        &self,
        tenant_id: TenantId,
        client: &NewClient<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Deletes a client and makes its tokens INACTIVE; `None` when the tenant has no
    /// such client.
    async fn delete_client(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;
    /// Replaces what a client's registration says but its id and secret, and names the
    /// client in the changes, so every instance reads it afresh; its tokens stay as
    /// they are. `None` when the tenant has no such client.
    async fn update_client(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        edit: &ClientEdit<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;
    async fn set_client_secret(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        secret_hash: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;

    // ---- lockout ------------------------------------------------------------------

    /// Counts one failed sign-in; the count reaching `threshold` locks the principal
    /// until `locked_until`. Returns the lock's end when this failure locked it. The
    /// failure and any lock are audited in the same transaction.
    async fn record_failure(
        &self,
        target: LockTarget<'_>,
        threshold: i64,
        locked_until: i64,
        failure: &AuditEvent,
        lock: &AuditEvent,
    ) -> Result<Committed<Option<i64>>>;
    /// An admin's unlock: resets the count and lifts any lock. `None` when the
    /// principal is gone.
    async fn clear_failures(
        &self,
        target: LockTarget<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>>;
    /// How many users and clients each tenant has locked at `now`, by tenant id.
    async fn locked_accounts(&self, now: i64) -> Result<Vec<(TenantId, i64)>>;
    /// Resets the count after a successful sign-in unless a lock is in force. `None`
    /// when the principal is locked (or gone).
    async fn reset_failures(
        &self,
        target: LockTarget<'_>,
        now: i64,
    ) -> Result<Committed<Option<()>>>;

    // ---- tokens -------------------------------------------------------------------

    /// Stores the tokens of one issuance in one transaction: all or none. Nothing
    /// cached can be stale after it: no cache remembers a token as absent.
    async fn insert_tokens(&self, tokens: &[NewToken]) -> Result<()>;
    /// The token with this digest in this tenant: one indexed read.
    async fn token(&self, tenant_id: TenantId, digest: &Digest) -> Result<Option<TokenRecord>>;
    /// Every token of a grant, in the order they were issued.
    async fn grant_tokens(&self, tenant_id: TenantId, grant_id: &str) -> Result<Vec<TokenRecord>>;
    /// A page of a user's or a client's grants that still have an active token.
    async fn live_grants(&self, tenant_id: TenantId, page: &GrantPage) -> Result<Vec<LiveGrant>>;
    /// The audit entries of the admin actions that touched a grant: those naming one of
    /// its tokens, and those written with a change of a token's state (same actor,
    /// same time), oldest first.
    async fn grant_actions(&self, tenant_id: TenantId, grant_id: &str) -> Result<Vec<AuditEvent>>;
    /// The authorization code with this digest, whichever tenant holds it. The one
    /// lookup across tenants: a code presented where it does not belong has leaked,
    /// and is spent wherever it lives (RFC 9700 §4.5); nothing else is read this way.
    async fn code_in_any_tenant(&self, digest: &Digest) -> Result<Option<TokenRecord>>;
    /// Applies each `(kind, selection, event)` step to the selected tokens the state
    /// machine lets it move, in one transaction (a revocation and its cascade).
    async fn transitions(
        &self,
        tenant_id: TenantId,
        steps: &[Step],
        now: i64,
        by: &ChangedBy,
    ) -> Result<Committed<()>>;
    /// [`Store::transitions`] by an admin, with the audit entry.
    async fn revoke_by_admin(
        &self,
        tenant_id: TenantId,
        steps: &[Step],
        audit: &AuditEvent,
    ) -> Result<Committed<()>>;
    /// Redeems a single-use credential in one transaction: a refresh token becomes
    /// INACTIVE with the access tokens issued with it, or a code becomes INACTIVE;
    /// then `new` is stored. If the credential is no longer ACTIVE (a concurrent use),
    /// nothing is written.
    async fn redeem(
        &self,
        old: &TokenRecord,
        new: &[NewToken],
        now: i64,
        by: &ChangedBy,
    ) -> Result<Committed<Rotation>>;

    /// Deletes at most `batch` tokens of grants whose every token stopped being active
    /// before `tokens_before`, and at most `batch` audit events from before
    /// `audit_before`. `None` when another instance is purging.
    async fn purge(
        &self,
        tokens_before: i64,
        audit_before: i64,
        batch: i64,
    ) -> Result<Option<Purged>>;

    // ---- console sessions -------------------------------------------------------------

    /// Stores a new console session and audits its sign-in, in one transaction; ends
    /// the session it `replaces` (a sign-in again for a dangerous action).
    async fn start_console_session(
        &self,
        session: &NewConsoleSession<'_>,
        replaces: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<()>;
    /// The session whose cookie has this digest.
    async fn console_session(&self, digest: &Digest) -> Result<Option<ConsoleSessionRecord>>;

    // ---- single sign-on sessions ------------------------------------------------------

    /// Stores a new sign-in session; ends the one it `replaces` (the browser's previous
    /// session of the tenant) in the same transaction.
    async fn start_sign_in_session(
        &self,
        session: &NewSignInSession<'_>,
        replaces: Option<i64>,
    ) -> Result<()>;
    /// The sign-in session whose cookie has this digest.
    async fn sign_in_session(&self, digest: &Digest) -> Result<Option<SignInSessionRecord>>;

    // ---- either kind of session -------------------------------------------------------

    /// Records a use of the session at `now`.
    async fn touch_session(&self, kind: SessionKind, id: i64, now: i64) -> Result<()>;
    /// Ends a session, auditing why when `audit` is given; false when it was gone.
    async fn end_session(
        &self,
        kind: SessionKind,
        id: i64,
        audit: Option<&AuditEvent>,
    ) -> Result<bool>;
    /// Deletes the sessions of `kind` last seen at or before `idle_before`, or signed in
    /// at or before `started_before`; answers how many.
    async fn end_stale_sessions(
        &self,
        kind: SessionKind,
        idle_before: i64,
        started_before: i64,
    ) -> Result<u64>;

    // ---- audit --------------------------------------------------------------------

    /// Writes one audit entry on its own (a failed sign-in of an unknown principal).
    async fn record_audit(&self, event: &AuditEvent) -> Result<()>;
    /// A page of the tenant's audit log, newest first.
    async fn audit_events(
        &self,
        tenant_id: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>>;
}
