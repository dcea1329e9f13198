//! The SQLite backend: one file, many readers, one writer.
//!
//! Writes go through a single dedicated connection, so in-process writers queue fairly
//! on the pool instead of contending for SQLite's write lock; each write transaction
//! still begins `IMMEDIATE`, so a writer from another process (a `migrate` run) is
//! waited for rather than failing. Reads run on their own pool beside it (WAL).

use super::sql::{impl_conn, Backend};
use super::{Error, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite as Db, SqliteConnection, Transaction};
use std::str::FromStr;
use std::time::Duration;

impl_conn!(SqliteConnection, Db);

const READERS: u32 = 8;

pub struct Sqlite {
    readers: SqlitePool,
    writer: SqlitePool,
}

impl Sqlite {
    /// Opens `url`, creating the file and its folder when missing.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::Unavailable(sqlx::Error::Io(e)))?;
        }
        // Every acknowledged write must survive a crash (SPEC §10).
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // The writer first: it creates the file and switches it to WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Sqlite { readers, writer })
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    type Db = Db;

    fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Db>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}
