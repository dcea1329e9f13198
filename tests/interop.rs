//! Interoperability with a real client library: the `oauth2` crate (client credentials,
//! password and refresh grants, introspection, revocation) against the running server.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer};
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, IntrospectionUrl, ResourceOwnerPassword, ResourceOwnerUsername,
    RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse,
    TokenUrl,
};

async fn library_round_trip(s: TestServer) {
    let http = s.client.clone();
    // A secret with characters the library percent-encodes inside Basic.
    let client = BasicClient::new(ClientId::new("super_under_score".into()))
        .set_client_secret(ClientSecret::new("s+cret/with=odd&chars".into()))
        .set_token_uri(TokenUrl::new(s.url("/oauth2/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(s.url("/oauth2/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(s.url("/oauth2/revoke")).unwrap());

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("client credentials grant");
    assert_eq!(token.scopes().unwrap()[0].as_str(), "read");

    let introspection = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(introspection.active());
    assert_eq!(
        introspection.client_id().unwrap().as_str(),
        "super_under_score"
    );
    assert!(introspection.exp().is_some());

    client
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .expect("revocation answers 200");
    let after = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!after.active());

    // Password and refresh grants.
    let pair = client
        .exchange_password(
            &ResourceOwnerUsername::new("viewer".into()),
            &ResourceOwnerPassword::new("viewer-password".into()),
        )
        .request_async(&http)
        .await
        .expect("password grant");
    let refresh = pair.refresh_token().expect("a refresh token").clone();
    let next = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh grant");
    assert_ne!(next.access_token().secret(), pair.access_token().secret());
    let old = client
        .introspect(pair.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!old.active());
    let new = client
        .introspect(next.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(new.active());
    assert_eq!(new.username(), Some("viewer@carbon.super"));
}

#[tokio::test]
async fn the_oauth2_crate_works_against_sqlite() {
    library_round_trip(TestServer::start(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn the_oauth2_crate_works_against_postgres() {
    if let Some(s) = TestServer::start_postgres().await {
        library_round_trip(s).await;
    }
}
