//! The SQL both backends run, written once, and the one [`Store`] implementation over it.
//!
//! A query here is a [`Statement`]: its text (with `$N` parameters, which SQLite and
//! PostgreSQL both bind by position) and its arguments as native values. Each backend
//! binds those values with its own driver ([`Conn`]) and owns what differs between the
//! dialects: connections, the write lock, migrations. Rows decode through
//! `sqlx::FromRow`, which both drivers implement for the same struct. The table files
//! (one per family) import statements from `statement.rs` and records from the store,
//! never this file; `backend.rs` is what each database provides and the notice a write
//! sends, and `batch.rs` the group commit of token writes.

mod audit;
mod backend;
mod batch;
mod clients;
mod lockout;
mod ownership;
mod roles;
mod sessions;
mod signing_keys;
mod statement;
mod tenants;
mod tokens;
mod users;

pub(crate) use backend::Backend;
pub(crate) use statement::{arguments, impl_conn, query, Conn, Decoded, Statement};

use crate::domain::tenant::{TenantId, TenantSettings};
use backend::notice_of;

use super::{
    AuditEvent, AuditQuery, BulkUserChange, ChangedBy, Changes, ClientEdit, ClientRecord,
    Committed, ConsoleSessionRecord, Declared, Digest, Error, Feed, GrantPage, LiveGrant,
    LockTarget, NamePage, NewClient, NewConsoleSession, NewSignInSession, NewSigningKey, NewTenant,
    NewToken, NewUser, Notice, Purged, Result, RoleRecord, Rotation, RuleRow, Selection,
    SessionKind, SignInSessionRecord, SigningKeyRow, Source, Step, Store, TenantRow, TokenRecord,
    UserChange, UserFilter, UserRecord,
};
use crate::domain::token::Event;
use sqlx::Transaction;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The store over a backend: every operation, written once.
pub(crate) struct SqlStore<B> {
    backend: Arc<B>,
    /// The group-commit writer's queue (see [`batch`]).
    batches: mpsc::Sender<batch::Job>,
}

impl<B: Backend> SqlStore<B> {
    /// Starts the group-commit writer beside the store, started again if it panics; it
    /// stops when the store is dropped.
    pub(super) fn new(backend: B) -> Self {
        let backend = Arc::new(backend);
        let (batches, queue) = mpsc::channel(batch::QUEUE);
        let writer = backend.clone();
        tokio::spawn(batch::supervise(queue, move |queue| {
            batch::write(writer.clone(), queue)
        }));
        SqlStore { backend, batches }
    }

    /// Ends a write: its audit entry when it has one, the notice of its changes to the
    /// other instances, then the commit. The one way a write ends, so no change commits
    /// without its entry or its notice.
    async fn finish(
        &self,
        mut tx: Transaction<'static, B::Db>,
        audit: Option<&AuditEvent>,
        tenant: Option<TenantId>,
        changes: Changes,
    ) -> Result<Committed<()>> {
        if let Some(audit) = audit {
            audit::insert(&mut *tx, audit).await?;
        }
        if !changes.is_empty() && self.backend.shared() {
            let notice = notice_of(&changes, tenant)?;
            self.backend.publish(&mut *tx, &notice).await?;
        }
        tx.commit().await?;
        Ok(Committed::new((), changes))
    }

    /// [`SqlStore::finish`] for a write that may find nothing to change: when it did
    /// not, `None`, and the transaction rolls back with nothing in it.
    async fn finish_found(
        &self,
        tx: Transaction<'static, B::Db>,
        found: bool,
        audit: Option<&AuditEvent>,
        tenant: Option<TenantId>,
        changes: Changes,
    ) -> Result<Committed<Option<()>>> {
        if !found {
            return Ok(Committed::unchanged(None));
        }
        Ok(self.finish(tx, audit, tenant, changes).await?.map(Some))
    }
}

#[async_trait::async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn migrate(&self) -> Result<()> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.backend.readers().acquire().await?;
        conn.execute(query("SELECT 1")).await?;
        Ok(())
    }

    async fn close(&self) {
        self.backend.close().await;
    }

    async fn claim(&self) -> Result<()> {
        self.backend.claim().await
    }

    fn shared(&self) -> bool {
        self.backend.shared()
    }

    async fn subscribe(&self) -> Result<Box<dyn Feed>> {
        self.backend.subscribe().await
    }

    async fn notify(&self, notice: &Notice) -> Result<()> {
        let text = serde_json::to_string(notice).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.backend.notify(&text).await
    }

    // ---- tenants ------------------------------------------------------------------

    async fn tenants(&self) -> Result<Vec<TenantRow>> {
        let mut conn = self.backend.readers().acquire().await?;
        tenants::all(&mut *conn).await
    }

    async fn tenants_page(&self, page: &NamePage) -> Result<Vec<TenantRow>> {
        let mut conn = self.backend.readers().acquire().await?;
        tenants::page(&mut *conn, page).await
    }

    async fn upsert_tenant(
        &self,
        tenant: &NewTenant,
        source: Source,
        now: i64,
    ) -> Result<Committed<TenantId>> {
        let mut tx = self.backend.begin_write().await?;
        let id = tenants::upsert(&mut *tx, tenant, source, now).await?;
        let committed = self.finish(tx, None, Some(id), Changes::tenant(id)).await?;
        Ok(committed.map(|()| id))
    }

    async fn release_undeclared(
        &self,
        tenant_id: TenantId,
        declared: Option<&Declared>,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let changes = ownership::release_undeclared(&mut *tx, tenant_id, declared).await?;
        self.finish(tx, None, Some(tenant_id), changes).await
    }

    async fn set_settings(
        &self,
        tenant_id: TenantId,
        settings: &TenantSettings,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        tenants::set_settings(&mut *tx, tenant_id, settings).await?;
        let changes = Changes::tenant(tenant_id);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn set_resources(
        &self,
        tenant_id: TenantId,
        rules: Option<&[RuleRow]>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        tenants::set_resources(&mut *tx, tenant_id, rules).await?;
        let changes = Changes::tenant(tenant_id);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn create_tenant(
        &self,
        tenant: &NewTenant,
        admin_role: &RoleRecord,
        admin: &NewUser<'_>,
        signing_key: &NewSigningKey,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let tenant_id = tenants::insert(&mut *tx, tenant, audit.at).await?;
        roles::insert(&mut *tx, tenant_id, admin_role).await?;
        let user_id = users::insert(&mut *tx, tenant_id, admin, Source::Api, audit.at).await?;
        users::replace_roles(&mut *tx, tenant_id, user_id, admin.roles).await?;
        signing_keys::insert(&mut *tx, tenant_id, signing_key).await?;
        let changes = Changes {
            signing_keys: vec![tenant_id],
            ..Changes::tenant(tenant_id)
        };
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn deactivate_tenant(
        &self,
        tenant_id: TenantId,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        tenants::deactivate(&mut *tx, tenant_id).await?;
        let event = Event::OwnerChanged(crate::domain::token::OwnerChange::TenantDeactivated);
        let tokens =
            tokens::end_access_and_refresh(&mut *tx, tenant_id, &Selection::Tenant, event, audit)
                .await?;
        let changes = Changes {
            tokens,
            users_of_tenants: vec![tenant_id],
            ..Changes::tenant(tenant_id)
        };
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    // ---- signing keys -------------------------------------------------------------

    async fn signing_keys(
        &self,
        tenant_id: TenantId,
        retired_after: i64,
    ) -> Result<Vec<SigningKeyRow>> {
        let mut conn = self.backend.readers().acquire().await?;
        signing_keys::published(&mut *conn, tenant_id, retired_after).await
    }

    async fn active_signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let mut conn = self.backend.readers().acquire().await?;
        signing_keys::active(&mut *conn).await
    }

    async fn add_signing_keys(&self, keys: &[(TenantId, NewSigningKey)]) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let mut keyed = Vec::new();
        for (tenant_id, key) in keys {
            if signing_keys::insert(&mut *tx, *tenant_id, key).await? {
                keyed.push(*tenant_id);
            }
        }
        self.finish(tx, None, None, Changes::signing_keys(keyed))
            .await
    }

    async fn rotate_signing_key(
        &self,
        tenant_id: TenantId,
        key: &NewSigningKey,
        unpublished_before: i64,
        keep_retiring: usize,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let now = key.created_at;
        signing_keys::retire(&mut *tx, tenant_id, now, unpublished_before, keep_retiring).await?;
        if !signing_keys::insert(&mut *tx, tenant_id, key).await? {
            return Err(Error::Duplicate("signing key"));
        }
        let changes = Changes::signing_keys(vec![tenant_id]);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    // ---- users and roles ----------------------------------------------------------

    async fn user(&self, tenant_id: TenantId, username: &str) -> Result<Option<UserRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        users::load(&mut *conn, tenant_id, username).await
    }

    async fn users_page(
        &self,
        tenant_id: TenantId,
        page: &NamePage,
        filter: UserFilter,
    ) -> Result<Vec<UserRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        users::page(&mut *conn, tenant_id, page, filter).await
    }

    async fn user_count(&self, tenant_id: TenantId) -> Result<i64> {
        let mut conn = self.backend.readers().acquire().await?;
        users::count(&mut *conn, tenant_id).await
    }

    async fn upsert_user(
        &self,
        tenant_id: TenantId,
        user: &NewUser<'_>,
        source: Source,
        now: i64,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let changes = users::upsert(&mut *tx, tenant_id, user, source, now).await?;
        self.finish(tx, None, Some(tenant_id), changes).await
    }

    async fn create_user(
        &self,
        tenant_id: TenantId,
        user: &NewUser<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let id = users::insert(&mut *tx, tenant_id, user, Source::Api, audit.at).await?;
        users::replace_roles(&mut *tx, tenant_id, id, user.roles).await?;
        let changes = Changes::user(tenant_id, user.username);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn change_user(
        &self,
        tenant_id: TenantId,
        username: &str,
        change: UserChange<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let Some(changes) = users::change(&mut *tx, tenant_id, username, change, audit).await?
        else {
            return Ok(Committed::unchanged(None));
        };
        let committed = self.finish(tx, Some(audit), Some(tenant_id), changes);
        Ok(committed.await?.map(Some))
    }

    async fn change_users(
        &self,
        tenant_id: TenantId,
        change: BulkUserChange,
        users: &[(String, AuditEvent)],
    ) -> Result<Committed<Vec<bool>>> {
        let mut tx = self.backend.begin_write().await?;
        let mut changes = Changes::default();
        let mut found = Vec::with_capacity(users.len());
        for (username, audit) in users {
            let tx = &mut *tx;
            let user_change = match change {
                BulkUserChange::Disable => Some(UserChange::Enabled(false)),
                BulkUserChange::Enable => Some(UserChange::Enabled(true)),
                BulkUserChange::Delete => Some(UserChange::Delete),
                BulkUserChange::Unlock => None,
            };
            let changed = match user_change {
                Some(one) => users::change(tx, tenant_id, username, one, audit).await?,
                None => {
                    let target = LockTarget::User {
                        tenant_id,
                        username,
                    };
                    let cleared = lockout::clear(tx, target).await?;
                    cleared.then(|| Changes::principal(target))
                }
            };
            if let Some(user_changes) = changed {
                changes.merge(user_changes);
                audit::insert(tx, audit).await?;
                found.push(true);
            } else {
                found.push(false);
            }
        }
        let committed = self.finish(tx, None, Some(tenant_id), changes).await?;
        Ok(committed.map(|()| found))
    }

    async fn roles(&self, tenant_id: TenantId) -> Result<Vec<RoleRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        roles::all(&mut *conn, tenant_id).await
    }

    async fn roles_page(&self, tenant_id: TenantId, page: &NamePage) -> Result<Vec<RoleRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        roles::page(&mut *conn, tenant_id, page).await
    }

    async fn upsert_role(&self, tenant_id: TenantId, role: &RoleRecord) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        roles::upsert(&mut *tx, tenant_id, role).await?;
        let changes = Changes::users_of(tenant_id);
        self.finish(tx, None, Some(tenant_id), changes).await
    }

    async fn create_role(
        &self,
        tenant_id: TenantId,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        roles::insert(&mut *tx, tenant_id, role).await?;
        // No user holds a role that did not exist; nothing cached changed.
        let changes = Changes::default();
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn update_role(
        &self,
        tenant_id: TenantId,
        role: &RoleRecord,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = roles::update(&mut *tx, tenant_id, role).await?;
        let changes = Changes::users_of(tenant_id);
        self.finish_found(tx, found, Some(audit), Some(tenant_id), changes)
            .await
    }

    async fn delete_role(
        &self,
        tenant_id: TenantId,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = roles::delete(&mut *tx, tenant_id, name).await?;
        let changes = Changes::users_of(tenant_id);
        self.finish_found(tx, found, Some(audit), Some(tenant_id), changes)
            .await
    }

    // ---- clients ------------------------------------------------------------------

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        clients::by_id(&mut *conn, client_id).await
    }

    async fn clients_page(
        &self,
        tenant_id: TenantId,
        page: &NamePage,
    ) -> Result<Vec<ClientRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        clients::page(&mut *conn, tenant_id, page).await
    }

    async fn upsert_client(
        &self,
        tenant_id: TenantId,
        client: &NewClient<'_>,
        source: Source,
        now: i64,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        clients::upsert(&mut *tx, tenant_id, client, source, now).await?;
        let changes = Changes::client(client.client_id);
        self.finish(tx, None, Some(tenant_id), changes).await
    }

    async fn create_client(
        &self,
        tenant_id: TenantId,
        client: &NewClient<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        clients::insert(&mut *tx, tenant_id, client, Source::Api, audit.at).await?;
        // The id may be remembered as absent from an earlier sign-in attempt.
        let changes = Changes::client(client.client_id);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn delete_client(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        if !clients::delete(&mut *tx, tenant_id, client_id).await? {
            return Ok(Committed::unchanged(None));
        }
        let selection = Selection::Client(client_id.to_owned());
        let event = Event::OwnerChanged(crate::domain::token::OwnerChange::ClientDeleted);
        let tokens =
            tokens::end_access_and_refresh(&mut *tx, tenant_id, &selection, event, audit).await?;
        let changes = Changes {
            tokens,
            ..Changes::client(client_id)
        };
        Ok(self
            .finish(tx, Some(audit), Some(tenant_id), changes)
            .await?
            .map(Some))
    }

    async fn update_client(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        edit: &ClientEdit<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = clients::update(&mut *tx, tenant_id, client_id, edit).await?;
        let changes = Changes::client(client_id);
        self.finish_found(tx, found, Some(audit), Some(tenant_id), changes)
            .await
    }

    async fn set_client_secret(
        &self,
        tenant_id: TenantId,
        client_id: &str,
        secret_hash: &str,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = clients::set_secret(&mut *tx, tenant_id, client_id, secret_hash).await?;
        let changes = Changes::client(client_id);
        self.finish_found(tx, found, Some(audit), Some(tenant_id), changes)
            .await
    }

    // ---- lockout ------------------------------------------------------------------

    async fn record_failure(
        &self,
        target: LockTarget<'_>,
        threshold: i64,
        locked_until: i64,
        failure: &AuditEvent,
        lock: &AuditEvent,
    ) -> Result<Committed<Option<i64>>> {
        let mut tx = self.backend.begin_write().await?;
        let locked = lockout::count_failure(&mut *tx, target, threshold, locked_until).await?;
        audit::insert(&mut *tx, failure).await?;
        let lock_entry = locked.is_some().then_some(lock);
        let changes = Changes::principal(target);
        let scope = Some(failure.tenant_id);
        let committed = self.finish(tx, lock_entry, scope, changes).await?;
        Ok(committed.map(|()| locked))
    }

    async fn clear_failures(
        &self,
        target: LockTarget<'_>,
        audit: &AuditEvent,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = lockout::clear(&mut *tx, target).await?;
        let changes = Changes::principal(target);
        self.finish_found(tx, found, Some(audit), Some(audit.tenant_id), changes)
            .await
    }

    async fn locked_accounts(&self, now: i64) -> Result<Vec<(TenantId, i64)>> {
        let mut conn = self.backend.readers().acquire().await?;
        lockout::locked_by_tenant(&mut *conn, now).await
    }

    async fn reset_failures(
        &self,
        target: LockTarget<'_>,
        now: i64,
    ) -> Result<Committed<Option<()>>> {
        let mut tx = self.backend.begin_write().await?;
        let found = lockout::reset_unless_locked(&mut *tx, target, now).await?;
        let changes = Changes::principal(target);
        self.finish_found(tx, found, None, None, changes).await
    }

    // ---- tokens -------------------------------------------------------------------

    async fn insert_tokens(&self, new: &[NewToken]) -> Result<()> {
        // Issuance changes nothing cached anywhere: no cache remembers a token as absent.
        batch::submit(&self.batches, |done| batch::Job::Insert {
            tokens: new.to_vec(),
            done,
        })
        .await
    }

    async fn token(&self, tenant_id: TenantId, digest: &Digest) -> Result<Option<TokenRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        tokens::by_digest(&mut *conn, tenant_id, digest).await
    }

    async fn code_in_any_tenant(&self, digest: &Digest) -> Result<Option<TokenRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        tokens::code_in_any_tenant(&mut *conn, digest).await
    }

    async fn grant_tokens(&self, tenant_id: TenantId, grant_id: &str) -> Result<Vec<TokenRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        tokens::of_grant(&mut *conn, tenant_id, grant_id).await
    }

    async fn live_grants(&self, tenant_id: TenantId, page: &GrantPage) -> Result<Vec<LiveGrant>> {
        let mut conn = self.backend.readers().acquire().await?;
        tokens::live_grants(&mut *conn, tenant_id, page).await
    }

    async fn grant_actions(&self, tenant_id: TenantId, grant_id: &str) -> Result<Vec<AuditEvent>> {
        let mut conn = self.backend.readers().acquire().await?;
        audit::of_grant(&mut *conn, tenant_id, grant_id).await
    }

    async fn transitions(
        &self,
        tenant_id: TenantId,
        steps: &[Step],
        now: i64,
        by: &ChangedBy,
    ) -> Result<Committed<()>> {
        batch::submit(&self.batches, |done| batch::Job::Transitions {
            tenant_id,
            steps: steps.to_vec(),
            now,
            by: tokens::StoredBy::new(by),
            done,
        })
        .await
    }

    async fn revoke_by_admin(
        &self,
        tenant_id: TenantId,
        steps: &[Step],
        audit: &AuditEvent,
    ) -> Result<Committed<()>> {
        let mut tx = self.backend.begin_write().await?;
        let by = tokens::StoredBy::of_audit(audit);
        let changed = tokens::steps(&mut *tx, tenant_id, steps, audit.at, &by).await?;
        let changes = Changes::tokens(changed);
        self.finish(tx, Some(audit), Some(tenant_id), changes).await
    }

    async fn redeem(
        &self,
        old: &TokenRecord,
        new: &[NewToken],
        now: i64,
        by: &ChangedBy,
    ) -> Result<Committed<Rotation>> {
        batch::submit(&self.batches, |done| batch::Job::Redeem {
            old: Box::new(old.clone()),
            new: new.to_vec(),
            now,
            by: tokens::StoredBy::new(by),
            done,
        })
        .await
    }

    async fn purge(
        &self,
        tokens_before: i64,
        audit_before: i64,
        batch: i64,
    ) -> Result<Option<Purged>> {
        let mut tx = self.backend.begin_write().await?;
        if !self.backend.purge_lock(&mut tx).await? {
            return Ok(None);
        }
        let purged = Purged {
            tokens: tokens::purge(&mut *tx, tokens_before, batch).await?,
            audit_events: audit::purge(&mut *tx, audit_before, batch).await?,
        };
        // Only ended tokens go, and no cache holds one: an ACTIVE entry leaves the token
        // cache when its lifetime passes, long before its grant can be purged.
        let _ = self.finish(tx, None, None, Changes::default()).await?;
        Ok(Some(purged))
    }

    // ---- console sessions -------------------------------------------------------------

    async fn start_console_session(
        &self,
        session: &NewConsoleSession<'_>,
        replaces: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<()> {
        let mut tx = self.backend.begin_write().await?;
        if let Some(old) = replaces {
            sessions::delete(&mut *tx, SessionKind::Console, old).await?;
        }
        sessions::insert_console(&mut *tx, session).await?;
        // No cache holds a session: every request reads its own.
        let _ = self
            .finish(tx, Some(audit), None, Changes::default())
            .await?;
        Ok(())
    }

    async fn console_session(&self, digest: &Digest) -> Result<Option<ConsoleSessionRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        sessions::find_console(&mut *conn, digest).await
    }

    // ---- single sign-on sessions ------------------------------------------------------

    async fn start_sign_in_session(
        &self,
        session: &NewSignInSession<'_>,
        replaces: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.backend.begin_write().await?;
        if let Some(old) = replaces {
            sessions::delete(&mut *tx, SessionKind::SignIn, old).await?;
        }
        sessions::insert_sign_in(&mut *tx, session).await?;
        let _ = self.finish(tx, None, None, Changes::default()).await?;
        Ok(())
    }

    async fn sign_in_session(&self, digest: &Digest) -> Result<Option<SignInSessionRecord>> {
        let mut conn = self.backend.readers().acquire().await?;
        sessions::find_sign_in(&mut *conn, digest).await
    }

    // ---- either kind of session -------------------------------------------------------

    async fn touch_session(&self, kind: SessionKind, id: i64, now: i64) -> Result<()> {
        let mut tx = self.backend.begin_write().await?;
        sessions::touch(&mut *tx, kind, id, now).await?;
        // No cache holds a session: every request reads its own.
        let _ = self.finish(tx, None, None, Changes::default()).await?;
        Ok(())
    }

    async fn end_session(
        &self,
        kind: SessionKind,
        id: i64,
        audit: Option<&AuditEvent>,
    ) -> Result<bool> {
        let mut tx = self.backend.begin_write().await?;
        let found = sessions::delete(&mut *tx, kind, id).await?;
        let audit = audit.filter(|_| found);
        let _ = self.finish(tx, audit, None, Changes::default()).await?;
        Ok(found)
    }

    async fn end_stale_sessions(
        &self,
        kind: SessionKind,
        idle_before: i64,
        started_before: i64,
    ) -> Result<u64> {
        let mut tx = self.backend.begin_write().await?;
        let ended = sessions::delete_stale(&mut *tx, kind, idle_before, started_before).await?;
        let _ = self.finish(tx, None, None, Changes::default()).await?;
        Ok(ended)
    }

    // ---- audit --------------------------------------------------------------------

    async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        let tx = self.backend.begin_write().await?;
        let _ = self
            .finish(tx, Some(event), None, Changes::default())
            .await?;
        Ok(())
    }

    async fn audit_events(
        &self,
        tenant_id: TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>> {
        let mut conn = self.backend.readers().acquire().await?;
        audit::page(&mut *conn, tenant_id, query).await
    }
}
