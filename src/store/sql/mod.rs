//! The SQL both backends run, written once, and the one [`Store`] implementation over it.
//!
//! A query here is a [`Statement`]: its text (with `$N` parameters, which SQLite and
//! PostgreSQL both bind by position) and its arguments as native values. Each backend
//! binds those values with its own driver ([`Conn`]) and owns what differs between the
//! dialects: connections, the write lock, migrations. Rows decode through
//! `sqlx::FromRow`, which both drivers implement for the same struct. The files follow
//! the table families.

mod audit;
mod clients;
mod lockout;
mod roles;
mod tenants;
mod tokens;
mod users;

use super::{
    AuditEvent, Changes, ClientRecord, Digest, Error, LockTarget, NewClient, NewToken, NewUser,
    Result, RoleRecord, Rotation, RuleRow, Selection, Source, Store, TenantRow, TenantSettings,
    TokenRecord, UserChange, UserRecord,
};
use crate::domain::token::{Event, TokenKind};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{Arguments, Database, Encode, FromRow, Pool, Transaction, Type};
use std::borrow::Cow;

/// One argument of a statement, as the native type each driver binds.
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Bool(bool),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
    /// A list of names, stored as JSON (`TEXT` on SQLite, `JSONB` on PostgreSQL).
    Names(&'a [String]),
    /// Resource rules, stored as JSON; `None` is SQL `NULL`.
    Rules(Option<&'a [RuleRow]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a Digest> for Arg<'a> {
    fn from(v: &'a Digest) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl<'a> From<Option<&'a Digest>> for Arg<'a> {
    fn from(v: Option<&'a Digest>) -> Self {
        Arg::Bytes(v.map(|d| &d[..]))
    }
}
impl<'a> From<&'a [String]> for Arg<'a> {
    fn from(v: &'a [String]) -> Self {
        Arg::Names(v)
    }
}

/// A query and its arguments, in `$N` order.
pub(crate) struct Statement<'a> {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg<'a>>,
}

/// A statement with no arguments yet.
pub(crate) fn query<'a>(sql: impl Into<Cow<'static, str>>) -> Statement<'a> {
    Statement {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl<'a> Statement<'a> {
    pub fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// A row type both drivers decode.
pub(crate) trait Decoded:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}
impl<T> Decoded for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// A connection of either driver: what the shared SQL runs on.
#[async_trait::async_trait]
pub(crate) trait Conn: Send {
    async fn execute(&mut self, statement: Statement<'_>) -> sqlx::Result<u64>;
    async fn fetch_all<T: Decoded>(&mut self, statement: Statement<'_>) -> sqlx::Result<Vec<T>>;
    async fn fetch_optional<T: Decoded>(
        &mut self,
        statement: Statement<'_>,
    ) -> sqlx::Result<Option<T>>;

    async fn fetch_one<T: Decoded>(&mut self, statement: Statement<'_>) -> sqlx::Result<T> {
        self.fetch_optional(statement)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// The arguments of a statement, as one driver's native values.
pub(crate) fn arguments<'q, DB>(args: Vec<Arg<'q>>) -> sqlx::Result<DB::Arguments<'q>>
where
    DB: Database,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    Json<&'q [String]>: Encode<'q, DB> + Type<DB>,
    Option<Json<&'q [RuleRow]>>: Encode<'q, DB> + Type<DB>,
{
    let mut out = DB::Arguments::<'q>::default();
    for arg in args {
        match arg {
            Arg::Int(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            Arg::Names(v) => out.add(Json(v)),
            Arg::Rules(v) => out.add(v.map(Json)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// Implements [`Conn`] for one driver's connection type.
macro_rules! impl_conn {
    ($connection:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::sql::Conn for $connection {
            async fn execute(
                &mut self,
                statement: $crate::store::sql::Statement<'_>,
            ) -> sqlx::Result<u64> {
                let args = $crate::store::sql::arguments::<$db>(statement.args)?;
                let done = sqlx::query_with::<$db, _>(&statement.sql, args)
                    .execute(&mut *self)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn fetch_all<T: $crate::store::sql::Decoded>(
                &mut self,
                statement: $crate::store::sql::Statement<'_>,
            ) -> sqlx::Result<Vec<T>> {
                let args = $crate::store::sql::arguments::<$db>(statement.args)?;
                sqlx::query_as_with::<$db, T, _>(&statement.sql, args)
                    .fetch_all(&mut *self)
                    .await
            }

            async fn fetch_optional<T: $crate::store::sql::Decoded>(
                &mut self,
                statement: $crate::store::sql::Statement<'_>,
            ) -> sqlx::Result<Option<T>> {
                let args = $crate::store::sql::arguments::<$db>(statement.args)?;
                sqlx::query_as_with::<$db, T, _>(&statement.sql, args)
                    .fetch_optional(&mut *self)
                    .await
            }
        }
    };
}
pub(crate) use impl_conn;

/// What a backend provides to [`SqlStore`]: a pool to read from and write transactions.
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    type Db: Database<Connection: Conn>;

    /// The pool reads run on.
    fn readers(&self) -> &Pool<Self::Db>;
    /// A transaction holding the right to write.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;
    async fn migrate(&self) -> Result<()>;
    async fn close(&self);
}

/// The store over a backend: every operation, written once.
pub(crate) struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> Self {
        SqlStore { backend }
    }
}

/// A unique-key violation becomes `Duplicate(what)`; anything else stays itself.
fn duplicate_as(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate(what),
        other => Error::from(other),
    }
}

/// Writes the change's audit entry and commits: the one way an audited change ends, so
/// that no change commits without its entry.
async fn commit_audited<DB>(mut tx: Transaction<'static, DB>, audit: &AuditEvent) -> Result<()>
where
    DB: Database<Connection: Conn>,
{
    audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait::async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> Result<()> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.backend.readers().acquire().await?;
        conn.execute(query("SELECT 1")).await?;
        Ok(())
    }

    async fn close(&self) {
        self.backend.close().await;
    }

    // ---- tenants ------------------------------------------------------------------

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        let mut conn = self.backend.readers().acquire().await?;
        tenants::all(&mut *conn).await
    }

    async fn upsert_tenant(
        &self,
        settings: &TenantSettings,
        source: Source,
        now: i64,
    ) -> Result<(i64, Changes)> {
        let mut tx = self.backend.begin_write().await?;
        let id = tenants::upsert(&mut *tx, settings, source, now).await?;
        tx.commit().await?;
        Ok((id, Changes::tenant(id)))
    }

    async fn set_resources(
        &self,
        tenant_id: i64,
        rules: Option<&[RuleRow]>,
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        tenants::set_resources(&mut *tx, tenant_id, rules).await?;
        commit_audited(tx, audit).await?;
        Ok(Changes::tenant(tenant_id))
    }

    async fn create_tenant(
        &self,
        settings: &TenantSettings,
        admin_role: &RoleRecord,
        admin: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        let tenant_id = tenants::insert(&mut *tx, settings, audit.at).await?;
        roles::insert(&mut *tx, tenant_id, admin_role, Source::Api).await?;
        let user_id = users::insert(&mut *tx, tenant_id, admin, Source::Api, audit.at).await?;
        users::replace_roles(&mut *tx, tenant_id, user_id, admin.roles).await?;
        commit_audited(tx, audit).await?;
        Ok(Changes::tenant(tenant_id))
    }

    async fn deactivate_tenant(&self, tenant_id: i64, audit: &AuditEvent) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        tenants::deactivate(&mut *tx, tenant_id).await?;
        let event = Event::OwnerChanged(crate::domain::token::OwnerChange::TenantDeactivated);
        let tokens =
            tokens::end_access_and_refresh(&mut *tx, tenant_id, &Selection::Tenant, event, audit)
                .await?;
        commit_audited(tx, audit).await?;
        Ok(Changes {
            tokens,
            users_of_tenants: vec![tenant_id],
            ..Changes::tenant(tenant_id)
        })
    }

    // ---- users and roles ----------------------------------------------------------

    async fn user(&self, tenant_id: i64, username: &str) -> Result<Option<UserRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        Ok(users::load(&mut *conn, tenant_id, Some(username))
            .await?
            .pop())
    }

    async fn users(&self, tenant_id: i64) -> Result<Vec<UserRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        users::load(&mut *conn, tenant_id, None).await
    }

    async fn user_count(&self, tenant_id: i64) -> Result<i64> {
        let mut conn = self.backend.readers().acquire().await?;
        users::count(&mut *conn, tenant_id).await
    }

    async fn upsert_user(
        &self,
        tenant_id: i64,
        user: &NewUser<'_>,
        source: Source,
        now: i64,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        let changes = users::upsert(&mut *tx, tenant_id, user, source, now).await?;
        tx.commit().await?;
        Ok(changes)
    }

    async fn create_user(
        &self,
        tenant_id: i64,
        user: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        let id = users::insert(&mut *tx, tenant_id, user, Source::Api, audit.at).await?;
        users::replace_roles(&mut *tx, tenant_id, id, user.roles).await?;
        commit_audited(tx, audit).await?;
        Ok(Changes::user(tenant_id, user.username))
    }

    async fn change_user(
        &self,
        tenant_id: i64,
        username: &str,
        change: UserChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        let Some(changes) = users::change(&mut *tx, tenant_id, username, change, audit).await?
        else {
            return Ok(None);
        };
        commit_audited(tx, audit).await?;
        Ok(Some(changes))
    }

    async fn roles(&self, tenant_id: i64) -> Result<Vec<RoleRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        roles::all(&mut *conn, tenant_id).await
    }

    async fn upsert_role(
        &self,
        tenant_id: i64,
        role: &RoleRecord,
        source: Source,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        roles::upsert(&mut *tx, tenant_id, role, source).await?;
        tx.commit().await?;
        Ok(Changes::users_of(tenant_id))
    }

    async fn create_role(
        &self,
        tenant_id: i64,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        roles::insert(&mut *tx, tenant_id, role, Source::Api).await?;
        commit_audited(tx, audit).await?;
        // No user holds a role that did not exist; nothing cached changed.
        Ok(Changes::default())
    }

    async fn update_role(
        &self,
        tenant_id: i64,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !roles::update(&mut *tx, tenant_id, role).await? {
            return Ok(None);
        }
        commit_audited(tx, audit).await?;
        Ok(Some(Changes::users_of(tenant_id)))
    }

    async fn delete_role(
        &self,
        tenant_id: i64,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !roles::delete(&mut *tx, tenant_id, name).await? {
            return Ok(None);
        }
        commit_audited(tx, audit).await?;
        Ok(Some(Changes::users_of(tenant_id)))
    }

    // ---- clients ------------------------------------------------------------------

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        clients::by_id(&mut *conn, client_id).await
    }

    async fn clients(&self, tenant_id: i64) -> Result<Vec<ClientRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        clients::of_tenant(&mut *conn, tenant_id).await
    }

    async fn upsert_client(
        &self,
        tenant_id: i64,
        client: &NewClient<'_>,
        source: Source,
        now: i64,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        clients::upsert(&mut *tx, tenant_id, client, source, now).await?;
        tx.commit().await?;
        Ok(Changes::client(client.client_id))
    }

    async fn create_client(
        &self,
        tenant_id: i64,
        client: &NewClient<'_>,
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        clients::insert(&mut *tx, tenant_id, client, Source::Api, audit.at).await?;
        commit_audited(tx, audit).await?;
        // The id may be remembered as absent from an earlier sign-in attempt.
        Ok(Changes::client(client.client_id))
    }

    async fn delete_client(
        &self,
        tenant_id: i64,
        client_id: &str,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !clients::delete(&mut *tx, tenant_id, client_id).await? {
            return Ok(None);
        }
        let selection = Selection::Client(client_id.to_owned());
        let event = Event::OwnerChanged(crate::domain::token::OwnerChange::ClientDeleted);
        let tokens =
            tokens::end_access_and_refresh(&mut *tx, tenant_id, &selection, event, audit).await?;
        commit_audited(tx, audit).await?;
        Ok(Some(Changes {
            tokens,
            ..Changes::client(client_id)
        }))
    }

    async fn set_client_secret(
        &self,
        tenant_id: i64,
        client_id: &str,
        secret_hash: &str,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !clients::set_secret(&mut *tx, tenant_id, client_id, secret_hash).await? {
            return Ok(None);
        }
        commit_audited(tx, audit).await?;
        Ok(Some(Changes::client(client_id)))
    }

    // ---- lockout ------------------------------------------------------------------

    async fn record_failure(
        &self,
        target: LockTarget<'_>,
        threshold: i64,
        locked_until: i64,
        failure: &AuditEvent,
        lock: &AuditEvent,
    ) -> Result<(Option<i64>, Changes)> {
        let mut tx = self.backend.begin_write().await?;
        let locked = lockout::count_failure(&mut *tx, target, threshold, locked_until).await?;
        audit::insert(&mut *tx, failure).await?;
        if locked.is_some() {
            audit::insert(&mut *tx, lock).await?;
        }
        tx.commit().await?;
        Ok((locked, Changes::principal(target)))
    }

    async fn clear_failures(
        &self,
        target: LockTarget<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !lockout::clear(&mut *tx, target).await? {
            return Ok(None);
        }
        commit_audited(tx, audit).await?;
        Ok(Some(Changes::principal(target)))
    }

    async fn reset_failures(&self, target: LockTarget<'_>, now: i64) -> Result<Option<Changes>> {
        let mut tx = self.backend.begin_write().await?;
        if !lockout::reset_unless_locked(&mut *tx, target, now).await? {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(Changes::principal(target)))
    }

    // ---- tokens -------------------------------------------------------------------

    async fn insert_tokens(&self, new: &[NewToken]) -> Result<()> {
        let mut tx = self.backend.begin_write().await?;
        tokens::insert(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token(&self, tenant_id: i64, digest: &Digest) -> Result<Option<TokenRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        tokens::by_digest(&mut *conn, tenant_id, digest).await
    }

    async fn transitions(
        &self,
        tenant_id: i64,
        steps: &[(TokenKind, Selection, Event)],
        now: i64,
        actor: &str,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        let changed = tokens::steps(&mut *tx, tenant_id, steps, now, actor).await?;
        tx.commit().await?;
        Ok(Changes::tokens(changed))
    }

    async fn revoke_by_admin(
        &self,
        tenant_id: i64,
        steps: &[(TokenKind, Selection, Event)],
        audit: &AuditEvent,
    ) -> Result<Changes> {
        let mut tx = self.backend.begin_write().await?;
        let changed = tokens::steps(&mut *tx, tenant_id, steps, audit.at, &audit.actor).await?;
        commit_audited(tx, audit).await?;
        Ok(Changes::tokens(changed))
    }

    async fn redeem(
        &self,
        old: &TokenRecord,
        new: &[NewToken],
        now: i64,
        actor: &str,
    ) -> Result<Rotation> {
        let mut tx = self.backend.begin_write().await?;
        let Some(changed) = tokens::spend(&mut *tx, old, now, actor).await? else {
            return Ok(Rotation::Lost);
        };
        tokens::insert(&mut *tx, new).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated(Changes::tokens(changed)))
    }

    // ---- audit --------------------------------------------------------------------

    async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        commit_audited(self.backend.begin_write().await?, event).await
    }

    async fn audit_events(
        &self,
        tenant_id: i64,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<AuditEvent>> {
        let mut conn = self.backend.readers().acquire().await?;
        audit::page(&mut *conn, tenant_id, limit, before).await
    }
}
