//! Durable storage over sqlx: SQLite for one machine, PostgreSQL for many.
//!
//! The backend is chosen once, from the URL scheme, in [`Store::connect`]. Queries are
//! written once with `$N` parameters, which both SQLite and PostgreSQL bind by position,
//! and run through `sqlx::Any`; only connection set-up and migrations differ. Every
//! method takes the tenant it works in, except the client lookup: client ids are unique
//! across tenants (SPEC §6).

mod admin;
mod records;
mod sql;

pub use records::*;
pub use sql::Store;

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
