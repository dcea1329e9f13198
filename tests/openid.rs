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
use common::flow::{open, open_in, pkce, query_param, submit, submit_in, Jar, Page};
use common::{encode_form, TestServer};
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
    register_client(s, RP, RP_CALLBACK).await
}

/// Registers the relying party `client_id` in foo.com, as [`register_rp`] does.
async fn register_client(s: &TestServer, client_id: &str, callback: &str) -> String {
    let client = json!({
        "client_id": client_id,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [callback],
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
    exchange_as(s, (RP, secret), RP_CALLBACK, code, verifier).await
}

/// The client `(id, secret)`, whose redirect URI is `callback`, exchanges `code`.
async fn exchange_as(
    s: &TestServer,
    client: (&str, &str),
    callback: &str,
    code: &str,
    verifier: &str,
) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", callback),
        ("code_verifier", verifier),
    ];
    let r = s
        .post_form("/t/foo.com/oauth2/token", Some(client), &form)
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
            ("end_session_endpoint", "/oauth2/logout"),
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

    // Request objects and registration in the request: each refused by its own name
    // (Core §3.1.2.6), at the redirect URI.
    for (parameter, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
        ("registration", "registration_not_supported"),
    ] {
        let (_, challenge) = pkce();
        let page = ask(
            &s,
            &mut Jar::default(),
            (RP, RP_CALLBACK),
            &challenge,
            &[(parameter, "eyJ.e30.x")],
        )
        .await;
        assert_eq!(met(&page).unwrap().1.as_deref(), Some(error), "{parameter}");
    }

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

// ---- single sign-on sessions and logout --------------------------------------------

/// foo.com's single sign-on cookie.
const SESSION: &str = "__Host-portcullis_session.foo.com";
const RP2: &str = "rp2";
const RP2_CALLBACK: &str = "https://rp2.example/back";

/// Asks foo.com's authorization endpoint for a code for `client` (whose redirect URI
/// is `callback`), as a browser holding `jar`, with `extra` parameters.
async fn ask(
    s: &TestServer,
    jar: &mut Jar,
    client: (&str, &str),
    challenge: &str,
    extra: &[(&str, &str)],
) -> Page {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client.0),
        ("redirect_uri", client.1),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    query.extend_from_slice(extra);
    open_in(s, "/t/foo.com", &query, jar).await
}

/// How the endpoint met a request: a code or an error at the redirect URI (`Ok`), or
/// the sign-in page (`Err`).
fn met(page: &Page) -> Result<(Option<String>, Option<String>), ()> {
    if page.status == 200 && page.html.contains("name=\"password\"") {
        return Err(());
    }
    assert_eq!(page.status, 302, "{}", page.html);
    let location = page.headers["location"].to_str().unwrap();
    Ok((
        query_param(location, "code"),
        query_param(location, "error"),
    ))
}

/// Whether the browser holding `jar` is signed in to foo.com: `prompt=none` gets a code.
async fn in_session(s: &TestServer, jar: &mut Jar) -> bool {
    let (_, challenge) = pkce();
    let page = ask(s, jar, (RP, RP_CALLBACK), &challenge, &[("prompt", "none")]).await;
    match met(&page).expect("prompt=none never shows the page") {
        (Some(_), None) => true,
        (None, Some(error)) => {
            assert_eq!(error, "login_required");
            false
        }
        other => panic!("{other:?}"),
    }
}

/// Signs `user` in through `rp` on the sign-in page as the browser holding `jar`, and
/// exchanges the code: answers the ID token's verified claims and the token response.
async fn sign_in_browser(
    s: &TestServer,
    jar: &mut Jar,
    secret: &str,
    user: (&str, &str),
    extra: &[(&str, &str)],
) -> (Value, Value) {
    let (verifier, challenge) = pkce();
    let page = ask(s, jar, (RP, RP_CALLBACK), &challenge, extra).await;
    assert!(met(&page).is_err(), "the sign-in page");
    let (status, location, body) =
        submit_in(s, "/t/foo.com", &page, user.0, user.1, "approve", jar).await;
    assert_eq!(status, 303, "{body}");
    let code = query_param(&location.unwrap(), "code").unwrap();
    let tokens = exchange(s, secret, &code, &verifier).await;
    let claims = verified(s, tokens["id_token"].as_str().unwrap()).await;
    (claims, tokens)
}

async fn a_session_signs_a_second_application_in_without_a_password(s: TestServer) {
    let secret = register_rp(&s).await;
    let secret2 = register_client(&s, RP2, RP2_CALLBACK).await;
    let mut jar = Jar::default();
    assert!(!in_session(&s, &mut jar).await, "no session yet");
    let (first, _) = sign_in_browser(&s, &mut jar, &secret, ("alice", "alice-password"), &[]).await;
    let cookie = jar
        .set_lines
        .iter()
        .find(|line| line.starts_with(&format!("{SESSION}=")))
        .expect("a session cookie")
        .clone();
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Domain") && !cookie.contains("Max-Age"),
        "{cookie}"
    );
    let sid = first["sid"].as_str().expect("a sid").to_owned();

    // The second application gets its code at once, for the same sign-in.
    let (verifier, challenge) = pkce();
    let page = ask(
        &s,
        &mut jar,
        (RP2, RP2_CALLBACK),
        &challenge,
        &[("nonce", "n-2")],
    )
    .await;
    let (code, _) = met(&page).expect("no sign-in page");
    let tokens = exchange_as(&s, (RP2, &secret2), RP2_CALLBACK, &code.unwrap(), &verifier).await;
    let second = verified_for(&s, tokens["id_token"].as_str().unwrap(), RP2).await;
    assert_eq!(
        (
            &second["sub"],
            &second["sid"],
            &second["auth_time"],
            &second["nonce"]
        ),
        (
            &first["sub"],
            &first["sid"],
            &first["auth_time"],
            &json!("n-2")
        )
    );

    // prompt and max_age decide when the session's sign-in serves.
    for (extra, reused) in [
        (vec![("prompt", "none")], true),
        (vec![("prompt", "consent")], true),
        (vec![("max_age", "3600")], true),
        (vec![("prompt", "login")], false),
        (vec![("prompt", "select_account")], false),
        (vec![("max_age", "0")], false),
    ] {
        let (_, challenge) = pkce();
        let page = ask(&s, &mut jar, (RP, RP_CALLBACK), &challenge, &extra).await;
        assert_eq!(met(&page).is_ok(), reused, "{extra:?}");
    }
    let mut stranger = Jar::default();
    assert!(!in_session(&s, &mut stranger).await);

    // prompt=login: the password again, a later auth_time, the same session, a new
    // cookie; the old cookie is worth nothing.
    let old = jar.get(SESSION).unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (again, _) = sign_in_browser(
        &s,
        &mut jar,
        &secret,
        ("alice", "alice-password"),
        &[("prompt", "login")],
    )
    .await;
    assert_eq!(again["sid"], sid.as_str());
    assert!(again["auth_time"].as_i64() > first["auth_time"].as_i64());
    assert_ne!(jar.get(SESSION), Some(old.as_str()));
    let mut stale = Jar::default();
    stale.set(SESSION, &old);
    assert!(
        !in_session(&s, &mut stale).await,
        "the cookie before a sign-in"
    );

    // An id_token_hint names the user the client expects: the session serves that user
    // only, and a hint this tenant did not sign is refused.
    let (_, alice_tokens) = sign_in_browser(
        &s,
        &mut Jar::default(),
        &secret,
        ("alice", "alice-password"),
        &[],
    )
    .await;
    let alice_hint = alice_tokens["id_token"].as_str().unwrap();
    s.api_user("/t/foo.com", FOO_ADMIN, "carol", "carol-password", &[])
        .await;
    let (_, carol_tokens) = sign_in_browser(
        &s,
        &mut Jar::default(),
        &secret,
        ("carol", "carol-password"),
        &[],
    )
    .await;
    let carol_hint = carol_tokens["id_token"].as_str().unwrap();
    let forged = format!("{alice_hint}x");
    for (hint, answer) in [
        (alice_hint, (true, None)),
        (carol_hint, (false, Some("login_required"))),
        (forged.as_str(), (false, Some("invalid_request"))),
    ] {
        let (_, challenge) = pkce();
        let extra = [("prompt", "none"), ("id_token_hint", hint)];
        let page = ask(&s, &mut jar, (RP, RP_CALLBACK), &challenge, &extra).await;
        let (code, error) = met(&page).unwrap();
        assert_eq!((code.is_some(), error.as_deref()), answer);
    }

    // Another user signing in on the same browser takes it over, as a new session.
    let (carol, _) = sign_in_browser(
        &s,
        &mut jar,
        &secret,
        ("carol", "carol-password"),
        &[("prompt", "login")],
    )
    .await;
    assert_ne!(carol["sid"], sid.as_str());
    assert_ne!(carol["sub"], first["sub"]);

    // A session is its tenant's only: under bar.com's name it is no session there.
    let mut elsewhere = Jar::default();
    elsewhere.set(
        "__Host-portcullis_session.bar.com",
        jar.get(SESSION).unwrap(),
    );
    let (status, _) = s
        .api(
            "POST",
            "/t/bar.com/api/v1/clients",
            ("admin@bar.com", "bar-admin-password"),
            Some(
                json!({"client_id": "bar-rp", "grant_types": ["authorization_code"],
                        "redirect_uris": [RP_CALLBACK]}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (_, challenge) = pkce();
    let query = [
        ("response_type", "code"),
        ("client_id", "bar-rp"),
        ("redirect_uri", RP_CALLBACK),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "none"),
    ];
    let page = open_in(&s, "/t/bar.com", &query, &mut elsewhere).await;
    assert_eq!(
        met(&page).unwrap().1.as_deref(),
        Some("login_required"),
        "foo.com's session is not bar.com's"
    );
}

/// GETs foo.com's end-session endpoint with `query` as the browser holding `jar`:
/// answers the status, the `Location` and the page.
async fn logout(s: &TestServer, jar: &mut Jar, query: &[(&str, &str)]) -> (u16, String, String) {
    let url = s.url(&format!("/t/foo.com/oauth2/logout?{}", encode_form(query)));
    let r = s
        .client
        .get(url)
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    answered(r, jar).await
}

/// POSTs `form` to foo.com's end-session endpoint as the browser holding `jar`.
async fn logout_post(
    s: &TestServer,
    jar: &mut Jar,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let r = s
        .client
        .post(s.url("/t/foo.com/oauth2/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", jar.header())
        .body(encode_form(form))
        .send()
        .await
        .unwrap();
    answered(r, jar).await
}

async fn answered(r: reqwest::Response, jar: &mut Jar) -> (u16, String, String) {
    jar.take(r.headers());
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), location, r.text().await.unwrap())
}

async fn a_logout_with_a_hint_ends_the_session_and_returns_to_the_application(s: TestServer) {
    let secret = register_rp(&s).await;
    let mut jar = Jar::default();
    let (_, tokens) =
        sign_in_browser(&s, &mut jar, &secret, ("alice", "alice-password"), &[]).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let mut bent = hint.to_owned();
    bent.push('A');

    // A request that fails a check ends nothing and sends the browser nowhere.
    for (query, why) in [
        (
            vec![("id_token_hint", bent.as_str())],
            "not an ID token of this tenant",
        ),
        (
            vec![("id_token_hint", "x.y.z")],
            "not an ID token of this tenant",
        ),
        (
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            "not registered",
        ),
        (
            vec![("post_logout_redirect_uri", RP_CALLBACK)],
            "needs an id_token_hint or a client_id",
        ),
        (
            vec![("id_token_hint", hint), ("client_id", RP2)],
            "not the application",
        ),
        (
            vec![
                ("client_id", "nobody-knows"),
                ("post_logout_redirect_uri", RP_CALLBACK),
            ],
            "not known here",
        ),
    ] {
        let (status, location, html) = logout(&s, &mut jar, &query).await;
        assert_eq!((status, location.as_str()), (400, ""), "{query:?}");
        assert!(html.contains(why), "{query:?}: {html}");
    }
    assert!(in_session(&s, &mut jar).await);
    // foo.com's ID token is no hint at bar.com.
    let url = s.url(&format!(
        "/t/bar.com/oauth2/logout?{}",
        encode_form(&[("id_token_hint", hint)])
    ));
    let r = s.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // The hint names this session: it ends at once, and the browser goes back with
    // its state. The server ended it, not only the browser's cookie.
    let kept = jar.clone();
    let query = [
        ("id_token_hint", hint),
        ("post_logout_redirect_uri", RP_CALLBACK),
        ("state", "bye"),
    ];
    let (status, location, _) = logout(&s, &mut jar, &query).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "https://rp.example/callback?state=bye")
    );
    assert_eq!(jar.get(SESSION), None, "the cookie is cleared");
    assert!(!in_session(&s, &mut kept.clone()).await);
    let (_, log) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/audit?action=user.sign_out",
            FOO_ADMIN,
            None,
        )
        .await;
    assert_eq!(log["events"][0]["target"], "alice", "{log}");

    // Signed out already: nothing to end, a page that says so.
    let (status, _, html) = logout(&s, &mut jar, &[]).await;
    assert_eq!(status, 200);
    assert!(html.contains("You have signed out"), "{html}");
}

async fn a_logout_without_a_hint_asks_the_user_first(s: TestServer) {
    let secret = register_rp(&s).await;
    let mut jar = Jar::default();
    sign_in_browser(&s, &mut jar, &secret, ("alice", "alice-password"), &[]).await;
    let query = [
        ("client_id", RP),
        ("post_logout_redirect_uri", RP_CALLBACK),
        ("state", "s1"),
    ];
    let (status, _, html) = logout(&s, &mut jar, &query).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Sign out?") && html.contains("alice"),
        "{html}"
    );
    let csrf = common::html::field_value(&html, "csrf");
    let mut form = query.to_vec();
    form.push(("action", "sign_out"));

    // Another site's form has no CSRF token: the question again, and nothing ends.
    let (status, _, html) = logout_post(&s, &mut jar, &form).await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign out?"), "{html}");
    assert!(in_session(&s, &mut jar).await);
    // "Stay signed in" changes nothing.
    let mut stay = query.to_vec();
    stay.extend([("csrf", csrf.as_str()), ("action", "stay")]);
    let (status, _, html) = logout_post(&s, &mut jar, &stay).await;
    assert_eq!(status, 200);
    assert!(html.contains("still signed in"), "{html}");
    assert!(in_session(&s, &mut jar).await);
    // "Sign out" ends it and goes back to the application.
    form.push(("csrf", csrf.as_str()));
    let (status, location, _) = logout_post(&s, &mut jar, &form).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "https://rp.example/callback?state=s1")
    );
    assert!(!in_session(&s, &mut jar).await);
}

async fn a_change_to_the_user_ends_their_sessions(s: TestServer) {
    let secret = register_rp(&s).await;
    let users = "/t/foo.com/api/v1/users";
    for change in ["disable", "password", "delete", "lock"] {
        let name = format!("u-{change}");
        s.api_user("/t/foo.com", FOO_ADMIN, &name, "u-password", &[])
            .await;
        let mut jar = Jar::default();
        sign_in_browser(&s, &mut jar, &secret, (&name, "u-password"), &[]).await;
        assert!(in_session(&s, &mut jar).await, "{change}");
        match change {
            "disable" => {
                let path = format!("{users}/{name}/enabled");
                let body = Some(json!({"enabled": false}));
                assert_eq!(s.api("PUT", &path, FOO_ADMIN, body).await.0, 200);
            }
            "password" => {
                let path = format!("{users}/{name}/password");
                let body = Some(json!({"password": "another-password"}));
                assert_eq!(s.api("PUT", &path, FOO_ADMIN, body).await.0, 204);
            }
            "delete" => {
                let path = format!("{users}/{name}");
                assert_eq!(s.api("DELETE", &path, FOO_ADMIN, None).await.0, 204);
            }
            _ => {
                // Five wrong passwords on the sign-in page lock the user.
                for _ in 0..5 {
                    let (_, challenge) = pkce();
                    let extra = [("prompt", "login")];
                    let page = ask(&s, &mut jar, (RP, RP_CALLBACK), &challenge, &extra).await;
                    let (status, _, _) =
                        submit_in(&s, "/t/foo.com", &page, &name, "wrong", "approve", &mut jar)
                            .await;
                    assert_eq!(status, 200);
                }
            }
        }
        assert!(!in_session(&s, &mut jar).await, "{change} ends the session");
    }
}

on_both_backends!(crate::common::TestServer::for_backend;
    discovery_names_every_endpoint_of_the_tenant,
    an_openid_code_flow_hands_out_a_verifiable_id_token,
    userinfo_answers_for_an_openid_token_only,
    a_user_made_again_under_the_same_name_is_a_new_subject,
    profile_claims_follow_their_scopes,
    jwt_access_tokens_are_signed_and_still_revocable,
    a_session_signs_a_second_application_in_without_a_password,
    a_logout_with_a_hint_ends_the_session_and_returns_to_the_application,
    a_logout_without_a_hint_asks_the_user_first,
    a_change_to_the_user_ends_their_sessions,
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

/// Two instances over one PostgreSQL database: a session started on one signs in on
/// the other; a new password given through one ends it on the other within a second;
/// a logout on one ends a session for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_works_across_two_instances() {
    let Some((a, b)) = common::two_instances().await else {
        return;
    };
    let secret = register_rp(&a).await;
    for name in ["erin", "frank"] {
        a.api_user("/t/foo.com", FOO_ADMIN, name, "u-password", &[])
            .await;
    }
    let mut erin = Jar::default();
    sign_in_browser(&a, &mut erin, &secret, ("erin", "u-password"), &[]).await;
    assert!(
        in_session(&b, &mut erin).await,
        "a session of every instance"
    );
    let (status, _) = a
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/erin/password",
            FOO_ADMIN,
            Some(json!({"password": "another-password"})),
        )
        .await;
    assert_eq!(status, 204);
    let started = std::time::Instant::now();
    while in_session(&b, &mut erin.clone()).await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the other instance kept the session for more than a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let mut frank = Jar::default();
    let (_, tokens) = sign_in_browser(&a, &mut frank, &secret, ("frank", "u-password"), &[]).await;
    let kept = frank.clone();
    let hint = [("id_token_hint", tokens["id_token"].as_str().unwrap())];
    let (status, _, _) = logout(&b, &mut frank, &hint).await;
    assert_eq!(status, 200);
    assert!(!in_session(&a, &mut kept.clone()).await, "ended for both");
}
