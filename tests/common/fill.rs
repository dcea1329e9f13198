//! Large lists written straight into a database, for the test that pages through them
//! and for the benchmark that times it (`benches/gateway/lists.rs` includes this file):
//! users `user-000000`…, and audit events one second apart from `first_at` on, whose
//! actions take turns, one in 10,000 a key rotation, one actor in 100 `ops` instead of
//! `admin`. Keep `first_at` within the audit retention (365 days by default): the
//! server's purge takes older events while the caller reads them.

/// Adds `users` users and `events` audit events to tenant `tenant_id` of the database
/// at `url` (SQLite or PostgreSQL, already migrated), the events from `first_at` on.
#[allow(
    unreachable_pub,
    reason = "the benchmark includes this file as a private module"
)]
pub async fn fill_lists(url: &str, tenant_id: i64, users: i64, events: i64, first_at: i64) {
    let sqlite = url.starts_with("sqlite:");
    let (numbers, name, n) = if sqlite {
        (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1) ",
            "printf('user-%06d', i % 100000)",
            "n",
        )
    } else {
        (
            "",
            "'user-' || lpad((i % 100000)::text, 6, '0')",
            "generate_series(0::bigint, $2 - 1) AS i",
        )
    };
    let enabled = if sqlite { "1" } else { "TRUE" };
    let users_sql = format!(
        "{numbers}INSERT INTO users (tenant_id, username, password_hash, enabled, failed_attempts, source, created_at) \
         SELECT $1, {name}, 'not a hash', {enabled}, 0, 'api', 0 FROM {n}"
    );
    let events_sql = format!(
        "{numbers}INSERT INTO audit_events (tenant_id, at, actor, action, target, client_address) \
         SELECT $1, $3 + i, CASE WHEN i % 100 = 0 THEN 'ops' ELSE 'admin' END, \
                CASE WHEN i % 10000 = 0 THEN 'key.rotate' \
                     WHEN i % 3 = 0 THEN 'user.create' WHEN i % 3 = 1 THEN 'user.disable' \
                     ELSE 'user.password' END, \
                {name}, '127.0.0.1' FROM {n}"
    );
    let statements = [(users_sql, users), (events_sql, events)];
    if sqlite {
        let pool = sqlx::SqlitePool::connect(url).await.expect("the database");
        for (sql, count) in &statements {
            let query = sqlx::query(sql).bind(tenant_id).bind(*count);
            let query = if sql.contains("$3") {
                query.bind(first_at)
            } else {
                query
            };
            query.execute(&pool).await.expect("the fill");
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("the database");
        for (sql, count) in &statements {
            let query = sqlx::query(sql).bind(tenant_id).bind(*count);
            let query = if sql.contains("$3") {
                query.bind(first_at)
            } else {
                query
            };
            query.execute(&pool).await.expect("the fill");
        }
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("ANALYZE");
        pool.close().await;
    }
}

/// Adds `clients` confidential clients `client-00000`… to tenant `tenant_id`, for the
/// console's Clients pages.
#[allow(
    unreachable_pub,
    reason = "the benchmark includes this file as a private module"
)]
pub async fn fill_clients(url: &str, tenant_id: i64, clients: i64) {
    let sqlite = url.starts_with("sqlite:");
    let (numbers, name, n) = if sqlite {
        (
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 - 1) ",
            "printf('client-%05d', i)",
            "n",
        )
    } else {
        (
            "",
            "'client-' || lpad(i::text, 5, '0')",
            "generate_series(0::bigint, $2 - 1) AS i",
        )
    };
    let sql = format!(
        "{numbers}INSERT INTO clients (tenant_id, client_id, secret_hash, grant_types, redirect_uris, scopes, \
                                       failed_attempts, source, created_at) \
         SELECT $1, {name}, 'not a hash', '[\"client_credentials\"]', '[]', '[]', 0, 'api', 0 FROM {n}"
    );
    if sqlite {
        let pool = sqlx::SqlitePool::connect(url).await.expect("the database");
        let query = sqlx::query(&sql).bind(tenant_id).bind(clients);
        query.execute(&pool).await.expect("the fill");
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("the database");
        let query = sqlx::query(&sql).bind(tenant_id).bind(clients);
        query.execute(&pool).await.expect("the fill");
        sqlx::query("ANALYZE clients")
            .execute(&pool)
            .await
            .expect("ANALYZE");
        pool.close().await;
    }
}
