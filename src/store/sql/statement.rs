//! Statements as data: SQL text with `$N` parameters and native arguments, which each
//! backend binds with its own driver through [`Conn`].

use crate::domain::client::GrantType;
use crate::domain::tenant::TenantId;
use crate::store::{Digest, Error, NamePage, RuleRow};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{Arguments, Database, Encode, FromRow, Type};
use std::borrow::Cow;

/// One argument of a statement, as the native type each driver binds.
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Bool(bool),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
    /// A list of names, stored as JSON (`TEXT` on SQLite, `JSONB` on PostgreSQL).
    Names(&'a [String]),
    /// Grant types, stored as a JSON list of their names.
    Grants(&'a [GrantType]),
    /// Resource rules, stored as JSON; `None` is SQL `NULL`.
    Rules(Option<&'a [RuleRow]>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
/// A tenant id is stored as its number: the domain type knows nothing of SQL, so the
/// store decodes it here.
impl<DB: Database> Type<DB> for TenantId
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> sqlx::Decode<'r, DB> for TenantId
where
    i64: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(TenantId::new(<i64 as sqlx::Decode<'r, DB>>::decode(value)?))
    }
}

impl From<TenantId> for Arg<'_> {
    fn from(v: TenantId) -> Self {
        Arg::Int(Some(v.get()))
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
impl<'a> From<&'a [GrantType]> for Arg<'a> {
    fn from(v: &'a [GrantType]) -> Self {
        Arg::Grants(v)
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
    pub(crate) fn bind(mut self, arg: impl Into<Arg<'a>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends `clause`, in which `$?` stands for the next parameter, bound to `arg`:
    /// how a query grows by the filters a request gives.
    pub(crate) fn push(mut self, clause: &str, arg: impl Into<Arg<'a>>) -> Self {
        let number = format!("${}", self.args.len() + 1);
        self.sql.to_mut().push_str(&clause.replace("$?", &number));
        self.bind(arg)
    }

    /// Windows `column` to `page` in byte order (the `binary` collation, which both
    /// databases have under that name) and orders and limits by it.
    pub(crate) fn name_page(
        mut self,
        column: &str,
        page: &'a NamePage,
        prefix_end: Option<&'a str>,
    ) -> Self {
        let key = format!("{column} COLLATE \"binary\"");
        if let Some(after) = &page.after {
            self = self.push(&format!(" AND {key} > $?"), after.as_str());
        }
        if let (Some(prefix), Some(end)) = (&page.prefix, prefix_end) {
            self = self
                .push(&format!(" AND {key} >= $?"), prefix.as_str())
                .push(&format!(" AND {key} < $?"), end);
        }
        self.push(&format!(" ORDER BY {key} LIMIT $?"), page.limit)
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
    /// Whether the driver binds `?` placeholders, in order, much faster than numbered
    /// ones. SQLite finds each numbered parameter by a scan of them all, so a statement
    /// of n numbered parameters costs n² to bind: most of a 128-row INSERT's CPU.
    const ANONYMOUS_PLACEHOLDERS: bool;

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
    Json<&'q [GrantType]>: Encode<'q, DB> + Type<DB>,
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
            Arg::Grants(v) => out.add(Json(v)),
            Arg::Rules(v) => out.add(v.map(Json)),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// Implements [`Conn`] for one driver's connection type.
macro_rules! impl_conn {
    ($connection:ty, $db:ty, anonymous_placeholders: $anonymous:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::sql::Conn for $connection {
            const ANONYMOUS_PLACEHOLDERS: bool = $anonymous;

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

/// A unique-key violation becomes `Duplicate(what)`; anything else stays itself.
pub(super) fn duplicate_as(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate(what),
        other => Error::from(other),
    }
}
