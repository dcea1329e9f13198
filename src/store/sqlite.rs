//! The SQLite backend: one file, many readers, one writer.
//!
//! Writes go through a single dedicated connection, so in-process writers queue fairly
//! on the pool instead of contending for SQLite's write lock; each write transaction
//! still begins `IMMEDIATE`, so a writer from another process (a `migrate` run) is
//! waited for rather than failing. Reads run on their own pool beside it (WAL).

use super::sql::{impl_conn, Backend};
use super::{Error, Feed, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite as Db, SqliteConnection, Transaction};
use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

impl_conn!(SqliteConnection, Db, anonymous_placeholders: true);

const READERS: u32 = 8;

pub(super) struct Sqlite {
    readers: SqlitePool,
    writer: SqlitePool,
    file: PathBuf,
    /// Held by the serving instance for as long as it lives; the OS lets it go when the
    /// process ends, however it ends.
    instance_lock: Mutex<Option<File>>,
}

impl Sqlite {
    /// Opens `url`, creating the file and its folder when missing.
    pub(super) async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename().to_path_buf();
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
            // The commit that crosses this many WAL pages copies them into the database
            // file. A batch of issuances dirties hundreds of pages; at SQLite's default of
            // 1,000 every few commits paid for a checkpoint (README, "Storage").
            .pragma("wal_autocheckpoint", "10000")
            // Pages are read through a mapping of the file rather than copied in by a
            // read(2) each: after every commit the other connections drop their page
            // caches, and the refresh scenario's profile put a tenth of the server's CPU
            // in copying those pages back in. Writes still go through write(2) and the
            // WAL, so durability is unchanged.
            .pragma("mmap_size", "268435456")
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
        Ok(Sqlite {
            readers,
            writer,
            file,
            instance_lock: Mutex::new(None),
        })
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

    /// Closes the pools and gives up the claim at once, rather than when the last task
    /// holding the backend lets go of it: a start that failed after claiming must not
    /// keep the next one out.
    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
        let mut held = self.instance_lock.lock().unwrap_or_else(|e| e.into_inner());
        *held = None;
    }

    /// An exclusive lock on a file beside the database. Caches of two instances on one
    /// SQLite file would never hear of each other's changes, so the second is refused.
    async fn claim(&self) -> Result<()> {
        let mut name = self.file.clone().into_os_string();
        name.push(".instance-lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&name)
            .map_err(|e| Error::Unavailable(sqlx::Error::Io(e)))?;
        match lock.try_lock() {
            Ok(()) => {
                let mut held = self.instance_lock.lock().unwrap_or_else(|e| e.into_inner());
                *held = Some(lock);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::InUse(self.file.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Unavailable(sqlx::Error::Io(e))),
        }
    }

    fn shared(&self) -> bool {
        false
    }

    async fn publish(&self, _: &mut SqliteConnection, _: &str) -> Result<()> {
        Ok(())
    }

    async fn notify(&self, _: &str) -> Result<()> {
        Err(Error::SingleInstance)
    }

    async fn subscribe(&self) -> Result<Box<dyn Feed>> {
        Err(Error::SingleInstance)
    }

    /// One instance, and its one writer: nobody else could be purging.
    async fn purge_lock(&self, _: &mut SqliteConnection) -> Result<bool> {
        Ok(true)
    }
}
