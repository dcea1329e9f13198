//! The PostgreSQL backend: one pool for many instances on one database.

use super::sql::{impl_conn, Backend};
use super::Result;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres as Db, Transaction};
use std::str::FromStr;
use std::time::Duration;

impl_conn!(PgConnection, Db);

const CONNECTIONS: u32 = 16;

pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    pub async fn connect(url: &str) -> Result<Self> {
        // Every acknowledged write must survive a crash (SPEC §10), whatever the
        // server's default.
        let options = PgConnectOptions::from_str(url)?.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        Ok(Postgres { pool })
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
}
