//! What tenant administration reads and writes: users, roles, clients, resource rules,
//! tenants, sign-in failure counters and the audit log.
//!
//! Every change commits together with its audit entry, and a change that ends tokens
//! (a password change, a deleted client, a deactivated tenant) commits together with
//! those tokens' transitions: there is no moment at which one is true without the other.

use super::sql::{client_record, from_json, to_json, transition, CLIENT_COLUMNS};
use super::{
    AuditEvent, ClientRecord, Digest, Error, LockTarget, NewClient, NewUser, Result, RoleRecord,
    RuleRow, Selection, Source, Store, TenantSettings, UserChange, UserRecord,
};
use crate::domain::token::{Event, OwnerChange, TokenKind};
use sqlx::{Any, Row, Transaction};

/// A unique-key violation becomes `Duplicate(what)`; anything else stays itself.
fn duplicate_as(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate(what),
        other => Error::from(other),
    }
}

impl Store {
    // ---- users ----------------------------------------------------------------------

    pub async fn users(&self, tenant_id: i64) -> Result<Vec<UserRecord>> {
        self.load_users(tenant_id, None).await
    }

    /// Creates a user through the API; a taken username is `Duplicate("username")`.
    pub async fn create_user(
        &self,
        tenant_id: i64,
        user: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let id = insert_user(&mut tx, tenant_id, user, Source::Api, audit.at).await?;
        replace_roles(&mut tx, tenant_id, id, user.roles).await?;
        commit_audited(tx, audit).await?;
        Ok(())
    }

    /// Applies `change` to a user and, for a password change, a disable or a deletion,
    /// makes the user's tokens INACTIVE. `None` when there is no such user; otherwise
    /// the digests of the tokens that changed.
    pub async fn change_user(
        &self,
        tenant_id: i64,
        username: &str,
        change: UserChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<Vec<Digest>>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
            .bind(tenant_id)
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user_id) = row.map(|r| r.try_get::<i64, _>("id")).transpose()? else {
            return Ok(None);
        };
        let ends_tokens = match change {
            UserChange::Password(hash) => {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                Some(OwnerChange::PasswordChanged)
            }
            UserChange::Enabled(enabled) => {
                sqlx::query("UPDATE users SET enabled = $1 WHERE id = $2")
                    .bind(i64::from(enabled))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                (!enabled).then_some(OwnerChange::UserDisabled)
            }
            UserChange::Roles(roles) => {
                replace_roles(&mut tx, tenant_id, user_id, roles).await?;
                None
            }
            UserChange::Delete => {
                sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                Some(OwnerChange::UserDeleted)
            }
        };
        let mut changed = Vec::new();
        if let Some(cause) = ends_tokens {
            let owner = Selection::Owner(username.to_owned());
            changed = end_tokens(
                &mut tx,
                tenant_id,
                &owner,
                Event::OwnerChanged(cause),
                audit,
            )
            .await?;
        }
        commit_audited(tx, audit).await?;
        Ok(Some(changed))
    }

    /// Counts one failed sign-in. The count reaching `threshold` locks the principal
    /// until `locked_until` and starts the count again. Returns the lock's end when this
    /// failure locked it. The failure and any lock are audited in the same transaction.
    pub async fn record_failure(
        &self,
        target: LockTarget<'_>,
        threshold: i64,
        locked_until: i64,
        failure: &AuditEvent,
        lock: &AuditEvent,
    ) -> Result<Option<i64>> {
        let (table, filter) = lock_filter(target, 3);
        let sql = format!(
            "UPDATE {table} SET \
                 locked_until = CASE WHEN failed_attempts + 1 >= $1 THEN $2 ELSE locked_until END, \
                 failed_attempts = CASE WHEN failed_attempts + 1 >= $1 THEN 0 ELSE failed_attempts + 1 END \
             WHERE {filter} RETURNING failed_attempts, locked_until"
        );
        let mut tx = self.begin().await?;
        let row = bind_lock_target(sqlx::query(&sql).bind(threshold).bind(locked_until), target)
            .fetch_optional(&mut *tx)
            .await?;
        insert_audit(&mut tx, failure).await?;
        let mut locked = None;
        if let Some(row) = row {
            let count: i64 = row.try_get("failed_attempts")?;
            let until: Option<i64> = row.try_get("locked_until")?;
            if count == 0 && until == Some(locked_until) {
                insert_audit(&mut tx, lock).await?;
                locked = until;
            }
        }
        tx.commit().await?;
        Ok(locked)
    }

    /// Resets the failure count and lifts any lock. `audit` is written when given (an
    /// admin's unlock), not for the reset after a successful sign-in. False when the
    /// principal is gone.
    pub async fn clear_failures(
        &self,
        target: LockTarget<'_>,
        audit: Option<&AuditEvent>,
    ) -> Result<bool> {
        let (table, filter) = lock_filter(target, 1);
        let sql =
            format!("UPDATE {table} SET failed_attempts = 0, locked_until = NULL WHERE {filter}");
        let mut tx = self.begin().await?;
        let done = bind_lock_target(sqlx::query(&sql), target)
            .execute(&mut *tx)
            .await?;
        if let (1, Some(audit)) = (done.rows_affected(), audit) {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Resets the failure count after a successful sign-in, unless a lock is in force:
    /// a lock set by a concurrent failure is never lifted by a success. False when the
    /// principal is locked (or gone).
    pub async fn reset_failures(&self, target: LockTarget<'_>, now: i64) -> Result<bool> {
        let (table, filter) = lock_filter(target, 2);
        let sql = format!(
            "UPDATE {table} SET failed_attempts = 0 \
             WHERE {filter} AND (locked_until IS NULL OR locked_until <= $1)"
        );
        let done = bind_lock_target(sqlx::query(&sql).bind(now), target)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- roles ----------------------------------------------------------------------

    pub async fn roles(&self, tenant_id: i64) -> Result<Vec<RoleRecord>> {
        let rows =
            sqlx::query("SELECT name, permissions FROM roles WHERE tenant_id = $1 ORDER BY name")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(RoleRecord {
                    name: row.try_get("name")?,
                    permissions: from_json(&row.try_get::<String, _>("permissions")?)?,
                })
            })
            .collect()
    }

    pub async fn create_role(
        &self,
        tenant_id: i64,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO roles (tenant_id, name, permissions, source) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant_id)
        .bind(&role.name)
        .bind(to_json(&role.permissions)?)
        .bind(Source::Api.as_str())
        .execute(&mut *tx)
        .await
        .map_err(duplicate_as("name"))?;
        commit_audited(tx, audit).await?;
        Ok(())
    }

    /// Replaces an existing role's permissions; false when there is no such role.
    pub async fn update_role(
        &self,
        tenant_id: i64,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE roles SET permissions = $1 WHERE tenant_id = $2 AND name = $3")
                .bind(to_json(&role.permissions)?)
                .bind(tenant_id)
                .bind(&role.name)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        commit_audited(tx, audit).await?;
        Ok(true)
    }

    /// Deletes a role and takes it from every user who had it.
    pub async fn delete_role(
        &self,
        tenant_id: i64,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM user_roles WHERE tenant_id = $1 AND role = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM roles WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        commit_audited(tx, audit).await?;
        Ok(true)
    }

    // ---- clients --------------------------------------------------------------------

    pub async fn clients(&self, tenant_id: i64) -> Result<Vec<ClientRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE tenant_id = $1 ORDER BY client_id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_record).collect()
    }

    /// Registers a client; an id taken in any tenant is `Duplicate("client_id")`.
    pub async fn create_client(
        &self,
        tenant_id: i64,
        client: &NewClient<'_>,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_client(&mut tx, tenant_id, client, Source::Api, audit.at).await?;
        commit_audited(tx, audit).await?;
        Ok(())
    }

    /// Deletes a client and makes its tokens INACTIVE; `None` when there is no such
    /// client in the tenant.
    pub async fn delete_client(
        &self,
        tenant_id: i64,
        client_id: &str,
        audit: &AuditEvent,
    ) -> Result<Option<Vec<Digest>>> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let selection = Selection::Client(client_id.to_owned());
        let changed = end_tokens(
            &mut tx,
            tenant_id,
            &selection,
            Event::OwnerChanged(OwnerChange::ClientDeleted),
            audit,
        )
        .await?;
        commit_audited(tx, audit).await?;
        Ok(Some(changed))
    }

    pub async fn set_client_secret(
        &self,
        tenant_id: i64,
        client_id: &str,
        secret_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE clients SET secret_hash = $1 WHERE tenant_id = $2 AND client_id = $3",
        )
        .bind(secret_hash)
        .bind(tenant_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        commit_audited(tx, audit).await?;
        Ok(true)
    }

    // ---- tokens, resources and tenants -----------------------------------------------

    /// Revokes the selected access and refresh tokens, with the audit entry.
    pub async fn revoke_by_admin(
        &self,
        tenant_id: i64,
        steps: &[(TokenKind, Selection, Event)],
        audit: &AuditEvent,
    ) -> Result<Vec<Digest>> {
        let mut tx = self.begin().await?;
        let mut changed = Vec::new();
        for (kind, selection, event) in steps {
            changed.extend(
                transition(
                    &mut tx,
                    tenant_id,
                    *kind,
                    selection,
                    *event,
                    audit.at,
                    &audit.actor,
                )
                .await?,
            );
        }
        commit_audited(tx, audit).await?;
        Ok(changed)
    }

    /// Replaces a tenant's resource rules; `None` restores the defaults.
    pub async fn set_resources(
        &self,
        tenant_id: i64,
        rules: Option<&[RuleRow]>,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE tenants SET resources = $1 WHERE id = $2")
            .bind(rules.map(to_json).transpose()?)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        commit_audited(tx, audit).await?;
        Ok(())
    }

    /// Creates a tenant with its first administrator, who holds `admin_role`, in one
    /// transaction; a taken domain is `Duplicate("domain")`. The audit entry goes to the
    /// tenant that asked (the super tenant).
    pub async fn create_tenant(
        &self,
        settings: &TenantSettings,
        admin_role: &RoleRecord,
        admin: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let tenant_id: i64 = sqlx::query(
            "INSERT INTO tenants (domain, active, access_token_ttl, refresh_token_ttl, authorization_code_ttl, \
                                  introspection_clients, resources, source, created_at, grant_max_lifetime, \
                                  requests_per_caller, requests_per_tenant) \
             VALUES ($1, 1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&settings.domain)
        .bind(settings.access_token_ttl)
        .bind(settings.refresh_token_ttl)
        .bind(settings.authorization_code_ttl)
        .bind(to_json(&settings.introspection_clients)?)
        .bind(Source::Api.as_str())
        .bind(audit.at)
        .bind(settings.grant_max_lifetime)
        .bind(settings.requests_per_caller)
        .bind(settings.requests_per_tenant)
        .fetch_one(&mut *tx)
        .await
        .map_err(duplicate_as("domain"))?
        .try_get("id")?;
        sqlx::query(
            "INSERT INTO roles (tenant_id, name, permissions, source) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant_id)
        .bind(&admin_role.name)
        .bind(to_json(&admin_role.permissions)?)
        .bind(Source::Api.as_str())
        .execute(&mut *tx)
        .await?;
        let user_id = insert_user(&mut tx, tenant_id, admin, Source::Api, audit.at).await?;
        replace_roles(&mut tx, tenant_id, user_id, admin.roles).await?;
        commit_audited(tx, audit).await?;
        Ok(tenant_id)
    }

    /// Deactivates a tenant and makes all its tokens INACTIVE.
    pub async fn deactivate_tenant(
        &self,
        tenant_id: i64,
        audit: &AuditEvent,
    ) -> Result<Vec<Digest>> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE tenants SET active = 0 WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let event = Event::OwnerChanged(OwnerChange::TenantDeactivated);
        let changed = end_tokens(&mut tx, tenant_id, &Selection::Tenant, event, audit).await?;
        commit_audited(tx, audit).await?;
        Ok(changed)
    }

    // ---- audit ----------------------------------------------------------------------

    /// Writes one audit entry on its own (a failed sign-in of an unknown principal).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        commit_audited(self.begin().await?, event).await
    }

    /// At most `limit` events of the tenant, newest first, older than event `before`.
    pub async fn audit_events(
        &self,
        tenant_id: i64,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, at, actor, action, target, client_address FROM audit_events \
             WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: row.try_get("id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    client_address: row.try_get("client_address")?,
                })
            })
            .collect()
    }
}

pub(super) async fn insert_user(
    tx: &mut Transaction<'_, Any>,
    tenant_id: i64,
    user: &NewUser<'_>,
    source: Source,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO users (tenant_id, username, password_hash, enabled, failed_attempts, source, created_at) \
         VALUES ($1, $2, $3, 1, 0, $4, $5) RETURNING id",
    )
    .bind(tenant_id)
    .bind(user.username)
    .bind(user.password_hash)
    .bind(source.as_str())
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(duplicate_as("username"))?;
    Ok(row.try_get("id")?)
}

/// Registers a client; an id taken in any tenant is `Duplicate("client_id")`.
pub(super) async fn insert_client(
    tx: &mut Transaction<'_, Any>,
    tenant_id: i64,
    client: &NewClient<'_>,
    source: Source,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO clients (tenant_id, client_id, secret_hash, grant_types, redirect_uris, scopes, \
                              failed_attempts, source, created_at, require_pkce) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
    )
    .bind(tenant_id)
    .bind(client.client_id)
    .bind(client.secret_hash)
    .bind(to_json(client.grant_types)?)
    .bind(to_json(client.redirect_uris)?)
    .bind(to_json(client.scopes)?)
    .bind(source.as_str())
    .bind(now)
    .bind(i64::from(client.require_pkce))
    .execute(&mut **tx)
    .await
    .map_err(duplicate_as("client_id"))?;
    Ok(())
}

/// Moves the selected access and refresh tokens by `event`.
async fn end_tokens(
    tx: &mut Transaction<'_, Any>,
    tenant_id: i64,
    selection: &Selection,
    event: Event,
    audit: &AuditEvent,
) -> Result<Vec<Digest>> {
    let mut changed = Vec::new();
    for kind in [TokenKind::Access, TokenKind::Refresh] {
        changed.extend(
            transition(
                tx,
                tenant_id,
                kind,
                selection,
                event,
                audit.at,
                &audit.actor,
            )
            .await?,
        );
    }
    Ok(changed)
}

/// Writes a change's audit entry and commits: the one way an audited change ends, so
/// that no change commits without its entry.
async fn commit_audited(mut tx: Transaction<'_, Any>, audit: &AuditEvent) -> Result<()> {
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_audit(tx: &mut Transaction<'_, Any>, event: &AuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, at, actor, action, target, client_address) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.tenant_id)
    .bind(event.at)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(&event.client_address)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn replace_roles(
    tx: &mut Transaction<'_, Any>,
    tenant_id: i64,
    user_id: i64,
    roles: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for role in roles {
        sqlx::query("INSERT INTO user_roles (tenant_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(tenant_id)
            .bind(user_id)
            .bind(role)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The table and `WHERE` clause of a lock target, its parameters numbered from `first`.
fn lock_filter(target: LockTarget<'_>, first: usize) -> (&'static str, String) {
    match target {
        LockTarget::User { .. } => (
            "users",
            format!("tenant_id = ${first} AND username = ${}", first + 1),
        ),
        LockTarget::Client { .. } => ("clients", format!("client_id = ${first}")),
    }
}

fn bind_lock_target<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    target: LockTarget<'q>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    match target {
        LockTarget::User {
            tenant_id,
            username,
        } => query.bind(tenant_id).bind(username),
        LockTarget::Client { client_id } => query.bind(client_id),
    }
}
