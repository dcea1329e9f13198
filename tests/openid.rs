//! End-to-end: OpenID Connect per tenant — discovery, ID tokens checked by an
//! independent JOSE implementation (`jsonwebtoken`) with keys from the JWKS only, the
//! userinfo endpoint and its refusals, and subjects that are stable and never reused;
//! on SQLite and PostgreSQL.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::flow::{open, pkce, query_param, submit};
use common::TestServer;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
/// The test servers' `server.public_url`.
const SITE: &str = "https://localhost:9443";
const RP: &str = "rp";
const RP_CALLBACK: &str = "https://rp.example/callback";

/// Registers the relying party `rp` in foo.com: a confidential client of the code
/// flow (a public one may not refresh, SPEC §6); answers its secret.
async fn register_rp(s: &TestServer) -> String {
    let client = json!({
        "client_id": RP,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [RP_CALLBACK],
    });
    let (status, body) = s
        .api("POST", "/t/foo.com/api/v1/clients", FOO_ADMIN, Some(client))
        .await;
    assert_eq!(status, 201, "{body}");
    body["client_secret"].as_str().unwrap().to_owned()
}

/// Signs `user` in through `rp` (whose secret is `secret`) with `scope` and `nonce`,
/// and exchanges the code: answers the token response.
async fn sign_in(
    s: &TestServer,
    secret: &str,
    user: (&str, &str),
    scope: &str,
    nonce: Option<&str>,
) -> Value {
    let (code, verifier) = code_for(s, user, scope, nonce).await;
    exchange(s, secret, &code, &verifier).await
}

/// Signs `user` in on `s`'s sign-in page through `rp`: answers the code and its PKCE
/// verifier.
async fn code_for(
    s: &TestServer,
    user: (&str, &str),
    scope: &str,
    nonce: Option<&str>,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", RP),
        ("redirect_uri", RP_CALLBACK),
        ("scope", scope),
        ("state", "st"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(nonce) = nonce {
        query.push(("nonce", nonce));
    }
    let page = open(s, "/t/foo.com", &query).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (status, location, body) = submit(s, "/t/foo.com", &page, user.0, user.1, "approve").await;
    assert_eq!(status, 303, "{body}");
    (query_param(&location.unwrap(), "code").unwrap(), verifier)
}

/// `rp` exchanges `code` at `s`'s token endpoint.
async fn exchange(s: &TestServer, secret: &str, code: &str, verifier: &str) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", RP_CALLBACK),
        ("code_verifier", verifier),
    ];
    let r = s
        .post_form("/t/foo.com/oauth2/token", Some((RP, secret)), &form)
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The claims of an ID token of foo.com for `rp`, verified with a key of foo.com's
/// JWKS (found by `kid`) and nothing else.
async fn verified(s: &TestServer, id_token: &str) -> Value {
    verified_for(s, id_token, RP).await
}

/// The claims of a JWT of foo.com for `audience`, verified as [`verified`] does.
async fn verified_for(s: &TestServer, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let r = s
        .client
        .get(s.url("/t/foo.com/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    let jwks: JwkSet = r.json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[format!("{SITE}/t/foo.com")]);
    let data =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the ID token verifies");
    data.claims
}

fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

async fn discovery_names_every_endpoint_of_the_tenant(s: TestServer) {
    for (path, issuer) in [
        ("/.well-known/openid-configuration", SITE.to_owned()),
        (
            "/t/foo.com/.well-known/openid-configuration",
            format!("{SITE}/t/foo.com"),
        ),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer.as_str());
        for (key, endpoint) in [
            ("authorization_endpoint", "/oauth2/authorize"),
            ("token_endpoint", "/oauth2/token"),
            ("userinfo_endpoint", "/oauth2/userinfo"),
            ("jwks_uri", "/oauth2/jwks"),
        ] {
            assert_eq!(doc[key], format!("{issuer}{endpoint}"), "{key}");
        }
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert!(doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openid")));
        assert!(doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("sub")));
    }
    // The RFC 8414 document is as it was.
    let r = s
        .client
        .get(s.url("/.well-known/oauth-authorization-server/t/foo.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url("/t/nowhere.example/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "no discovery for a tenant that does not exist"
    );
}

async fn an_openid_code_flow_hands_out_a_verifiable_id_token(s: TestServer) {
    let secret = register_rp(&s).await;
    let tokens = sign_in(
        &s,
        &secret,
        ("alice", "alice-password"),
        "openid profile",
        Some("n-0S6_WzA2Mj"),
    )
    .await;
    let claims = verified(&s, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], RP);
    assert_eq!(claims["azp"], RP);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(
        claims["at_hash"],
        at_hash(tokens["access_token"].as_str().unwrap())
    );
    let (iat, auth_time) = (
        claims["iat"].as_i64().unwrap(),
        claims["auth_time"].as_i64().unwrap(),
    );
    assert!(auth_time <= iat && iat - auth_time < 60, "{claims}");
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert_eq!(sub.len(), 32, "a random subject, not the username: {sub}");

    // A refresh hands out an ID token about the same sign-in, with no nonce.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let r = s
        .post_form("/t/foo.com/oauth2/token", Some((RP, &secret)), &form)
        .await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    let again = verified(&s, refreshed["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (&again["sub"], &again["auth_time"]),
        (&claims["sub"], &claims["auth_time"])
    );
    assert!(again.get("nonce").is_none(), "{again}");
    assert_eq!(
        again["at_hash"],
        at_hash(refreshed["access_token"].as_str().unwrap())
    );

    // Without openid there is no ID token; without profile, no username in it.
    let plain = sign_in(&s, &secret, ("alice", "alice-password"), "read", None).await;
    assert!(plain.get("id_token").is_none(), "{plain}");
    let bare = sign_in(&s, &secret, ("alice", "alice-password"), "openid", None).await;
    let bare = verified(&s, bare["id_token"].as_str().unwrap()).await;
    assert!(
        bare.get("preferred_username").is_none() && bare.get("nonce").is_none(),
        "{bare}"
    );
    assert_eq!(bare["sub"], sub.as_str(), "the same user, the same subject");

    // prompt=none cannot be met without a session: login_required at the redirect URI.
    let (_, challenge) = pkce();
    let refused = |prompt: &'static str, max_age: &'static str| {
        let challenge = challenge.clone();
        let s = &s;
        async move {
            let page = open(
                s,
                "/t/foo.com",
                &[
                    ("response_type", "code"),
                    ("client_id", RP),
                    ("redirect_uri", RP_CALLBACK),
                    ("scope", "openid"),
                    ("state", "st-p"),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("prompt", prompt),
                    ("max_age", max_age),
                ],
            )
            .await;
            match page.status {
                302 => {
                    let location = page.headers["location"].to_str().unwrap().to_owned();
                    assert_eq!(query_param(&location, "state").as_deref(), Some("st-p"));
                    query_param(&location, "error")
                }
                status => {
                    assert_eq!(status, 200, "{}", page.html);
                    None
                }
            }
        }
    };
    assert_eq!(refused("none", "").await.as_deref(), Some("login_required"));
    assert_eq!(
        refused("none login", "").await.as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        refused("sideways", "").await.as_deref(),
        Some("invalid_request")
    );
    assert_eq!(refused("", "-1").await.as_deref(), Some("invalid_request"));
    assert_eq!(
        refused("login consent", "0").await,
        None,
        "the sign-in page"
    );

    // A nonce too long is refused back at the redirect URI.
    let (_, challenge) = pkce();
    let long = "n".repeat(513);
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", RP),
            ("redirect_uri", RP_CALLBACK),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("nonce", &long),
        ],
    )
    .await;
    assert_eq!(page.status, 302);
    let location = page.headers["location"].to_str().unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("invalid_request")
    );
}

async fn userinfo_answers_for_an_openid_token_only(s: TestServer) {
    let secret = register_rp(&s).await;
    let tokens = sign_in(
        &s,
        &secret,
        ("alice", "alice-password"),
        "openid profile",
        None,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = verified(&s, tokens["id_token"].as_str().unwrap()).await;
    let userinfo = "/t/foo.com/oauth2/userinfo";
    let r = s
        .client
        .get(s.url(userinfo))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let info: Value = r.json().await.unwrap();
    assert_eq!(
        info,
        json!({"sub": claims["sub"], "preferred_username": "alice"})
    );
    // POST with the token in the form (RFC 6750 §2.2).
    let r = s
        .post_form(userinfo, None, &[("access_token", access)])
        .await;
    assert_eq!(r.status(), 200);

    // No token: a bare challenge. Another tenant's endpoint: an invalid token.
    let r = s.client.get(s.url(userinfo)).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["www-authenticate"].to_str().unwrap()
        ),
        (401, "Bearer")
    );
    let r = s
        .client
        .get(s.url("/t/bar.com/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
    // A token issued without openid: insufficient scope.
    let plain = sign_in(&s, &secret, ("alice", "alice-password"), "read", None).await;
    let r = s
        .client
        .get(s.url(userinfo))
        .bearer_auth(plain["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    // A revoked token is invalid.
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some((RP, &secret)),
            &[("token", access)],
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(s.url(userinfo))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn a_user_made_again_under_the_same_name_is_a_new_subject(s: TestServer) {
    let secret = register_rp(&s).await;
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let first = sign_in(&s, &secret, ("carol", "carol-password"), "openid", None).await;
    let first = verified(&s, first["id_token"].as_str().unwrap()).await;
    let (status, _) = s
        .api("DELETE", "/t/foo.com/api/v1/users/carol", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 204);
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let second = sign_in(&s, &secret, ("carol", "carol-password"), "openid", None).await;
    let second = verified(&s, second["id_token"].as_str().unwrap()).await;
    assert_ne!(first["sub"], second["sub"], "a subject is never reused");
    // Each user of the tenant has a subject of their own.
    let alice = sign_in(&s, &secret, ("alice", "alice-password"), "openid", None).await;
    let alice = verified(&s, alice["id_token"].as_str().unwrap()).await;
    assert_ne!(alice["sub"], second["sub"]);
}

async fn profile_claims_follow_their_scopes(s: TestServer) {
    let secret = register_rp(&s).await;
    let dora = json!({"username": "dora", "password": "dora-password", "name": "Dora Explorer",
                      "email": "dora@foo.example", "email_verified": true});
    let (status, view) = s
        .api("POST", "/t/foo.com/api/v1/users", FOO_ADMIN, Some(dora))
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(
        (&view["name"], &view["email"], &view["email_verified"]),
        (
            &json!("Dora Explorer"),
            &json!("dora@foo.example"),
            &json!(true)
        )
    );
    let tokens = sign_in(
        &s,
        &secret,
        ("dora", "dora-password"),
        "openid profile email",
        None,
    )
    .await;
    let claims = verified(&s, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (&claims["name"], &claims["email"], &claims["email_verified"]),
        (
            &json!("Dora Explorer"),
            &json!("dora@foo.example"),
            &json!(true)
        )
    );
    let r = s
        .client
        .get(s.url("/t/foo.com/oauth2/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let info: Value = r.json().await.unwrap();
    assert_eq!(
        info,
        json!({"sub": claims["sub"], "preferred_username": "dora", "name": "Dora Explorer",
               "email": "dora@foo.example", "email_verified": true})
    );
    // Without the email scope, no address; introspection shows none of it.
    let narrow = sign_in(&s, &secret, ("dora", "dora-password"), "openid", None).await;
    let narrow = verified(&s, narrow["id_token"].as_str().unwrap()).await;
    assert!(
        narrow.get("email").is_none() && narrow.get("name").is_none(),
        "{narrow}"
    );
    let (_, info) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            FOO_ADMIN,
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert!(
        info.get("email").is_none() && info.get("name").is_none(),
        "{info}"
    );

    // The profile is replaced whole and checked; a file's user keeps the file's.
    let profile = "/t/foo.com/api/v1/users/dora/profile";
    let (status, body) = s
        .api(
            "PUT",
            profile,
            FOO_ADMIN,
            Some(json!({"email": "dora at foo"})),
        )
        .await;
    assert_eq!((status, &body["field"]), (400, &json!("email")), "{body}");
    let (status, body) = s
        .api(
            "PUT",
            profile,
            FOO_ADMIN,
            Some(json!({"name": "D. Explorer"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "D. Explorer");
    assert!(
        body.get("email").is_none(),
        "what the body leaves out is cleared: {body}"
    );
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/alice/profile",
            FOO_ADMIN,
            Some(json!({"name": "Alice"})),
        )
        .await;
    assert_eq!(status, 409, "alice is the tenant file's");
    let (_, log) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/audit?action=user.profile",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(log["events"][0]["target"], "dora", "{log}");
}

async fn jwt_access_tokens_are_signed_and_still_revocable(s: TestServer) {
    let issuer = format!("{SITE}/t/foo.com");
    let client = json!({"client_id": "jwt-svc", "grant_types": ["client_credentials"],
                        "access_token_format": "jwt"});
    let (status, registered) = s
        .api("POST", "/t/foo.com/api/v1/clients", FOO_ADMIN, Some(client))
        .await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["access_token_format"], "jwt");
    let secret = registered["client_secret"].as_str().unwrap();
    let tokens = s
        .client_token("/t/foo.com/oauth2/token", ("jwt-svc", secret), Some("read"))
        .await;
    let jwt = tokens["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let claims = verified_for(&s, jwt, &issuer).await;
    assert_eq!(
        (&claims["sub"], &claims["client_id"], &claims["scope"]),
        (&json!("jwt-svc"), &json!("jwt-svc"), &json!("read"))
    );
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    // Stored by its digest like any token: introspection knows it, and revocation ends it.
    let (_, info) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, jwt)
        .await;
    assert_eq!(
        (&info["active"], &info["jti"]),
        (&json!(true), &claims["jti"]),
        "{info}"
    );
    let r = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(("jwt-svc", secret)),
            &[("token", jwt)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        !s.is_active("/t/foo.com", FOO_ADMIN, jwt).await,
        "a revoked JWT is inactive"
    );

    // A relying party switched to JWTs: its access token's sub is its ID token's.
    let rp_secret = register_rp(&s).await;
    let (status, body) = s
        .api(
            "PATCH",
            "/t/foo.com/api/v1/clients/rp",
            FOO_ADMIN,
            Some(json!({"access_token_format": "paseto"})),
        )
        .await;
    assert_eq!(
        (status, &body["field"]),
        (400, &json!("access_token_format")),
        "{body}"
    );
    let (status, _) = s
        .api(
            "PATCH",
            "/t/foo.com/api/v1/clients/rp",
            FOO_ADMIN,
            Some(json!({"access_token_format": "jwt"})),
        )
        .await;
    assert_eq!(status, 200);
    let tokens = sign_in(&s, &rp_secret, ("alice", "alice-password"), "openid", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id = verified(&s, tokens["id_token"].as_str().unwrap()).await;
    let at = verified_for(&s, access, &issuer).await;
    assert_eq!((&at["sub"], &at["client_id"]), (&id["sub"], &json!(RP)));
    assert_eq!(id["at_hash"], at_hash(access));
    let r = s
        .client
        .get(s.url("/t/foo.com/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "userinfo takes a JWT access token");
}

on_both_backends!(crate::common::TestServer::for_backend;
    discovery_names_every_endpoint_of_the_tenant,
    an_openid_code_flow_hands_out_a_verifiable_id_token,
    userinfo_answers_for_an_openid_token_only,
    a_user_made_again_under_the_same_name_is_a_new_subject,
    profile_claims_follow_their_scopes,
    jwt_access_tokens_are_signed_and_still_revocable,
);

/// Two instances over one PostgreSQL database: a code from one is exchanged at the
/// other, its ID token verifies with the other's JWKS, userinfo answers on either, and
/// a profile changed through one is what the other tells within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_works_across_two_instances() {
    let Some((a, b)) = common::two_instances().await else {
        return;
    };
    let secret = register_rp(&a).await;
    let dora = json!({"username": "dora", "password": "dora-password", "name": "Dora"});
    let (status, _) = a
        .api("POST", "/t/foo.com/api/v1/users", FOO_ADMIN, Some(dora))
        .await;
    assert_eq!(status, 201);
    let (code, verifier) =
        code_for(&a, ("dora", "dora-password"), "openid profile", Some("n2")).await;
    let tokens = exchange(&b, &secret, &code, &verifier).await;
    let claims = verified(&b, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (&claims["nonce"], &claims["name"]),
        (&json!("n2"), &json!("Dora"))
    );
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = |s: &TestServer| {
        let request = s
            .client
            .get(s.url("/t/foo.com/oauth2/userinfo"))
            .bearer_auth(&access);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(userinfo(&a).await["sub"], claims["sub"]);
    assert_eq!(userinfo(&b).await["name"], "Dora");
    let (status, _) = a
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/dora/profile",
            FOO_ADMIN,
            Some(json!({"name": "Dora the Second"})),
        )
        .await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    loop {
        if userinfo(&b).await["name"] == "Dora the Second" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the other instance told the old name for more than a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
