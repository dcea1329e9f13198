//! The store conformance suite: every behaviour runs against SQLite and PostgreSQL.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestDatabase};
use portcullis::domain::audit::Actor;
use portcullis::domain::client::AccessTokenFormat;
use portcullis::domain::client::GrantType;
use portcullis::domain::principal::Profile;
use portcullis::domain::tenant::{Lifetimes, TenantId, TenantRateLimits, TenantSettings};
use portcullis::domain::token::{Event, OwnerChange, Reason, Revocation, State, TokenKind};
use portcullis::store::{
    AuditEvent, AuditQuery, Caches, ChangedBy, Changes, Committed, Declared, LockTarget, NewClient,
    NewSigningKey, NewTenant, NewToken, NewUser, Purged, RoleRecord, Rotation, Selection, Source,
    Step, Store, UserChange,
};
use sqlx::Connection;
use std::sync::Arc;

/// A migrated store over a fresh database, which lives as long as it.
struct Opened {
    store: Arc<dyn Store>,
    database: TestDatabase,
}

impl std::ops::Deref for Opened {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

async fn open(backend: Backend) -> Option<Opened> {
    if backend == Backend::Postgres && common::postgres_url().is_none() {
        return None;
    }
    let database = TestDatabase::new(backend).await;
    let store = portcullis::store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    // Migrating twice is harmless.
    store.migrate().await.unwrap();
    Some(Opened { store, database })
}

/// The suite stands in for the caches: it settles each write and keeps the changes the
/// write carried, to check them. Each result comes back with those changes beside it.
struct Unwatched;

impl Caches for Unwatched {
    type Error = std::convert::Infallible;

    async fn apply(&self, _: &Changes) -> Result<(), Self::Error> {
        Ok(())
    }
}

async fn settle<T>(write: Committed<T>) -> (T, Changes) {
    let changes = write.changes().clone();
    let Ok(value) = write.settle(&Unwatched).await;
    (value, changes)
}

/// A settled write as the tests look at it: its changes, `None` for a write that found
/// nothing to change, or its result and its changes.
trait Settled {
    type Seen;
    async fn settled(self) -> Self::Seen;
}

impl Settled for Committed<()> {
    type Seen = Changes;
    async fn settled(self) -> Changes {
        settle(self).await.1
    }
}

impl Settled for Committed<Option<()>> {
    type Seen = Option<Changes>;
    async fn settled(self) -> Option<Changes> {
        let (found, changes) = settle(self).await;
        found.map(|()| changes)
    }
}

macro_rules! settled_with_result {
    ($($result:ty),*) => {$(
        impl Settled for Committed<$result> {
            type Seen = ($result, Changes);
            async fn settled(self) -> ($result, Changes) {
                settle(self).await
            }
        }
    )*};
}
settled_with_result!(TenantId, Option<i64>, Rotation);

fn paths(permissions: &[portcullis::domain::permission::Permission]) -> Vec<&str> {
    permissions.iter().map(|p| p.as_str()).collect()
}

async fn tenant(store: &Opened, domain: &str) -> TenantId {
    let settings = NewTenant::defaults(domain.into());
    let (id, changes) = store
        .upsert_tenant(&settings, Source::File, 1)
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(changes, Changes::tenant(id));
    id
}

fn token(tenant_id: TenantId, kind: TokenKind, seed: u8, grant: &str) -> NewToken {
    NewToken {
        tenant_id,
        kind,
        digest: [seed; 32],
        jti: format!("jti-{seed}"),
        grant_id: grant.into(),
        grant_started_at: 100,
        refresh_digest: None,
        client_id: "c".into(),
        username: Some("alice".into()),
        scope: "read".into(),
        issued_at: 100,
        not_before: 100,
        expires_at: 200,
        redirect_uri: None,
        code_challenge: None,
        nonce: None,
        auth_time: None,
        sid: None,
    }
}

/// An access token issued with the refresh token `refresh_seed`.
fn access_with(tenant_id: TenantId, seed: u8, refresh_seed: u8, grant: &str) -> NewToken {
    NewToken {
        refresh_digest: Some([refresh_seed; 32]),
        ..token(tenant_id, TokenKind::Access, seed, grant)
    }
}

async fn tokens_round_trip_within_their_tenant(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let b = tenant(&store, "b.com").await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 1, "g"),
            access_with(a, 2, 1, "g"),
        ])
        .await
        .unwrap();
    let read = store.token(a, &[2; 32]).await.unwrap().unwrap();
    assert_eq!(read.token.kind, TokenKind::Access);
    assert_eq!(read.token.refresh_digest, Some([1; 32]));
    assert_eq!(read.token.username.as_deref(), Some("alice"));
    assert_eq!((read.token.issued_at, read.token.expires_at), (100, 200));
    assert_eq!(read.state, State::Active);
    assert_eq!(read.state_reason, None);
    // Another tenant never sees it.
    assert!(store.token(b, &[2; 32]).await.unwrap().is_none());
    assert!(store.token(a, &[9; 32]).await.unwrap().is_none());
}

async fn a_duplicate_digest_rolls_back_the_whole_issuance(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store
        .insert_tokens(&[token(a, TokenKind::Access, 1, "g")])
        .await
        .unwrap();
    let err = store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 2, "h"),
            token(a, TokenKind::Access, 1, "h"),
        ])
        .await;
    assert!(err.is_err());
    assert!(
        store.token(a, &[2; 32]).await.unwrap().is_none(),
        "the first token of a failed issuance was kept"
    );
}

async fn transitions_record_reason_time_and_actor(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store
        .insert_tokens(&[token(a, TokenKind::Access, 1, "g")])
        .await
        .unwrap();
    let id = store.token(a, &[1; 32]).await.unwrap().unwrap().id;
    let changed = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Token(id),
                Event::Revoke(Revocation::ByClient),
            )],
            150,
            &Actor::client("c").into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(changed, Changes::tokens(vec![[1; 32]]));
    let read = store.token(a, &[1; 32]).await.unwrap().unwrap();
    assert_eq!(read.state, State::Revoked);
    assert_eq!(read.state_reason, Some(Reason::RevokedByClient));
    assert_eq!(read.state_changed_at, Some(150));
    assert_eq!(read.state_changed_by.as_deref(), Some("client:c"));
    // REVOKED is final: nothing changes, not even the record of who revoked.
    let again = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Token(id),
                Event::Revoke(Revocation::ByAdmin),
            )],
            160,
            &Actor::user("admin").into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert!(again.is_empty());
    assert_eq!(
        store
            .token(a, &[1; 32])
            .await
            .unwrap()
            .unwrap()
            .state_reason,
        Some(Reason::RevokedByClient)
    );
}

async fn bulk_changes_follow_the_state_machine(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Access, 1, "g"),
            token(a, TokenKind::Access, 2, "g"),
        ])
        .await
        .unwrap();
    let first = store.token(a, &[1; 32]).await.unwrap().unwrap().id;
    let _ = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Token(first),
                Event::LifetimePassed,
            )],
            300,
            &Actor::System.into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    // An owner change supersedes ACTIVE tokens only; the EXPIRED one stays EXPIRED.
    let changed = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Grant("g".into()),
                Event::OwnerChanged(OwnerChange::PasswordChanged),
            )],
            310,
            &Actor::user("admin").into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(changed.tokens, vec![[2; 32]]);
    assert_eq!(
        store.token(a, &[1; 32]).await.unwrap().unwrap().state,
        State::Expired
    );
    let second = store.token(a, &[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        (second.state, second.state_reason),
        (State::Inactive, Some(Reason::PasswordChanged))
    );
    // Revocation reaches EXPIRED and INACTIVE alike.
    let mut revoked = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Grant("g".into()),
                Event::Revoke(Revocation::ByAdmin),
            )],
            320,
            &Actor::user("admin").into(),
        )
        .await
        .unwrap()
        .settled()
        .await
        .tokens;
    revoked.sort();
    assert_eq!(revoked, vec![[1; 32], [2; 32]]);
}

async fn selections_stay_inside_the_tenant(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let b = tenant(&store, "b.com").await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Access, 1, "same-grant"),
            token(b, TokenKind::Access, 2, "same-grant"),
        ])
        .await
        .unwrap();
    let changed = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Grant("same-grant".into()),
                Event::Revoke(Revocation::ByAdmin),
            )],
            150,
            &Actor::user("admin").into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(changed.tokens, vec![[1; 32]]);
    assert_eq!(
        store.token(b, &[2; 32]).await.unwrap().unwrap().state,
        State::Active
    );
}

async fn rotation_supersedes_the_pair_and_loses_a_race(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 1, "g"),
            access_with(a, 2, 1, "g"),
        ])
        .await
        .unwrap();
    let old = store.token(a, &[1; 32]).await.unwrap().unwrap();
    let next = [
        token(a, TokenKind::Refresh, 3, "g"),
        access_with(a, 4, 3, "g"),
    ];
    let (
        Rotation::Rotated,
        Changes {
            tokens: mut changed,
            ..
        },
    ) = store
        .redeem(&old, &next, 150, &Actor::client("c").into())
        .await
        .unwrap()
        .settled()
        .await
    else {
        panic!("the first rotation must win");
    };
    changed.sort();
    assert_eq!(changed, vec![[1; 32], [2; 32]]);
    let old_access = store.token(a, &[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        (old_access.state, old_access.state_reason),
        (State::Inactive, Some(Reason::Refreshed))
    );
    assert_eq!(
        store.token(a, &[4; 32]).await.unwrap().unwrap().state,
        State::Active
    );
    // A second rotation of the same (stale) record writes nothing.
    let again = [token(a, TokenKind::Refresh, 5, "g")];
    assert_eq!(
        store
            .redeem(&old, &again, 160, &Actor::client("c").into())
            .await
            .unwrap()
            .settled()
            .await,
        (Rotation::Lost, Changes::default())
    );
    assert!(store.token(a, &[5; 32]).await.unwrap().is_none());
}

async fn cascades_select_the_paired_tokens(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 1, "g"),
            access_with(a, 2, 1, "g"),
            access_with(a, 3, 9, "g"),
        ])
        .await
        .unwrap();
    let ev = Event::Revoke(Revocation::ByClient);
    let changed = store
        .transitions(
            a,
            &[
                Step::new(TokenKind::Refresh, Selection::RefreshOf([1; 32]), ev),
                Step::new(TokenKind::Access, Selection::IssuedWith([1; 32]), ev),
            ],
            150,
            &Actor::client("c").into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(changed.tokens.len(), 2);
    assert_eq!(
        store.token(a, &[3; 32]).await.unwrap().unwrap().state,
        State::Active
    );
}

async fn users_carry_the_permissions_of_their_roles(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let r1 = RoleRecord {
        name: "r1".into(),
        permissions: vec!["/permission/a".into(), "/permission/b".into()],
        source: Source::Api,
    };
    let r2 = RoleRecord {
        name: "r2".into(),
        permissions: vec!["/permission/b".into(), "/permission/c".into()],
        source: Source::Api,
    };
    assert_eq!(
        store
            .upsert_role(
                a,
                &RoleRecord {
                    source: Source::File,
                    ..r1.clone()
                }
            )
            .await
            .unwrap()
            .settled()
            .await,
        Changes::users_of(a)
    );
    let _ = store
        .upsert_role(
            a,
            &RoleRecord {
                source: Source::File,
                ..r2.clone()
            },
        )
        .await
        .unwrap()
        .settled()
        .await;
    let roles = ["r1".to_owned(), "r2".to_owned()];
    let created = store
        .upsert_user(
            a,
            &NewUser {
                username: "alice",
                password_hash: "h1",
                roles: &roles,
                profile: &Profile::default(),
            },
            Source::File,
            1,
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(created, Changes::user(a, "alice"));
    let user = store.user(a, "alice").await.unwrap().unwrap();
    assert_eq!(
        paths(&user.permissions),
        ["/permission/a", "/permission/b", "/permission/c"]
    );
    assert_eq!(user.roles.len(), 2);
    assert!(user.enabled);
    assert!(store.user(a, "bob").await.unwrap().is_none());
    let b = tenant(&store, "b.com").await;
    assert!(store.user(b, "alice").await.unwrap().is_none());
    assert_eq!(store.user_count(a).await.unwrap(), 1);
    // A file update replaces the hash and the roles.
    let _ = store
        .upsert_user(
            a,
            &NewUser {
                username: "alice",
                password_hash: "h2",
                roles: &roles[..1],
                profile: &Profile::default(),
            },
            Source::File,
            2,
        )
        .await
        .unwrap()
        .settled()
        .await;
    let user = store.user(a, "alice").await.unwrap().unwrap();
    assert_eq!((user.password_hash.as_str(), user.roles.len()), ("h2", 1));
    // A file never overwrites a user the API created.
    let _ = store
        .upsert_user(
            a,
            &NewUser {
                username: "api-user",
                password_hash: "api",
                roles: &[],
                profile: &Profile::default(),
            },
            Source::Api,
            3,
        )
        .await
        .unwrap()
        .settled()
        .await;
    // A file that declares the same user takes it over.
    let taken = store
        .upsert_user(
            a,
            &NewUser {
                username: "api-user",
                password_hash: "file",
                roles: &[],
                profile: &Profile::default(),
            },
            Source::File,
            4,
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(taken, Changes::user(a, "api-user"));
    let user = store.user(a, "api-user").await.unwrap().unwrap();
    assert_eq!(
        (user.password_hash.as_str(), user.source),
        ("file", Source::File)
    );
}

async fn client_ids_are_unique_across_tenants(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let b = tenant(&store, "b.com").await;
    let grants = [GrantType::ClientCredentials];
    let client = NewClient {
        client_id: "shared",
        secret_hash: Some("h"),
        grant_types: &grants,
        redirect_uris: &[],
        scopes: &[],
        require_pkce: true,
        name: None,
        access_token_format: AccessTokenFormat::Opaque,
    };
    let _ = store
        .upsert_client(a, &client, Source::File, 1)
        .await
        .unwrap()
        .settled()
        .await;
    // Re-applying the same file is an update.
    let updated = store
        .upsert_client(
            a,
            &NewClient {
                secret_hash: Some("h2"),
                ..client
            },
            Source::File,
            2,
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(updated, Changes::client("shared"));
    assert_eq!(
        store
            .client("shared")
            .await
            .unwrap()
            .unwrap()
            .secret_hash
            .as_deref(),
        Some("h2")
    );
    let dup = store.upsert_client(b, &client, Source::File, 3).await;
    assert!(matches!(dup, Err(portcullis::store::Error::Duplicate(_))));
    let read = store.client("shared").await.unwrap().unwrap();
    assert_eq!(
        (read.tenant_id, read.grant_types.as_slice()),
        (a, &grants[..])
    );
}

async fn what_a_file_stops_declaring_goes_to_the_api(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let grants = [GrantType::ClientCredentials];
    for id in ["kept-client", "dropped-client"] {
        let client = NewClient {
            client_id: id,
            secret_hash: Some("h"),
            grant_types: &grants,
            redirect_uris: &[],
            scopes: &[],
            require_pkce: true,
            name: None,
            access_token_format: AccessTokenFormat::Opaque,
        };
        let _ = store
            .upsert_client(a, &client, Source::File, 1)
            .await
            .unwrap()
            .settled()
            .await;
    }
    for name in ["kept", "dropped"] {
        let user = NewUser {
            username: name,
            password_hash: "h",
            roles: &[],
            profile: &Profile::default(),
        };
        let _ = store
            .upsert_user(a, &user, Source::File, 1)
            .await
            .unwrap()
            .settled()
            .await;
        let role = RoleRecord {
            name: name.into(),
            permissions: vec![],
            source: Source::File,
        };
        let _ = store.upsert_role(a, &role).await.unwrap().settled().await;
    }
    let declared = Declared {
        users: vec!["kept".into()],
        roles: vec!["kept".into()],
        clients: vec!["kept-client".into()],
    };
    let changes = store
        .release_undeclared(a, Some(&declared))
        .await
        .unwrap()
        .settled()
        .await;
    let mut expected = Changes::users_of(a);
    expected.merge(Changes::client("dropped-client"));
    assert_eq!(changes, expected);
    let owner = async |name: &str| store.user(a, name).await.unwrap().unwrap().source;
    assert_eq!(
        (owner("kept").await, owner("dropped").await),
        (Source::File, Source::Api)
    );
    let roles = store.roles(a).await.unwrap();
    let sources: Vec<(&str, Source)> = roles.iter().map(|r| (r.name.as_str(), r.source)).collect();
    assert_eq!(sources, [("dropped", Source::Api), ("kept", Source::File)]);
    let client = async |id: &str| store.client(id).await.unwrap().unwrap().source;
    assert_eq!(
        (client("kept-client").await, client("dropped-client").await),
        (Source::File, Source::Api)
    );
    // Again: nothing left to release, nothing changed.
    let again = store
        .release_undeclared(a, Some(&declared))
        .await
        .unwrap()
        .settled()
        .await;
    assert!(again.is_empty());
    // No file at all: the tenant's settings and rules go to the API as well.
    let file_tenant = NewTenant {
        resources: Some(vec![]),
        ..NewTenant::defaults("a.com".into())
    };
    let _ = store
        .upsert_tenant(&file_tenant, Source::File, 2)
        .await
        .unwrap()
        .settled()
        .await;
    let changes = store
        .release_undeclared(a, None)
        .await
        .unwrap()
        .settled()
        .await;
    assert!(changes.tenants.contains(&a), "{changes:?}");
    let row = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == a)
        .unwrap();
    assert_eq!(
        (row.source, row.resources_source),
        (Source::Api, Source::Api)
    );
    assert_eq!(owner("kept").await, Source::Api);
}

async fn tenant_settings_are_updated_in_place(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let settings = NewTenant {
        domain: "a.com".into(),
        settings: TenantSettings {
            lifetimes: Lifetimes {
                access_token: 60,
                refresh_token: 120,
                authorization_code: 30,
                grant_max_lifetime: 600,
            },
            introspection_clients: vec!["rs".into()],
            rate_limits: TenantRateLimits {
                requests_per_caller: Some(5),
                requests_per_tenant: None,
            },
        },
        resources: Some(vec![portcullis::store::RuleRow {
            context: ".*".into(),
            secured: false,
            http_method: "all".into(),
            permissions: vec![],
        }]),
    };
    assert_eq!(
        store
            .upsert_tenant(&settings, Source::File, 2)
            .await
            .unwrap()
            .settled()
            .await
            .0,
        a
    );
    let row = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == a)
        .unwrap();
    assert_eq!(
        (
            row.access_token_ttl,
            row.refresh_token_ttl,
            row.authorization_code_ttl
        ),
        (60, 120, 30)
    );
    assert_eq!(
        (
            row.grant_max_lifetime,
            row.requests_per_caller,
            row.requests_per_tenant
        ),
        (600, Some(5), None)
    );
    assert_eq!(row.introspection_clients, vec!["rs"]);
    assert_eq!(row.resources.unwrap()[0].context, ".*");
    assert!(row.active);
    // The file owns the settings, and the rules because it declares them; a file
    // without rules leaves them to the API.
    assert_eq!(
        (row.source, row.resources_source),
        (Source::File, Source::File)
    );
    let without_rules = NewTenant {
        resources: None,
        ..settings
    };
    let _ = store
        .upsert_tenant(&without_rules, Source::File, 3)
        .await
        .unwrap()
        .settled()
        .await;
    let row = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == a)
        .unwrap();
    assert_eq!(
        (row.source, row.resources_source),
        (Source::File, Source::Api)
    );
    assert_eq!(row.resources.unwrap()[0].context, ".*");
}

on_both_backends!(crate::open;
    tokens_round_trip_within_their_tenant,
    a_duplicate_digest_rolls_back_the_whole_issuance,
    transitions_record_reason_time_and_actor,
    bulk_changes_follow_the_state_machine,
    selections_stay_inside_the_tenant,
    rotation_supersedes_the_pair_and_loses_a_race,
    cascades_select_the_paired_tokens,
    users_carry_the_permissions_of_their_roles,
    client_ids_are_unique_across_tenants,
    tenant_settings_are_updated_in_place,
    what_a_file_stops_declaring_goes_to_the_api,
);

/// The newest `limit` events, unfiltered.
fn latest(limit: i64) -> AuditQuery {
    AuditQuery {
        limit,
        ..AuditQuery::default()
    }
}

fn audit(tenant_id: TenantId, action: &str, target: &str, at: i64) -> AuditEvent {
    AuditEvent {
        id: 0,
        tenant_id,
        at,
        actor: "admin@a.com".into(),
        action: action.into(),
        target: target.into(),
        client_address: "127.0.0.1".into(),
        detail: None,
        via: None,
    }
}

async fn a_user_change_ends_tokens_and_is_audited_together(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let _ = store
        .upsert_user(
            a,
            &NewUser {
                username: "alice",
                password_hash: "h",
                roles: &[],
                profile: &Profile::default(),
            },
            Source::Api,
            1,
        )
        .await
        .unwrap()
        .settled()
        .await;
    store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 1, "g"),
            access_with(a, 2, 1, "g"),
        ])
        .await
        .unwrap();
    let changed = store
        .change_user(
            a,
            "alice",
            UserChange::Password("h2"),
            &audit(a, "user.password", "alice", 50),
        )
        .await
        .unwrap()
        .settled()
        .await
        .unwrap();
    assert_eq!(
        (changed.tokens.len(), changed.users),
        (2, vec![(a, "alice".to_owned())])
    );
    let access = store.token(a, &[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        (access.state, access.state_reason),
        (State::Inactive, Some(Reason::PasswordChanged))
    );
    assert_eq!(access.state_changed_by.as_deref(), Some("admin@a.com"));
    assert_eq!(
        store.user(a, "alice").await.unwrap().unwrap().password_hash,
        "h2"
    );
    let events = store.audit_events(a, &latest(10)).await.unwrap();
    assert_eq!(
        (events.len(), events[0].action.as_str()),
        (1, "user.password")
    );
    // Enabling ends nothing; roles end nothing; an unknown user is None.
    let none = store
        .change_user(
            a,
            "alice",
            UserChange::Enabled(true),
            &audit(a, "user.enable", "alice", 51),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(none, Some(Changes::user(a, "alice")));
    assert!(store
        .change_user(
            a,
            "ghost",
            UserChange::Delete,
            &audit(a, "user.delete", "ghost", 52)
        )
        .await
        .unwrap()
        .settled()
        .await
        .is_none());
    assert_eq!(
        store.audit_events(a, &latest(10)).await.unwrap().len(),
        2,
        "a change that found nothing is not audited"
    );
    let _ = store
        .change_user(
            a,
            "alice",
            UserChange::Delete,
            &audit(a, "user.delete", "alice", 53),
        )
        .await
        .unwrap()
        .settled()
        .await;
    assert!(store.user(a, "alice").await.unwrap().is_none());
}

async fn failures_lock_at_the_threshold_and_clear(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let _ = store
        .upsert_user(
            a,
            &NewUser {
                username: "alice",
                password_hash: "h",
                roles: &[],
                profile: &Profile::default(),
            },
            Source::Api,
            1,
        )
        .await
        .unwrap()
        .settled()
        .await;
    let target = LockTarget::User {
        tenant_id: a,
        username: "alice",
    };
    let (fail, lock) = (
        audit(a, "user.signin_failure", "alice", 5),
        audit(a, "user.lock", "alice", 5),
    );
    for _ in 0..2 {
        assert_eq!(
            store
                .record_failure(target, 3, 1000, &fail, &lock)
                .await
                .unwrap()
                .settled()
                .await,
            (None, Changes::user(a, "alice"))
        );
    }
    assert_eq!(
        store
            .record_failure(target, 3, 1000, &fail, &lock)
            .await
            .unwrap()
            .settled()
            .await
            .0,
        Some(1000)
    );
    let user = store.user(a, "alice").await.unwrap().unwrap();
    assert_eq!((user.failed_attempts, user.locked_until), (0, Some(1000)));
    let actions: Vec<String> = store
        .audit_events(a, &latest(10))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.lock",
            "user.signin_failure",
            "user.signin_failure",
            "user.signin_failure"
        ]
    );
    assert!(store
        .clear_failures(target, &audit(a, "user.unlock", "alice", 6))
        .await
        .unwrap()
        .settled()
        .await
        .is_some());
    assert_eq!(
        store.user(a, "alice").await.unwrap().unwrap().locked_until,
        None
    );
    // Clients count the same way.
    let grants = [GrantType::ClientCredentials];
    let _ = store
        .upsert_client(
            a,
            &NewClient {
                client_id: "c",
                secret_hash: Some("h"),
                grant_types: &grants,
                redirect_uris: &[],
                scopes: &[],
                require_pkce: true,
                name: None,
                access_token_format: AccessTokenFormat::Opaque,
            },
            Source::Api,
            1,
        )
        .await
        .unwrap()
        .settled()
        .await;
    let client = LockTarget::Client { client_id: "c" };
    assert_eq!(
        store
            .record_failure(client, 1, 99, &fail, &lock)
            .await
            .unwrap()
            .settled()
            .await,
        (Some(99), Changes::client("c"))
    );
    assert_eq!(
        store.client("c").await.unwrap().unwrap().locked_until,
        Some(99)
    );
}

async fn roles_create_update_and_leave_users_when_deleted(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let role = RoleRecord {
        name: "r".into(),
        permissions: vec!["/permission/a".into()],
        source: Source::Api,
    };
    let _ = store
        .create_role(a, &role, &audit(a, "role.create", "r", 1))
        .await
        .unwrap()
        .settled()
        .await;
    assert!(matches!(
        store
            .create_role(a, &role, &audit(a, "role.create", "r", 2))
            .await,
        Err(portcullis::store::Error::Duplicate(_))
    ));
    let roles = ["r".to_owned()];
    let _ = store
        .upsert_user(
            a,
            &NewUser {
                username: "alice",
                password_hash: "h",
                roles: &roles,
                profile: &Profile::default(),
            },
            Source::Api,
            1,
        )
        .await
        .unwrap()
        .settled()
        .await;
    let wider = RoleRecord {
        name: "r".into(),
        permissions: vec!["/permission".into()],
        source: Source::Api,
    };
    assert_eq!(
        store
            .update_role(a, &wider, &audit(a, "role.update", "r", 3))
            .await
            .unwrap()
            .settled()
            .await,
        Some(Changes::users_of(a))
    );
    assert_eq!(
        paths(&store.user(a, "alice").await.unwrap().unwrap().permissions),
        ["/permission"]
    );
    assert_eq!(
        store
            .delete_role(a, "r", &audit(a, "role.delete", "r", 4))
            .await
            .unwrap()
            .settled()
            .await,
        Some(Changes::users_of(a))
    );
    let user = store.user(a, "alice").await.unwrap().unwrap();
    assert!(user.roles.is_empty() && user.permissions.is_empty());
    assert!(store
        .delete_role(a, "r", &audit(a, "role.delete", "r", 5))
        .await
        .unwrap()
        .settled()
        .await
        .is_none());
    assert_eq!(store.roles(a).await.unwrap(), vec![]);
}

async fn tenants_are_created_whole_and_deactivated_with_their_tokens(store: Opened) {
    let root = tenant(&store, "root.com").await;
    let mut settings = NewTenant::defaults("new.org".into());
    settings.settings.lifetimes = Lifetimes {
        access_token: 60,
        refresh_token: 60,
        authorization_code: 60,
        ..Lifetimes::default()
    };
    let role = RoleRecord {
        name: "admin".into(),
        permissions: vec!["/permission/admin".into()],
        source: Source::Api,
    };
    let roles = ["admin".to_owned()];
    let boss = NewUser {
        username: "boss",
        password_hash: "h",
        roles: &roles,
        profile: &Profile::default(),
    };
    let created = store
        .create_tenant(
            &settings,
            &role,
            &boss,
            &signing_key("new-org-key"),
            &audit(root, "tenant.create", "new.org", 1),
        )
        .await
        .unwrap()
        .settled()
        .await;
    let id = created.tenants[0];
    assert_eq!(
        created,
        Changes {
            signing_keys: vec![id],
            ..Changes::tenant(id)
        }
    );
    let keys = store.signing_keys(id, 0).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].domain.as_str()),
        ("new-org-key", "new.org")
    );
    assert_eq!(
        paths(&store.user(id, "boss").await.unwrap().unwrap().permissions),
        ["/permission/admin"]
    );
    assert!(matches!(
        store
            .create_tenant(
                &settings,
                &role,
                &boss,
                &signing_key("another-key"),
                &audit(root, "tenant.create", "new.org", 2)
            )
            .await,
        Err(portcullis::store::Error::Duplicate("domain"))
    ));
    store
        .insert_tokens(&[token(id, TokenKind::Access, 7, "g")])
        .await
        .unwrap();
    let changed = store
        .deactivate_tenant(id, &audit(root, "tenant.deactivate", "new.org", 3))
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(
        (changed.tokens, changed.tenants, changed.users_of_tenants),
        (vec![[7; 32]], vec![id], vec![id])
    );
    assert_eq!(
        store
            .token(id, &[7; 32])
            .await
            .unwrap()
            .unwrap()
            .state_reason,
        Some(Reason::TenantDeactivated)
    );
    assert!(
        !store
            .tenants()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
            .active
    );
    assert_eq!(
        store.audit_events(root, &latest(10)).await.unwrap().len(),
        2
    );
}

async fn audit_events_page_newest_first_per_tenant(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let b = tenant(&store, "b.com").await;
    for i in 0..5 {
        store
            .record_audit(&audit(a, "x", &format!("t{i}"), i))
            .await
            .unwrap();
    }
    store
        .record_audit(&audit(b, "x", "other", 9))
        .await
        .unwrap();
    let page = store.audit_events(a, &latest(2)).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["t4", "t3"]
    );
    let next = store
        .audit_events(
            a,
            &AuditQuery {
                before: Some(page[1].id),
                ..latest(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
        ["t2", "t1", "t0"]
    );
}

/// A stored key as the store sees it: opaque bytes named by `kid`.
fn signing_key(kid: &str) -> NewSigningKey {
    NewSigningKey {
        kid: kid.into(),
        public_key: kid.as_bytes().to_vec(),
        sealed_private_key: vec![1, 2, 3],
        created_at: 10,
    }
}

async fn a_tenant_gets_one_first_signing_key_and_rotations_retire_it(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let b = tenant(&store, "b.com").await;
    let added = store
        .add_signing_keys(&[(a, signing_key("a1")), (b, signing_key("b1"))])
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(added, Changes::signing_keys(vec![a, b]));
    // An instance starting at the same time gives the tenant nothing more.
    let again = store
        .add_signing_keys(&[(a, signing_key("a-late"))])
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(again, Changes::signing_keys(vec![]));
    let kids = |rows: Vec<portcullis::store::SigningKeyRow>| {
        rows.into_iter()
            .map(|r| (r.kid, r.retired_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(store.signing_keys(a, 0).await.unwrap()),
        [("a1".into(), None)]
    );

    let a2 = NewSigningKey {
        created_at: 100,
        ..signing_key("a2")
    };
    let rotated = store
        .rotate_signing_key(a, &a2, 0, 3, &audit(a, "key.rotate", "a2", 100))
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(rotated, Changes::signing_keys(vec![a]));
    assert_eq!(
        kids(store.signing_keys(a, 0).await.unwrap()),
        [("a2".into(), None), ("a1".into(), Some(100))]
    );
    // Past its window the retired key is no longer published, and the next rotation
    // deletes it.
    assert_eq!(
        kids(store.signing_keys(a, 100).await.unwrap()),
        [("a2".into(), None)]
    );
    let a3 = NewSigningKey {
        created_at: 200,
        ..signing_key("a3")
    };
    let _ = store
        .rotate_signing_key(a, &a3, 150, 3, &audit(a, "key.rotate", "a3", 200))
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(
        kids(store.signing_keys(a, 0).await.unwrap()),
        [("a3".into(), None), ("a2".into(), Some(200))]
    );
    let active = store.active_signing_keys().await.unwrap();
    assert_eq!(
        active
            .iter()
            .map(|r| (r.tenant_id, r.kid.as_str(), r.domain.as_str()))
            .collect::<Vec<_>>(),
        [(a, "a3", "a.com"), (b, "b1", "b.com")]
    );
    assert_eq!(
        kids(store.signing_keys(b, 0).await.unwrap()),
        [("b1".into(), None)]
    );
    let events = store.audit_events(a, &latest(10)).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["key.rotate", "key.rotate"]
    );

    // Past `keep_retiring`, a rotation drops the oldest retiring keys, however young.
    for (i, at) in (201..=205).enumerate() {
        let key = NewSigningKey {
            created_at: at,
            ..signing_key(&format!("a{}", i + 4))
        };
        let _ = store
            .rotate_signing_key(a, &key, 0, 2, &audit(a, "key.rotate", &key.kid, at))
            .await
            .unwrap()
            .settled()
            .await;
    }
    assert_eq!(
        kids(store.signing_keys(a, 0).await.unwrap()),
        [
            ("a8".into(), None),
            ("a7".into(), Some(205)),
            ("a6".into(), Some(204))
        ]
    );
}

on_both_backends!(crate::open;
    a_tenant_gets_one_first_signing_key_and_rotations_retire_it,
    a_user_change_ends_tokens_and_is_audited_together,
    failures_lock_at_the_threshold_and_clear,
    roles_create_update_and_leave_users_when_deleted,
    tenants_are_created_whole_and_deactivated_with_their_tokens,
    audit_events_page_newest_first_per_tenant,
);

/// Revokes one token at `at` (so it stopped being active then).
async fn revoke_at(store: &Opened, tenant_id: TenantId, seed: u8, kind: TokenKind, at: i64) {
    let id = store
        .token(tenant_id, &[seed; 32])
        .await
        .unwrap()
        .unwrap()
        .id;
    let step = Step::new(
        kind,
        Selection::Token(id),
        Event::Revoke(Revocation::ByAdmin),
    );
    let _ = store
        .transitions(tenant_id, &[step], at, &Actor::user("admin").into())
        .await
        .unwrap()
        .settled()
        .await;
}

async fn purge_takes_only_whole_grants_ended_before_the_cutoff(store: Opened) {
    let a = tenant(&store, "a.com").await;
    // "ended": revoked at 150 and expired at 200, both before the cutoff of 1,000.
    // "rotating": a refresh token spent at 150, but its grant's newest access token
    // lives until 5,000, so its reuse must still be detected: the grant stays whole.
    // "recent": revoked at 2,000, after the cutoff.
    let rotating_access = NewToken {
        expires_at: 5_000,
        ..token(a, TokenKind::Access, 4, "rotating")
    };
    store
        .insert_tokens(&[
            token(a, TokenKind::Refresh, 1, "ended"),
            access_with(a, 2, 1, "ended"),
            token(a, TokenKind::Refresh, 3, "rotating"),
            rotating_access,
            token(a, TokenKind::Access, 5, "recent"),
        ])
        .await
        .unwrap();
    revoke_at(&store, a, 1, TokenKind::Refresh, 150).await;
    revoke_at(&store, a, 3, TokenKind::Refresh, 150).await;
    revoke_at(&store, a, 5, TokenKind::Access, 2_000).await;
    for at in [10, 20, 3_000] {
        store.record_audit(&audit(a, "x", "t", at)).await.unwrap();
    }

    let purged = store.purge(1_000, 1_000, 500).await.unwrap().unwrap();
    assert_eq!((purged.tokens, purged.audit_events), (2, 2));
    for (seed, kept) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        let found = store.token(a, &[seed; 32]).await.unwrap().is_some();
        assert_eq!(found, kept, "token {seed}");
    }
    let events = store.audit_events(a, &latest(10)).await.unwrap();
    assert_eq!(events.iter().map(|e| e.at).collect::<Vec<_>>(), [3_000]);

    // In batches: one row at a time, then nothing is left to do.
    let _ = store
        .transitions(
            a,
            &[Step::new(
                TokenKind::Access,
                Selection::Grant("rotating".into()),
                Event::LifetimePassed,
            )],
            5_000,
            &Actor::System.into(),
        )
        .await
        .unwrap()
        .settled()
        .await;
    let one = store.purge(9_000, 0, 1).await.unwrap().unwrap();
    assert_eq!(one.tokens, 1);
    let rest = store.purge(9_000, 0, 10).await.unwrap().unwrap();
    assert_eq!(rest.tokens, 2);
    assert_eq!(
        store.purge(9_000, 0, 10).await.unwrap().unwrap(),
        Purged::default()
    );
}

on_both_backends!(crate::open;
    purge_takes_only_whole_grants_ended_before_the_cutoff,
);

/// On PostgreSQL one instance purges at a time: while another session holds the purge
/// lock, a purge does nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_instance_purges_at_a_time() {
    let Some(store) = open(Backend::Postgres).await else {
        return;
    };
    let schema = store
        .database
        .url
        .rsplit("search_path%3D")
        .next()
        .unwrap()
        .to_owned();
    let mut other = sqlx::PgConnection::connect(&common::postgres_url().unwrap())
        .await
        .unwrap();
    let channel = format!("portcullis.{schema}");
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&channel)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(store.purge(1_000, 1_000, 10).await.unwrap(), None);
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&channel)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(
        store.purge(1_000, 1_000, 10).await.unwrap(),
        Some(Purged::default())
    );
}

#[test]
fn migration_folders_are_in_lockstep() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("migrations/sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("migrations/postgres"));
}

#[tokio::test]
async fn an_unsupported_database_url_is_refused() {
    let err = portcullis::store::connect("mysql://localhost/x")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("mysql"));
}

// ---- group commit --------------------------------------------------------------------

/// A token whose digest is made from a wider seed than [`token`]'s.
fn numbered(tenant_id: TenantId, n: u16, grant: &str) -> NewToken {
    let mut digest = [0xEE; 32];
    digest[..2].copy_from_slice(&n.to_be_bytes());
    NewToken {
        digest,
        ..token(tenant_id, TokenKind::Access, 0, grant)
    }
}

async fn concurrent_writes_all_commit_and_outlive_the_store(store: Opened) {
    let a = tenant(&store, "a.com").await;
    // Issuances and revocations at once: they share batches, each answered after its
    // batch committed.
    let writes = (0..300u16).map(|n| {
        let store = store.store.clone();
        tokio::spawn(async move {
            store
                .insert_tokens(&[numbered(a, n, &format!("g{n}"))])
                .await
                .unwrap();
            if n % 3 == 0 {
                let step = Step::new(
                    TokenKind::Access,
                    Selection::Grant(format!("g{n}")),
                    Event::Revoke(Revocation::ByAdmin),
                );
                let changes = store
                    .transitions(a, &[step], 150, &Actor::user("admin").into())
                    .await
                    .unwrap()
                    .settled()
                    .await;
                assert_eq!(changes.tokens, vec![numbered(a, n, "").digest]);
            }
        })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.unwrap();
    }
    // What was acknowledged is there for a store opened afresh.
    store.close().await;
    let reopened = portcullis::store::connect(&store.database.url)
        .await
        .unwrap();
    for n in 0..300u16 {
        let found = reopened.token(a, &numbered(a, n, "").digest).await.unwrap();
        let expected = if n % 3 == 0 {
            State::Revoked
        } else {
            State::Active
        };
        assert_eq!(found.map(|t| t.state), Some(expected), "token {n}");
    }
    reopened.close().await;
}

async fn a_failed_batch_fails_its_writes_and_the_writer_goes_on(store: Opened) {
    let a = tenant(&store, "a.com").await;
    store.insert_tokens(&[numbered(a, 1, "g")]).await.unwrap();
    // A duplicate digest fails its batch: nothing of it is stored.
    let failed = store
        .insert_tokens(&[numbered(a, 2, "g"), numbered(a, 1, "g")])
        .await;
    assert!(
        matches!(failed, Err(portcullis::store::Error::Batch(_))),
        "{failed:?}"
    );
    assert!(store
        .token(a, &numbered(a, 2, "").digest)
        .await
        .unwrap()
        .is_none());
    // The next write is a batch of its own and commits.
    store.insert_tokens(&[numbered(a, 3, "g")]).await.unwrap();
    assert!(store
        .token(a, &numbered(a, 3, "").digest)
        .await
        .unwrap()
        .is_some());
}

/// Many refreshes queued behind one write share a batch: each rotates its own pair
/// once, a refresh token presented twice in the batch is spent once, and each
/// spending records its own actor and time.
async fn refreshes_sharing_a_batch_each_rotate_their_own_pair_once(store: Opened) {
    let a = tenant(&store, "a.com").await;
    let grants = 40u8;
    let mut pairs = Vec::new();
    for g in 0..grants {
        let grant = format!("g{g}");
        pairs.push(token(a, TokenKind::Refresh, 2 * g + 1, &grant));
        pairs.push(access_with(a, 2 * g + 2, 2 * g + 1, &grant));
    }
    store.insert_tokens(&pairs).await.unwrap();
    let mut olds = Vec::new();
    for g in 0..grants {
        olds.push(store.token(a, &[2 * g + 1; 32]).await.unwrap().unwrap());
    }
    // A large issuance first keeps the writer busy, so that the redemptions queue
    // behind it and share the next batch.
    let filler: Vec<NewToken> = (0..2_000u16).map(|n| numbered(a, n, "filler")).collect();
    let writer = store.store.clone();
    let filled = tokio::spawn(async move { writer.insert_tokens(&filler).await });
    let redeems = (0..=grants).map(|g| {
        // Grant 0's refresh token is presented twice.
        let old = olds[usize::from(g % grants)].clone();
        let store = store.store.clone();
        let (actor, now) = if g % 2 == 0 {
            (Actor::client("c"), 150)
        } else {
            (Actor::client("d"), 151)
        };
        tokio::spawn(async move {
            let next = [NewToken {
                digest: [200u8.wrapping_add(g); 32],
                jti: format!("next-{g}"),
                ..token(a, TokenKind::Refresh, 0, &old.token.grant_id)
            }];
            (
                g,
                store
                    .redeem(&old, &next, now, &actor.clone().into())
                    .await
                    .unwrap()
                    .settled()
                    .await,
            )
        })
    });
    let redeems: Vec<_> = redeems.collect();
    filled.await.unwrap().unwrap();
    let mut rotated_grant_zero = 0;
    for redeem in redeems {
        let (g, rotation) = redeem.await.unwrap();
        let grant = g % grants;
        match rotation {
            (
                Rotation::Rotated,
                Changes {
                    tokens: mut changed,
                    ..
                },
            ) => {
                changed.sort();
                assert_eq!(changed, vec![[2 * grant + 1; 32], [2 * grant + 2; 32]]);
                if grant == 0 {
                    rotated_grant_zero += 1;
                }
            }
            (Rotation::Lost, _) => assert_eq!(grant, 0, "only the repeated token may lose"),
        }
    }
    assert_eq!(
        rotated_grant_zero, 1,
        "a token presented twice is spent once"
    );
    for g in 1..grants {
        let old_refresh = store.token(a, &[2 * g + 1; 32]).await.unwrap().unwrap();
        let old_access = store.token(a, &[2 * g + 2; 32]).await.unwrap().unwrap();
        assert_eq!(
            (old_refresh.state, old_access.state),
            (State::Inactive, State::Inactive),
            "grant {g}"
        );
        let (actor, now) = if g % 2 == 0 {
            ("client:c", 150)
        } else {
            ("client:d", 151)
        };
        let lookup = store.token(a, &[2 * g + 1; 32]).await.unwrap().unwrap();
        assert_eq!(
            (lookup.state_changed_by.as_deref(), lookup.state_changed_at),
            (Some(actor), Some(now)),
            "grant {g}"
        );
    }
}

async fn a_grant_revoked_during_its_refresh_keeps_no_active_token(store: Opened) {
    let a = tenant(&store, "a.com").await;
    // Refresh and revocation race, round after round; whichever goes first, the grant
    // ends with nothing ACTIVE, as if the two had run one after the other.
    for round in 0..20u8 {
        let grant = format!("g{round}");
        let (refresh, access, next_refresh, next_access) =
            (4 * round + 1, 4 * round + 2, 4 * round + 3, 4 * round + 4);
        store
            .insert_tokens(&[
                token(a, TokenKind::Refresh, refresh, &grant),
                access_with(a, access, refresh, &grant),
            ])
            .await
            .unwrap();
        let old = store.token(a, &[refresh; 32]).await.unwrap().unwrap();
        let next = [
            token(a, TokenKind::Refresh, next_refresh, &grant),
            access_with(a, next_access, next_refresh, &grant),
        ];
        let revoke = [TokenKind::Access, TokenKind::Refresh].map(|kind| {
            Step::new(
                kind,
                Selection::Grant(grant.clone()),
                Event::Revoke(Revocation::ByAdmin),
            )
        });
        // A large issuance first keeps the writer busy, so that the two queue behind
        // it and share the next batch.
        let filler: Vec<NewToken> = (0..1_000u16)
            .map(|n| numbered(a, u16::from(round) * 1_000 + n, "filler"))
            .collect();
        let (client, admin): (ChangedBy, ChangedBy) =
            (Actor::client("c").into(), Actor::user("admin").into());
        let (filled, rotated, revoked) = tokio::join!(
            store.insert_tokens(&filler),
            store.redeem(&old, &next, 150, &client),
            store.transitions(a, &revoke, 150, &admin),
        );
        filled.unwrap();
        rotated.unwrap().settled().await;
        revoked.unwrap().settled().await;
        for seed in [refresh, access, next_refresh, next_access] {
            let state = store.token(a, &[seed; 32]).await.unwrap().map(|t| t.state);
            assert_ne!(state, Some(State::Active), "round {round}, token {seed}");
        }
    }
}

on_both_backends!(crate::open;
    concurrent_writes_all_commit_and_outlive_the_store,
    refreshes_sharing_a_batch_each_rotate_their_own_pair_once,
    a_failed_batch_fails_its_writes_and_the_writer_goes_on,
    a_grant_revoked_during_its_refresh_keeps_no_active_token,
);
