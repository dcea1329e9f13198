//! The one SQL implementation of the store, shared by SQLite and PostgreSQL.

use super::{
    ClientRecord, Digest, Error, NewClient, NewToken, NewUser, Result, Rotation, RuleRow,
    Selection, Source, TenantRow, TenantSettings, TokenRecord, UserRecord,
};
use crate::domain::permission::Permission;
use crate::domain::token::{self, Event, State, TokenKind};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Which database the URL named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub(super) pool: AnyPool,
    backend: Backend,
}

pub(super) const CLIENT_COLUMNS: &str =
    "id, tenant_id, client_id, secret_hash, grant_types, redirect_uris, scopes, require_pkce, failed_attempts, locked_until";

const TOKEN_COLUMNS: &str = "id, tenant_id, kind, digest, jti, grant_id, refresh_digest, client_id, username, \
     scope, issued_at, not_before, expires_at, state, state_reason, state_changed_at, state_changed_by, \
     redirect_uri, code_challenge, grant_started_at";

impl Store {
    /// A write transaction. On SQLite it takes the write lock at `BEGIN IMMEDIATE`, where
    /// `busy_timeout` waits for it: a deferred transaction that read first and writes
    /// second fails with "database is locked" at once when another writer holds it.
    pub(super) async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Opens a pool for `url`, creating an SQLite file (and its folder) when missing.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| Error::Unavailable(sqlx::Error::Io(e)))?;
            }
            let url = if path.contains("mode=") {
                url.to_owned()
            } else if path.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(Error::UnsupportedUrl(scheme.to_owned()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(3))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // Every acknowledged write must survive a crash (SPEC §10).
                    let setup: &[&str] = match backend {
                        Backend::Sqlite => &[
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 5000",
                        ],
                        Backend::Postgres => &["SET synchronous_commit = on"],
                    };
                    for statement in setup {
                        sqlx::query(statement).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- tenants ----------------------------------------------------------------

    pub async fn tenants(&self) -> Result<Vec<TenantRow>> {
        let rows = sqlx::query(
            "SELECT id, domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
             grant_max_lifetime, introspection_clients, resources, requests_per_caller, requests_per_tenant \
             FROM tenants ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_row).collect()
    }

    /// Creates the tenant when missing, else updates it to match `settings`. Resource
    /// rules are only replaced when `settings` declares some: a file without
    /// `[[resources]]` leaves rules set through the admin API alone.
    /// Returns the tenant's id.
    pub async fn upsert_tenant(
        &self,
        settings: &TenantSettings,
        source: Source,
        now: i64,
    ) -> Result<i64> {
        let resources = settings.resources.as_ref().map(to_json).transpose()?;
        let row = sqlx::query(
            "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                                  introspection_clients, resources, source, created_at, grant_max_lifetime, \
                                  requests_per_caller, requests_per_tenant) \
             VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (domain) DO UPDATE SET access_token_ttl = $2, refresh_token_ttl = $3, \
                 authorization_code_ttl = $4, introspection_clients = $5, \
                 resources = COALESCE($6, tenants.resources), grant_max_lifetime = $9, \
                 requests_per_caller = $10, requests_per_tenant = $11 \
             RETURNING id",
        )
        .bind(&settings.domain)
        .bind(settings.access_token_ttl)
        .bind(settings.refresh_token_ttl)
        .bind(settings.authorization_code_ttl)
        .bind(to_json(&settings.introspection_clients)?)
        .bind(resources)
        .bind(source.as_str())
        .bind(now)
        .bind(settings.grant_max_lifetime)
        .bind(settings.requests_per_caller)
        .bind(settings.requests_per_tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    // ---- roles and users ----------------------------------------------------------

    /// Creates or replaces a role's permission list.
    pub async fn upsert_role(
        &self,
        tenant_id: i64,
        name: &str,
        permissions: &[String],
        source: Source,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO roles (tenant_id, name, permissions, source) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = $3",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(to_json(permissions)?)
        .bind(source.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One user with the permissions of their roles, in one query.
    pub async fn user(&self, tenant_id: i64, username: &str) -> Result<Option<UserRecord>> {
        Ok(self.load_users(tenant_id, Some(username)).await?.pop())
    }

    /// Users of a tenant (or the one named) with their roles' permissions, by username.
    pub(super) async fn load_users(
        &self,
        tenant_id: i64,
        username: Option<&str>,
    ) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.password_hash, u.enabled, u.failed_attempts, u.locked_until, \
                    ur.role, r.permissions \
             FROM users u \
             LEFT JOIN user_roles ur ON ur.user_id = u.id \
             LEFT JOIN roles r ON r.tenant_id = u.tenant_id AND r.name = ur.role \
             WHERE u.tenant_id = $1 AND ($2 = '' OR u.username = $2) \
             ORDER BY u.username, ur.role",
        )
        .bind(tenant_id)
        .bind(username.unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        let mut users: Vec<UserRecord> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            if users.last().is_none_or(|u| u.id != id) {
                users.push(UserRecord {
                    id,
                    tenant_id,
                    username: row.try_get("username")?,
                    password_hash: row.try_get("password_hash")?,
                    enabled: row.try_get::<i64, _>("enabled")? != 0,
                    roles: Vec::new(),
                    permissions: Vec::new(),
                    failed_attempts: row.try_get("failed_attempts")?,
                    locked_until: row.try_get("locked_until")?,
                });
            }
            let user = users.last_mut().expect("pushed above");
            if let Some(role) = row.try_get::<Option<String>, _>("role")? {
                user.roles.push(role);
            }
            if let Some(permissions) = row.try_get::<Option<String>, _>("permissions")? {
                // Paths are validated when written; one that no longer parses grants nothing.
                let paths = from_json::<Vec<String>>(&permissions)?;
                user.permissions
                    .extend(paths.iter().filter_map(|p| Permission::parse(p).ok()));
            }
        }
        for user in &mut users {
            user.permissions.sort();
            user.permissions.dedup();
        }
        Ok(users)
    }

    pub async fn user_count(&self, tenant_id: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates a user, or (for `Source::File`) brings a file-declared user back in line
    /// with its file. A user created through the API is never overwritten by a file.
    pub async fn upsert_user(
        &self,
        tenant_id: i64,
        user: &NewUser<'_>,
        source: Source,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let existing =
            sqlx::query("SELECT id, source FROM users WHERE tenant_id = $1 AND username = $2")
                .bind(tenant_id)
                .bind(user.username)
                .fetch_optional(&mut *tx)
                .await?;
        let user_id: i64 = match existing {
            Some(row) if row.try_get::<String, _>("source")? != source.as_str() => return Ok(()),
            Some(row) => {
                let id: i64 = row.try_get("id")?;
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(user.password_hash)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            None => super::admin::insert_user(&mut tx, tenant_id, user, source, now).await?,
        };
        super::admin::replace_roles(&mut tx, tenant_id, user_id, user.roles).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- clients ------------------------------------------------------------------

    /// A client by its id, whatever its tenant (ids are unique across tenants).
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_record).transpose()
    }

    /// Creates a client, or brings a file-declared one in line with its file. A client
    /// id taken by another tenant, or by the API, is a duplicate.
    pub async fn upsert_client(
        &self,
        tenant_id: i64,
        client: &NewClient<'_>,
        source: Source,
        now: i64,
    ) -> Result<()> {
        let existing = sqlx::query("SELECT tenant_id, source FROM clients WHERE client_id = $1")
            .bind(client.client_id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = existing {
            let same_owner = row.try_get::<i64, _>("tenant_id")? == tenant_id
                && row.try_get::<String, _>("source")? == source.as_str();
            if !same_owner {
                return Err(Error::Duplicate("client_id"));
            }
            sqlx::query(
                "UPDATE clients SET secret_hash = $1, grant_types = $2, redirect_uris = $3, scopes = $4, \
                     require_pkce = $6 \
                 WHERE client_id = $5",
            )
            .bind(client.secret_hash)
            .bind(to_json(client.grant_types)?)
            .bind(to_json(client.redirect_uris)?)
            .bind(to_json(client.scopes)?)
            .bind(client.client_id)
            .bind(i64::from(client.require_pkce))
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let mut tx = self.begin().await?;
        super::admin::insert_client(&mut tx, tenant_id, client, source, now).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- tokens -------------------------------------------------------------------

    /// Stores the tokens of one issuance in one transaction: all or none.
    pub async fn insert_tokens(&self, tokens: &[NewToken]) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_tokens(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The token with this digest in this tenant: one indexed read.
    pub async fn token(&self, tenant_id: i64, digest: &Digest) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE digest = $1 AND tenant_id = $2"
        ))
        .bind(&digest[..])
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_record).transpose()
    }

    /// Applies each `(kind, selection, event)` step to the selected tokens that the state
    /// machine lets it move, all in one transaction (a revocation and its cascade), and
    /// returns the digests of the tokens that changed.
    pub async fn transitions(
        &self,
        tenant_id: i64,
        steps: &[(TokenKind, Selection, Event)],
        now: i64,
        actor: &str,
    ) -> Result<Vec<Digest>> {
        let mut tx = self.begin().await?;
        let mut changed = Vec::new();
        for (kind, selection, event) in steps {
            changed.extend(
                transition(&mut tx, tenant_id, *kind, selection, *event, now, actor).await?,
            );
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Redeems a single-use credential in one transaction: a refresh token (the refresh
    /// grant) becomes INACTIVE with the access tokens issued with it, or a code becomes
    /// INACTIVE (exchanged); then `new` is stored. If the credential is no longer ACTIVE
    /// when the transaction runs (a concurrent use), nothing is written.
    pub async fn redeem(
        &self,
        old: &TokenRecord,
        new: &[NewToken],
        now: i64,
        actor: &str,
    ) -> Result<Rotation> {
        let tenant_id = old.token.tenant_id;
        let event = match old.token.kind {
            TokenKind::AuthorizationCode => Event::Exchange,
            TokenKind::Access | TokenKind::Refresh => Event::Refresh,
        };
        let mut tx = self.begin().await?;
        let mut changed = transition(
            &mut tx,
            tenant_id,
            old.token.kind,
            &Selection::Token(old.id),
            event,
            now,
            actor,
        )
        .await?;
        if changed.is_empty() {
            return Ok(Rotation::Lost);
        }
        if old.token.kind == TokenKind::Refresh {
            let issued_with = Selection::IssuedWith(old.token.digest);
            changed.extend(
                transition(
                    &mut tx,
                    tenant_id,
                    TokenKind::Access,
                    &issued_with,
                    event,
                    now,
                    actor,
                )
                .await?,
            );
        }
        insert_tokens(&mut tx, new).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated(changed))
    }
}

async fn insert_tokens(tx: &mut Transaction<'_, Any>, tokens: &[NewToken]) -> Result<()> {
    for t in tokens {
        sqlx::query(
            "INSERT INTO tokens (tenant_id, kind, digest, jti, grant_id, refresh_digest, client_id, username, \
                                 scope, issued_at, not_before, expires_at, state, redirect_uri, code_challenge, \
                                 grant_started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(t.tenant_id)
        .bind(t.kind.as_str())
        .bind(&t.digest[..])
        .bind(&t.jti)
        .bind(&t.grant_id)
        .bind(t.refresh_digest.as_ref().map(|d| d.to_vec()))
        .bind(&t.client_id)
        .bind(&t.username)
        .bind(&t.scope)
        .bind(t.issued_at)
        .bind(t.not_before)
        .bind(t.expires_at)
        .bind(State::Active.as_str())
        .bind(&t.redirect_uri)
        .bind(&t.code_challenge)
        .bind(t.grant_started_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The bulk form of [`token::apply`]: the `WHERE state IN (…)` list and the new state
/// both come from the state machine.
pub(super) async fn transition(
    tx: &mut Transaction<'_, Any>,
    tenant_id: i64,
    kind: TokenKind,
    selection: &Selection,
    event: Event,
    now: i64,
    actor: &str,
) -> Result<Vec<Digest>> {
    let (from, target) = token::sources(kind, event);
    let Some(target) = target else {
        return Ok(Vec::new());
    };
    // The state names are our own constants, never input, so they may be inlined.
    let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let filter = match selection {
        Selection::Token(_) => "id = $6",
        Selection::Grant(_) => "grant_id = $6",
        Selection::IssuedWith(_) => "refresh_digest = $6",
        Selection::RefreshOf(_) => "digest = $6",
        Selection::Owner(_) => "username = $6",
        Selection::Client(_) => "client_id = $6",
        Selection::Tenant => "tenant_id = $6",
    };
    let sql = format!(
        "UPDATE tokens SET state = $1, state_reason = $2, state_changed_at = $3, state_changed_by = $4 \
         WHERE tenant_id = $5 AND kind = $7 AND state IN ({}) AND {filter} RETURNING digest",
        from.join(", ")
    );
    let query = sqlx::query(&sql)
        .bind(target.to.as_str())
        .bind(target.reason.as_str())
        .bind(now)
        .bind(actor)
        .bind(tenant_id);
    let query = match selection {
        Selection::Token(id) => query.bind(*id),
        Selection::Grant(name) | Selection::Owner(name) | Selection::Client(name) => {
            query.bind(name.clone())
        }
        Selection::Tenant => query.bind(tenant_id),
        Selection::IssuedWith(d) | Selection::RefreshOf(d) => query.bind(d.to_vec()),
    };
    let rows = query.bind(kind.as_str()).fetch_all(&mut **tx).await?;
    rows.iter().map(|row| digest(row, "digest")).collect()
}

pub(super) fn client_record(row: &AnyRow) -> Result<ClientRecord> {
    Ok(ClientRecord {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        client_id: row.try_get("client_id")?,
        secret_hash: row.try_get("secret_hash")?,
        grant_types: from_json(&row.try_get::<String, _>("grant_types")?)?,
        redirect_uris: from_json(&row.try_get::<String, _>("redirect_uris")?)?,
        scopes: from_json(&row.try_get::<String, _>("scopes")?)?,
        require_pkce: row.try_get::<i64, _>("require_pkce")? != 0,
        failed_attempts: row.try_get("failed_attempts")?,
        locked_until: row.try_get("locked_until")?,
    })
}

fn tenant_row(row: &AnyRow) -> Result<TenantRow> {
    let resources: Option<String> = row.try_get("resources")?;
    Ok(TenantRow {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        active: row.try_get::<i64, _>("active")? != 0,
        access_token_ttl: row.try_get("access_token_ttl")?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        authorization_code_ttl: row.try_get("authorization_code_ttl")?,
        grant_max_lifetime: row.try_get("grant_max_lifetime")?,
        requests_per_caller: row.try_get("requests_per_caller")?,
        requests_per_tenant: row.try_get("requests_per_tenant")?,
        introspection_clients: from_json(&row.try_get::<String, _>("introspection_clients")?)?,
        resources: resources
            .as_deref()
            .map(from_json::<Vec<RuleRow>>)
            .transpose()?,
    })
}

fn token_record(row: &AnyRow) -> Result<TokenRecord> {
    let parse = |column: &str| -> Result<String> { Ok(row.try_get::<String, _>(column)?) };
    let corrupt = |e: token::UnknownName| Error::Corrupt(e.to_string());
    let refresh_digest = match row.try_get::<Option<Vec<u8>>, _>("refresh_digest")? {
        Some(bytes) => Some(to_digest(bytes)?),
        None => None,
    };
    Ok(TokenRecord {
        id: row.try_get("id")?,
        token: NewToken {
            tenant_id: row.try_get("tenant_id")?,
            kind: parse("kind")?.parse().map_err(corrupt)?,
            digest: digest(row, "digest")?,
            jti: parse("jti")?,
            grant_id: parse("grant_id")?,
            grant_started_at: row.try_get("grant_started_at")?,
            refresh_digest,
            client_id: parse("client_id")?,
            username: row.try_get("username")?,
            scope: parse("scope")?,
            issued_at: row.try_get("issued_at")?,
            not_before: row.try_get("not_before")?,
            expires_at: row.try_get("expires_at")?,
            redirect_uri: row.try_get("redirect_uri")?,
            code_challenge: row.try_get("code_challenge")?,
        },
        state: parse("state")?.parse().map_err(corrupt)?,
        state_reason: row
            .try_get::<Option<String>, _>("state_reason")?
            .map(|r| r.parse())
            .transpose()
            .map_err(corrupt)?,
        state_changed_at: row.try_get("state_changed_at")?,
        state_changed_by: row.try_get("state_changed_by")?,
    })
}

fn digest(row: &AnyRow, column: &str) -> Result<Digest> {
    to_digest(row.try_get::<Vec<u8>, _>(column)?)
}

fn to_digest(bytes: Vec<u8>) -> Result<Digest> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a token digest is not 32 bytes".into()))
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(e.to_string()))
}
