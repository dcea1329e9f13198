//! The PostgreSQL backend: one pool for many instances on one database.
//!
//! Every write's notice goes out with `pg_notify` inside the write's transaction, so it
//! is delivered exactly when the write commits, in commit order, to every instance
//! listening on the channel (this one included). The channel is named after the schema,
//! so deployments that share a database in separate schemas do not hear each other.

use super::sql::{impl_conn, query, Backend, Conn};
use super::{Feed, Notice, Result};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres as Db, Transaction};
use std::str::FromStr;
use std::time::Duration;

impl_conn!(PgConnection, Db, anonymous_placeholders: false);

const CONNECTIONS: u32 = 16;

pub(super) struct Postgres {
    pool: PgPool,
    channel: String,
}

/// PostgreSQL identifiers, channel names among them, hold at most 63 bytes.
const MAX_CHANNEL_BYTES: usize = 63;

impl Postgres {
    pub(super) async fn connect(url: &str) -> Result<Self> {
        // Every acknowledged write must survive a crash (SPEC §10), whatever the
        // server's default.
        let options = PgConnectOptions::from_str(url)?.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
            .fetch_one(&pool)
            .await?;
        let mut channel = format!("portcullis.{schema}");
        while channel.len() > MAX_CHANNEL_BYTES {
            channel.pop();
        }
        Ok(Postgres { pool, channel })
    }
}

#[async_trait::async_trait]
impl Backend for Postgres {
    type Db = Db;

    fn readers(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn claim(&self) -> Result<()> {
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    async fn publish(&self, conn: &mut PgConnection, notice: &str) -> Result<()> {
        let statement = query("SELECT pg_notify($1, $2)")
            .bind(self.channel.as_str())
            .bind(notice);
        conn.execute(statement).await?;
        Ok(())
    }

    async fn notify(&self, notice: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        self.publish(&mut conn, notice).await
    }

    /// A transaction-level advisory lock named after the channel (so, the schema).
    async fn purge_lock(&self, conn: &mut PgConnection) -> Result<bool> {
        let statement =
            query("SELECT pg_try_advisory_xact_lock(hashtext($1))").bind(self.channel.as_str());
        let (locked,): (bool,) = conn.fetch_one(statement).await?;
        Ok(locked)
    }

    async fn subscribe(&self) -> Result<Box<dyn Feed>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.channel).await?;
        Ok(Box::new(PgFeed { listener }))
    }
}

/// One dedicated connection listening on the channel.
struct PgFeed {
    listener: PgListener,
}

#[async_trait::async_trait]
impl Feed for PgFeed {
    async fn next(&mut self) -> Result<Option<Notice>> {
        let Some(notification) = self.listener.try_recv().await? else {
            return Ok(None);
        };
        // A notice that does not parse cannot say what changed: forget everything.
        let notice = serde_json::from_str(notification.payload()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "an unreadable notice; forgetting every cache");
            Notice::ForgetAll
        });
        Ok(Some(notice))
    }
}
