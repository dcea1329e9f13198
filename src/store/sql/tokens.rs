//! Codes, access and refresh tokens, stored by digest, and their state changes.

use super::statement::{query, Conn};
use crate::domain::tenant::TenantId;
use crate::domain::token::{self, Event, State, TokenKind};
use crate::store::{
    AuditEvent, ChangedBy, Digest, Error, GrantHolder, GrantPage, LiveGrant, NewToken, Result,
    Selection, Step, TokenRecord,
};
use std::sync::OnceLock;

const COLUMNS: &str = "id, tenant_id, kind, digest, jti, grant_id, refresh_digest, client_id, username, \
     scope, issued_at, not_before, expires_at, state, state_reason, state_changed_at, state_changed_by, \
     state_changed_from, redirect_uri, code_challenge, grant_started_at, nonce, auth_time, sid";

/// Who changed a token's state, as stored: the actor's stored name, and the address
/// when a request did it.
#[derive(Debug, Clone)]
pub(super) struct StoredBy {
    pub actor: String,
    pub address: Option<String>,
}

impl StoredBy {
    pub(super) fn new(by: &ChangedBy) -> Self {
        StoredBy {
            actor: by.actor.stored(),
            address: by.address.clone(),
        }
    }

    /// The admin (or system) of an audit entry, from its address.
    pub(super) fn of_audit(audit: &AuditEvent) -> Self {
        StoredBy {
            actor: audit.actor.clone(),
            address: Some(audit.client_address.clone()).filter(|a| !a.is_empty()),
        }
    }
}

/// A token row as stored; names and digests are checked when it becomes a record.
#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    tenant_id: TenantId,
    kind: String,
    digest: Vec<u8>,
    jti: String,
    grant_id: String,
    refresh_digest: Option<Vec<u8>>,
    client_id: String,
    username: Option<String>,
    scope: String,
    issued_at: i64,
    not_before: i64,
    expires_at: i64,
    state: String,
    state_reason: Option<String>,
    state_changed_at: Option<i64>,
    state_changed_by: Option<String>,
    state_changed_from: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    grant_started_at: i64,
    nonce: Option<String>,
    auth_time: Option<i64>,
    sid: Option<String>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = Error;

    fn try_from(row: TokenRow) -> Result<Self> {
        let corrupt = |e: token::UnknownName| Error::Corrupt(e.to_string());
        Ok(TokenRecord {
            id: row.id,
            token: NewToken {
                tenant_id: row.tenant_id,
                kind: row.kind.parse().map_err(corrupt)?,
                digest: to_digest(row.digest)?,
                jti: row.jti,
                grant_id: row.grant_id,
                grant_started_at: row.grant_started_at,
                refresh_digest: row.refresh_digest.map(to_digest).transpose()?,
                client_id: row.client_id,
                username: row.username,
                scope: row.scope,
                issued_at: row.issued_at,
                not_before: row.not_before,
                expires_at: row.expires_at,
                redirect_uri: row.redirect_uri,
                code_challenge: row.code_challenge,
                nonce: row.nonce,
                auth_time: row.auth_time,
                sid: row.sid,
            },
            state: row.state.parse().map_err(corrupt)?,
            state_reason: row
                .state_reason
                .map(|r| r.parse())
                .transpose()
                .map_err(corrupt)?,
            state_changed_at: row.state_changed_at,
            state_changed_by: row.state_changed_by,
            state_changed_from: row.state_changed_from,
        })
    }
}

fn to_digest(bytes: Vec<u8>) -> Result<Digest> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a token digest is not 32 bytes".into()))
}

/// Most rows one INSERT carries. Statements carry a power of two of rows, so a handful
/// of statement texts serve every batch size and stay prepared.
const MAX_ROWS_PER_INSERT: usize = 128;

const INSERTED_COLUMNS: usize = 19;

/// Stores tokens ACTIVE, many rows per statement.
pub(super) async fn insert<'a, C: Conn>(
    conn: &mut C,
    tokens: impl IntoIterator<Item = &'a NewToken>,
) -> Result<()> {
    let tokens: Vec<&NewToken> = tokens.into_iter().collect();
    let mut rest = &tokens[..];
    while !rest.is_empty() {
        let rows = MAX_ROWS_PER_INSERT.min(1 << rest.len().ilog2());
        let (these, later) = rest.split_at(rows);
        let mut statement = query(insert_text(rows, C::ANONYMOUS_PLACEHOLDERS));
        for t in these {
            statement = statement
                .bind(t.tenant_id)
                .bind(t.kind.as_str())
                .bind(&t.digest)
                .bind(&t.jti)
                .bind(&t.grant_id)
                .bind(t.refresh_digest.as_ref())
                .bind(&t.client_id)
                .bind(t.username.as_deref())
                .bind(&t.scope)
                .bind(t.issued_at)
                .bind(t.not_before)
                .bind(t.expires_at)
                .bind(State::Active.as_str())
                .bind(t.redirect_uri.as_deref())
                .bind(t.code_challenge.as_deref())
                .bind(t.grant_started_at)
                .bind(t.nonce.as_deref())
                .bind(t.auth_time)
                .bind(t.sid.as_deref());
        }
        conn.execute(statement).await?;
        rest = later;
    }
    Ok(())
}

/// The INSERT of `rows` rows (a power of two up to the maximum), with `$N` or `?`
/// placeholders, built once.
fn insert_text(rows: usize, anonymous: bool) -> &'static str {
    static TEXTS: OnceLock<[Vec<String>; 2]> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| [false, true].map(insert_texts));
    &texts[usize::from(anonymous)][rows.ilog2() as usize]
}

fn insert_texts(anonymous: bool) -> Vec<String> {
    (0..=MAX_ROWS_PER_INSERT.ilog2())
        .map(|power| {
            let values: Vec<String> = (0..1usize << power)
                .map(|row| {
                    let first = row * INSERTED_COLUMNS + 1;
                    let params: Vec<String> = (first..first + INSERTED_COLUMNS)
                        .map(|n| if anonymous { "?".to_owned() } else { format!("${n}") })
                        .collect();
                    format!("({})", params.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO tokens (tenant_id, kind, digest, jti, grant_id, refresh_digest, client_id, \
                 username, scope, issued_at, not_before, expires_at, state, redirect_uri, \
                 code_challenge, grant_started_at, nonce, auth_time, sid) VALUES {}",
                values.join(", ")
            )
        })
        .collect()
}

/// The token with this digest in this tenant: one indexed read.
pub(super) async fn by_digest(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    digest: &Digest,
) -> Result<Option<TokenRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM tokens WHERE digest = $1 AND tenant_id = $2");
    let row: Option<TokenRow> = conn
        .fetch_optional(query(sql).bind(digest).bind(tenant_id))
        .await?;
    row.map(TokenRecord::try_from).transpose()
}

pub(super) async fn of_grant(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    grant_id: &str,
) -> Result<Vec<TokenRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens WHERE tenant_id = $1 AND grant_id = $2 ORDER BY issued_at, id"
    );
    let rows: Vec<TokenRow> = conn
        .fetch_all(query(sql).bind(tenant_id).bind(grant_id))
        .await?;
    rows.into_iter().map(TokenRecord::try_from).collect()
}

/// A page of a holder's grants with a token still ACTIVE and unexpired, newest first.
pub(super) async fn live_grants(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    page: &GrantPage,
) -> Result<Vec<LiveGrant>> {
    let (column, holder) = match &page.holder {
        GrantHolder::User(name) => ("username", name),
        GrantHolder::Client(id) => ("client_id", id),
    };
    let mut statement = query(format!(
        "SELECT grant_id, MIN(grant_started_at) AS started_at, MIN(client_id) AS client_id, \
                MIN(username) AS username, MAX(issued_at) AS last_issued_at, \
                COUNT(*) AS active_tokens \
         FROM tokens \
         WHERE tenant_id = $1 AND {column} = $2 AND state = 'ACTIVE' AND expires_at > $3 \
           AND kind <> 'authorization_code'"
    ))
    .bind(tenant_id)
    .bind(holder.as_str())
    .bind(page.now);
    if let Some((started_at, grant_id)) = &page.before {
        statement = statement
            .push(" AND (grant_started_at < $?", *started_at)
            .push(" OR (grant_started_at = $?", *started_at)
            .push(" AND grant_id < $?))", grant_id.as_str());
    }
    let statement = statement.push(
        " GROUP BY grant_id ORDER BY started_at DESC, grant_id DESC LIMIT $?",
        page.limit,
    );
    Ok(conn.fetch_all(statement).await?)
}

/// The authorization code with `digest` in whichever tenant holds it.
pub(super) async fn code_in_any_tenant(
    conn: &mut impl Conn,
    digest: &Digest,
) -> Result<Option<TokenRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM tokens WHERE digest = $1 AND kind = $2");
    let row: Option<TokenRow> = conn
        .fetch_optional(
            query(sql)
                .bind(digest)
                .bind(TokenKind::AuthorizationCode.as_str()),
        )
        .await?;
    row.map(TokenRecord::try_from).transpose()
}

/// Applies each `(kind, selection, event)` step to the selected tokens that the state
/// machine lets it move (a revocation and its cascade); returns the digests that changed.
pub(super) async fn steps(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    steps: &[Step],
    now: i64,
    by: &StoredBy,
) -> Result<Vec<Digest>> {
    let mut changed = Vec::new();
    for step in steps {
        let Step {
            kind,
            selection,
            event,
        } = step;
        changed.extend(transition(conn, tenant_id, *kind, selection, *event, now, by).await?);
    }
    Ok(changed)
}

/// Moves the selected access and refresh tokens by `event`, as `audit`'s actor.
pub(super) async fn end_access_and_refresh(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    selection: &Selection,
    event: Event,
    audit: &AuditEvent,
) -> Result<Vec<Digest>> {
    let both = Step::access_and_refresh(selection.clone(), event);
    steps(conn, tenant_id, &both, audit.at, &StoredBy::of_audit(audit)).await
}

/// Spends a single-use credential: a refresh token (the refresh grant) becomes INACTIVE
/// with the access tokens issued with it, or a code becomes INACTIVE (exchanged).
/// `None` when it was no longer ACTIVE (a concurrent use won); nothing is written then.
pub(super) async fn spend(
    conn: &mut impl Conn,
    old: &TokenRecord,
    now: i64,
    by: &StoredBy,
) -> Result<Option<Vec<Digest>>> {
    let (kind, tenant_id) = (old.token.kind, old.token.tenant_id);
    let event = Event::redemption(kind);
    let this = Step::new(kind, Selection::Token(old.id), event);
    let mut changed = steps(conn, tenant_id, &[this], now, by).await?;
    if changed.is_empty() {
        return Ok(None);
    }
    if kind == TokenKind::Refresh {
        let issued_with = Step::new(
            TokenKind::Access,
            Selection::IssuedWith(old.token.digest),
            event,
        );
        changed.extend(steps(conn, tenant_id, &[issued_with], now, by).await?);
    }
    Ok(Some(changed))
}

/// The bulk form of [`token::apply`]: the `WHERE state IN (…)` list and the new state
/// both come from the state machine.
async fn transition(
    conn: &mut impl Conn,
    tenant_id: TenantId,
    kind: TokenKind,
    selection: &Selection,
    event: Event,
    now: i64,
    by: &StoredBy,
) -> Result<Vec<Digest>> {
    let (from, target) = token::sources(kind, event);
    let Some(target) = target else {
        return Ok(Vec::new());
    };
    // The state names are our own constants, never input, so they may be inlined.
    let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let filter = match selection {
        Selection::Token(_) => "id = $7",
        Selection::Grant(_) => "grant_id = $7",
        Selection::IssuedWith(_) => "refresh_digest = $7",
        Selection::RefreshOf(_) => "digest = $7",
        Selection::Owner(_) => "username = $7",
        Selection::Client(_) => "client_id = $7",
        Selection::Tenant => "tenant_id = $7",
    };
    let sql = format!(
        "UPDATE tokens SET state = $1, state_reason = $2, state_changed_at = $3, state_changed_by = $4, \
             state_changed_from = $5 \
         WHERE tenant_id = $6 AND kind = $8 AND state IN ({}) AND {filter} RETURNING digest",
        from.join(", ")
    );
    let statement = query(sql)
        .bind(target.to.as_str())
        .bind(target.reason.as_str())
        .bind(now)
        .bind(by.actor.as_str())
        .bind(by.address.as_deref())
        .bind(tenant_id);
    let statement = match selection {
        Selection::Token(id) => statement.bind(*id),
        Selection::Grant(name) | Selection::Owner(name) | Selection::Client(name) => {
            statement.bind(name)
        }
        Selection::Tenant => statement.bind(tenant_id),
        Selection::IssuedWith(d) | Selection::RefreshOf(d) => statement.bind(d),
    };
    let rows: Vec<(Vec<u8>,)> = conn.fetch_all(statement.bind(kind.as_str())).await?;
    rows.into_iter().map(|(d,)| to_digest(d)).collect()
}

/// When a token stopped being active, as SQL over the row `alias`: its expiry while
/// ACTIVE, else the time of its state change. Migration 0006 indexes this expression;
/// change both together.
fn ended(alias: &str) -> String {
    format!(
        "CASE WHEN {alias}.state = 'ACTIVE' THEN {alias}.expires_at \
         ELSE COALESCE({alias}.state_changed_at, {alias}.expires_at) END"
    )
}

/// Deletes at most `batch` tokens of grants whose every token ended before `before`.
/// A grant goes whole, so a rotated refresh token is kept while its grant lives and its
/// reuse is still detected.
pub(super) async fn purge(conn: &mut impl Conn, before: i64, batch: i64) -> Result<u64> {
    let sql = format!(
        "DELETE FROM tokens WHERE id IN ( \
             SELECT t.id FROM tokens t WHERE {} < $1 AND NOT EXISTS ( \
                 SELECT 1 FROM tokens g \
                 WHERE g.tenant_id = t.tenant_id AND g.grant_id = t.grant_id AND {} >= $1) \
             LIMIT $2)",
        ended("t"),
        ended("g")
    );
    Ok(conn.execute(query(sql).bind(before).bind(batch)).await?)
}
