//! What each database provides to the one store over them, and the notices a write
//! sends to the other instances.

use super::statement::Conn;
use crate::domain::tenant::TenantId;
use crate::store::{Changes, Error, Feed, Notice, Result};
use sqlx::{Database, Pool, Transaction};
/// What a backend provides to [`super::SqlStore`]: a pool to read from and write transactions.
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    type Db: Database<Connection: Conn>;

    /// The pool reads run on.
    fn readers(&self) -> &Pool<Self::Db>;
    /// A transaction holding the right to write.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;
    async fn migrate(&self) -> Result<()>;
    async fn close(&self);

    /// See [`Store::claim`].
    async fn claim(&self) -> Result<()>;
    /// Whether other instances may share this database, so that notices must travel.
    fn shared(&self) -> bool;
    /// Sends `notice` to every instance when `conn`'s transaction commits (nothing
    /// for a database only one instance uses).
    async fn publish(
        &self,
        conn: &mut <Self::Db as Database>::Connection,
        notice: &str,
    ) -> Result<()>;
    /// Sends `notice` at once, outside any write.
    async fn notify(&self, notice: &str) -> Result<()>;
    /// Every instance's notices from now on.
    async fn subscribe(&self) -> Result<Box<dyn Feed>>;
    /// Whether this transaction may purge: one instance at a time. Held until the
    /// transaction ends.
    async fn purge_lock(&self, conn: &mut <Self::Db as Database>::Connection) -> Result<bool>;
}

/// The most a notice may take: PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_NOTICE_BYTES: usize = 7_900;

/// The notice that tells other instances about `changes`, within the payload limit.
/// `tenant` is the tenant the write was in, when it was in one.
pub(super) fn notice_of(changes: &Changes, tenant: Option<TenantId>) -> Result<String> {
    let encode =
        |notice: &Notice| serde_json::to_string(notice).map_err(|e| Error::Corrupt(e.to_string()));
    let committed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let full = encode(&Notice::Changes {
        changes: changes.clone(),
        committed_at_ms,
    })?;
    if full.len() <= MAX_NOTICE_BYTES {
        return Ok(full);
    }
    encode(&match tenant {
        Some(tenant_id) => Notice::ForgetTenant(tenant_id),
        None => Notice::ForgetAll,
    })
}
