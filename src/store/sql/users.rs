//! Users and the roles they hold.

use super::statement::{duplicate_as, query, Conn, Statement};
use super::tokens;
use crate::domain::permission::Permission;
use crate::domain::principal::Profile;
use crate::domain::tenant::TenantId;
use crate::domain::token::{Event, OwnerChange};
use crate::store::{
    AuditEvent, Changes, NamePage, NewUser, Result, Selection, Source, UserChange, UserFilter,
    UserRecord,
};
use sqlx::types::Json;

/// One row of the users × roles join.
#[derive(sqlx::FromRow)]
struct UserRole {
    id: i64,
    username: String,
    password_hash: String,
    enabled: bool,
    failed_attempts: i64,
    locked_until: Option<i64>,
    #[sqlx(try_from = "String")]
    source: Source,
    subject: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: bool,
    role: Option<String>,
    permissions: Option<Json<Vec<String>>>,
}

/// A user of the tenant with their roles' permissions, in one query.
pub(super) async fn load(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    username: &str,
) -> Result<Option<UserRecord>> {
    let user = query(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND username = $2"
    ))
    .bind(tenant_id)
    .bind(username);
    Ok(with_roles(conn, tenant_id, user).await?.pop())
}

/// A page of a tenant's users with their roles' permissions.
pub(super) async fn page(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    page: &NamePage,
    filter: UserFilter,
) -> Result<Vec<UserRecord>> {
    let end = page.prefix_end();
    let mut users = query(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1"
    ))
    .bind(tenant_id);
    if let Some(enabled) = filter.enabled {
        users = users.push(" AND enabled = $?", enabled);
    }
    users = match filter.locked {
        Some(true) => users.push(" AND locked_until > $?", filter.now),
        Some(false) => users.push(
            " AND (locked_until IS NULL OR locked_until <= $?)",
            filter.now,
        ),
        None => users,
    };
    let users = users.name_page("username", page, end.as_deref());
    with_roles(conn, tenant_id, users).await
}

const USER_COLUMNS: &str =
    "id, username, password_hash, enabled, failed_attempts, locked_until, source, subject, \
     name, email, email_verified";

/// The users `users` selects (by [`USER_COLUMNS`]), each with its roles and their
/// permissions, in username order: one query.
#[allow(
    clippy::expect_used,
    reason = "a user is pushed just above when the list was empty"
)]
async fn with_roles(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    users: Statement<'_>,
) -> Result<Vec<UserRecord>> {
    let statement = Statement {
        sql: format!(
            "SELECT u.id, u.username, u.password_hash, u.enabled, u.failed_attempts, \
                    u.locked_until, u.source, u.subject, u.name, u.email, u.email_verified, \
                    ur.role, r.permissions \
             FROM ({}) u \
             LEFT JOIN user_roles ur ON ur.user_id = u.id \
             LEFT JOIN roles r ON r.tenant_id = $1 AND r.name = ur.role \
             ORDER BY u.username COLLATE \"binary\", ur.role",
            users.sql
        )
        .into(),
        args: users.args,
    };
    let rows: Vec<UserRole> = conn.fetch_all(statement).await?;
    let mut users: Vec<UserRecord> = Vec::new();
    for row in rows {
        if users.last().is_none_or(|u| u.id != row.id) {
            users.push(UserRecord {
                id: row.id,
                tenant_id,
                username: row.username,
                password_hash: row.password_hash,
                enabled: row.enabled,
                roles: Vec::new(),
                permissions: Vec::new(),
                failed_attempts: row.failed_attempts,
                locked_until: row.locked_until,
                source: row.source,
                subject: row.subject,
                profile: Profile {
                    name: row.name,
                    email: row.email,
                    email_verified: row.email_verified,
                },
            });
        }
        let user = users.last_mut().expect("pushed above");
        user.roles.extend(row.role);
        if let Some(Json(paths)) = row.permissions {
            // Paths are validated when written; one that no longer parses grants nothing.
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

pub(super) async fn count(conn: &mut impl Conn, tenant_id: TenantId) -> Result<i64> {
    let statement = query("SELECT COUNT(*) FROM users WHERE tenant_id = $1").bind(tenant_id);
    let (n,): (i64,) = conn.fetch_one(statement).await?;
    Ok(n)
}

/// Creates a user; a taken username is `Duplicate("username")`. Returns the user's id.
pub(super) async fn insert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    user: &NewUser<'_>,
    source: Source,
    now: i64,
) -> Result<i64> {
    let statement = query(
        "INSERT INTO users (tenant_id, username, password_hash, enabled, failed_attempts, source, created_at, \
                            name, email, email_verified) \
         VALUES ($1, $2, $3, TRUE, 0, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(tenant_id)
    .bind(user.username)
    .bind(user.password_hash)
    .bind(source.as_str())
    .bind(now)
    .bind(user.profile.name.as_deref())
    .bind(user.profile.email.as_deref())
    .bind(user.profile.email_verified);
    let (id,): (i64,) = conn
        .fetch_one(statement)
        .await
        .map_err(duplicate_as("username"))?;
    Ok(id)
}

/// Creates a user, or brings one back in line with what `source` declares and gives it
/// to `source`: a file takes over a user of its tenant that the API made or was given.
pub(super) async fn upsert(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    user: &NewUser<'_>,
    source: Source,
    now: i64,
) -> Result<Changes> {
    let existing = query("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
        .bind(tenant_id)
        .bind(user.username);
    let user_id = match conn.fetch_optional::<(i64,)>(existing).await? {
        Some((id,)) => {
            let statement = query("UPDATE users SET password_hash = $1, source = $2 WHERE id = $3")
                .bind(user.password_hash)
                .bind(source.as_str())
                .bind(id);
            conn.execute(statement).await?;
            // A file says all there is to say about its users; the bootstrap admin's
            // profile is the API's.
            if source == Source::File {
                set_profile(conn, id, user.profile).await?;
            }
            id
        }
        None => insert(conn, tenant_id, user, source, now).await?,
    };
    replace_roles(conn, tenant_id, user_id, user.roles).await?;
    Ok(Changes::user(tenant_id, user.username))
}

async fn set_profile(conn: &mut impl Conn, user_id: i64, profile: &Profile) -> Result<()> {
    let statement =
        query("UPDATE users SET name = $1, email = $2, email_verified = $3 WHERE id = $4")
            .bind(profile.name.as_deref())
            .bind(profile.email.as_deref())
            .bind(profile.email_verified)
            .bind(user_id);
    conn.execute(statement).await?;
    Ok(())
}

async fn set_password(conn: &mut impl Conn, user_id: i64, hash: &str) -> Result<()> {
    let statement = query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id);
    conn.execute(statement).await?;
    Ok(())
}

/// Applies `change` to a user and, for a password change, a disable or a deletion, makes
/// the user's tokens INACTIVE. `None` when there is no such user.
pub(super) async fn change(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    username: &str,
    change: UserChange<'_>,
    audit: &AuditEvent,
) -> Result<Option<Changes>> {
    let found = query("SELECT id FROM users WHERE tenant_id = $1 AND username = $2")
        .bind(tenant_id)
        .bind(username);
    let Some((user_id,)) = conn.fetch_optional::<(i64,)>(found).await? else {
        return Ok(None);
    };
    let ends_tokens = match change {
        UserChange::Password(hash) => {
            set_password(conn, user_id, hash).await?;
            Some(OwnerChange::PasswordChanged)
        }
        UserChange::Enabled(enabled) => {
            let statement = query("UPDATE users SET enabled = $1 WHERE id = $2")
                .bind(enabled)
                .bind(user_id);
            conn.execute(statement).await?;
            (!enabled).then_some(OwnerChange::UserDisabled)
        }
        UserChange::Roles(roles) => {
            replace_roles(conn, tenant_id, user_id, roles).await?;
            None
        }
        UserChange::Profile(profile) => {
            set_profile(conn, user_id, profile).await?;
            None
        }
        UserChange::Delete => {
            conn.execute(query("DELETE FROM user_roles WHERE user_id = $1").bind(user_id))
                .await?;
            conn.execute(query("DELETE FROM users WHERE id = $1").bind(user_id))
                .await?;
            Some(OwnerChange::UserDeleted)
        }
    };
    let mut changes = Changes::user(tenant_id, username);
    if let Some(cause) = ends_tokens {
        let owner = Selection::Owner(username.to_owned());
        let event = Event::OwnerChanged(cause);
        changes.tokens =
            tokens::end_access_and_refresh(conn, tenant_id, &owner, event, audit).await?;
    }
    Ok(Some(changes))
}

pub(super) async fn replace_roles(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    user_id: i64,
    roles: &[String],
) -> Result<()> {
    conn.execute(query("DELETE FROM user_roles WHERE user_id = $1").bind(user_id))
        .await?;
    for role in roles {
        let statement =
            query("INSERT INTO user_roles (tenant_id, user_id, role) VALUES ($1, $2, $3)")
                .bind(tenant_id)
                .bind(user_id)
                .bind(role);
        conn.execute(statement).await?;
    }
    Ok(())
}
