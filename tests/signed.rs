//! Signed introspection answers (RFC 9701), checked the way a resource server would:
//! with an independent JOSE implementation (`jsonwebtoken`) and only the key it
//! fetched from the tenant's JWKS. Also the keys behind them: one per tenant, rotation
//! with a retire window, several instances, and the master key that seals them.
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
use common::{Backend, TestServer};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JWT: &str = "application/token-introspection+jwt";
const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");

/// A signed introspection answer: (status, content type, body).
async fn signed_answer(
    s: &TestServer,
    tenant: &str,
    caller: (&str, &str),
    token: &str,
) -> (u16, String, String) {
    let response = s
        .client
        .post(s.url(&format!("{tenant}/oauth2/introspect")))
        .basic_auth(caller.0, Some(caller.1))
        .header("Accept", JWT)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// The signed answer, which must be a 200 with the JWT media type.
async fn jwt_for(s: &TestServer, tenant: &str, caller: (&str, &str), token: &str) -> String {
    let (status, content_type, body) = signed_answer(s, tenant, caller, token).await;
    assert_eq!((status, content_type.as_str()), (200, JWT), "{body}");
    body
}

async fn jwks(s: &TestServer, tenant: &str) -> JwkSet {
    let response = s
        .client
        .get(s.url(&format!("{tenant}/oauth2/jwks")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"].to_str().unwrap();
    assert!(cache.contains("max-age="), "{cache}");
    response.json().await.unwrap()
}

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// A client-credentials access token from the token endpoint at `path`.
async fn access_token(s: &TestServer, path: &str, client: (&str, &str)) -> String {
    let answer = s.client_token(path, client, None).await;
    answer["access_token"].as_str().unwrap().to_owned()
}

async fn get_json(s: &TestServer, path: &str) -> Value {
    let response = s.client.get(s.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// The issuer the tenant's metadata names.
async fn issuer(s: &TestServer, tenant: &str) -> String {
    let metadata = get_json(
        s,
        &format!("{tenant}/.well-known/oauth-authorization-server"),
    )
    .await;
    metadata["issuer"].as_str().unwrap().to_owned()
}

/// Verifies `jwt` as a resource server would: the key named by its `kid` from `set`,
/// ES256 only, this issuer and audience. Returns the header and the claims.
fn verify(
    jwt: &str,
    set: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<(jsonwebtoken::Header, Value), jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(jwt)?;
    let kid = header.kid.clone().expect("a kid");
    let jwk = set.find(&kid).expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    let data = jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_jwk(jwk)?, &validation)?;
    Ok((header, data.claims))
}

async fn an_active_answer_verifies_with_the_tenants_jwks(s: TestServer) {
    let token = access_token(&s, "/t/foo.com/oauth2/token", FOO_CLIENT).await;
    let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, &token).await;
    let set = jwks(&s, "/t/foo.com").await;
    let iss = issuer(&s, "/t/foo.com").await;
    let (header, claims) = verify(&jwt, &set, &iss, "admin@foo.com").unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let now = portcullis::service::now();
    assert!(
        (claims["iat"].as_i64().unwrap() - now).abs() <= 5,
        "{claims}"
    );
    assert_eq!(claims.as_object().unwrap().len(), 4, "{claims}");
    // Exactly what the JSON answer says.
    let (status, plain) = s
        .introspect("/t/foo.com/oauth2/introspect", FOO_ADMIN, &token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(claims["token_introspection"], plain);
    assert_eq!(plain["active"], true);

    // A client's answer is addressed to the client: an allowed one, and one that sees
    // only its own tokens.
    let allowed = access_token(
        &s,
        "/t/foo.com/oauth2/token",
        ("foo-allowed", "allowed-secret"),
    )
    .await;
    let jwt = jwt_for(&s, "/t/foo.com", ("foo-allowed", "allowed-secret"), &token).await;
    let (_, claims) = verify(&jwt, &set, &iss, "foo-allowed").unwrap();
    assert_eq!(claims["token_introspection"]["client_id"], "foo-client");
    let jwt = jwt_for(&s, "/t/foo.com", FOO_CLIENT, &token).await;
    let (_, claims) = verify(&jwt, &set, &iss, "foo-client").unwrap();
    assert_eq!(claims["token_introspection"]["active"], true);
    let jwt = jwt_for(&s, "/t/foo.com", FOO_CLIENT, &allowed).await;
    let (_, claims) = verify(&jwt, &set, &iss, "foo-client").unwrap();
    assert_eq!(claims["token_introspection"], json!({"active": false}));

    // The super tenant signs too, as its own issuer, with its own key.
    let super_token = access_token(&s, "/oauth2/token", ("super-client", "super-secret")).await;
    let jwt = jwt_for(&s, "", common::super_admin(), &super_token).await;
    let (_, claims) = verify(
        &jwt,
        &jwks(&s, "").await,
        &issuer(&s, "").await,
        "admin@carbon.super",
    )
    .unwrap();
    assert_eq!(claims["token_introspection"]["active"], true);
}

async fn inactive_and_foreign_tokens_are_signed_as_active_false_alone(s: TestServer) {
    let foo_keys = jwks(&s, "/t/foo.com").await;
    let bar_keys = jwks(&s, "/t/bar.com").await;
    let iss = issuer(&s, "/t/foo.com").await;
    let bar_token = access_token(&s, "/t/bar.com/oauth2/token", ("bar-client", "bar-secret")).await;
    let revoked = access_token(&s, "/t/foo.com/oauth2/token", FOO_CLIENT).await;
    let response = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", &revoked)],
        )
        .await;
    assert_eq!(response.status(), 200);
    for token in ["no-such-token", bar_token.as_str(), revoked.as_str()] {
        let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, token).await;
        let (header, claims) = verify(&jwt, &foo_keys, &iss, "admin@foo.com").unwrap();
        assert_eq!(claims["token_introspection"], json!({"active": false}));
        // Signed by foo.com, whose key bar.com's JWKS does not hold.
        assert!(bar_keys.find(header.kid.as_deref().unwrap()).is_none());
    }
    // bar.com's own answer for its token verifies only with bar.com's keys.
    let jwt = jwt_for(
        &s,
        "/t/bar.com",
        ("admin@bar.com", "bar-admin-password"),
        &bar_token,
    )
    .await;
    let bar_iss = issuer(&s, "/t/bar.com").await;
    let (_, claims) = verify(&jwt, &bar_keys, &bar_iss, "admin@bar.com").unwrap();
    assert_eq!(claims["token_introspection"]["active"], true);
}

async fn each_tenant_publishes_only_its_own_well_formed_keys(s: TestServer) {
    let mut seen = Vec::new();
    for tenant in ["", "/t/foo.com", "/t/bar.com", "/t/short.com"] {
        let raw = get_json(&s, &format!("{tenant}/oauth2/jwks")).await;
        let keys = raw["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{raw}");
        let key = &keys[0];
        for (member, value) in [
            ("kty", "EC"),
            ("crv", "P-256"),
            ("use", "sig"),
            ("alg", "ES256"),
        ] {
            assert_eq!(key[member], value, "{raw}");
        }
        assert!(
            key.get("d").is_none(),
            "a private member was published: {raw}"
        );
        // The kid is the RFC 7638 thumbprint of the key's required members.
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            key["x"].as_str().unwrap(),
            key["y"].as_str().unwrap()
        );
        let thumbprint = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(canonical));
        assert_eq!(key["kid"], thumbprint);
        seen.push(thumbprint);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "tenants share a key");

    let metadata = get_json(&s, "/.well-known/oauth-authorization-server/t/foo.com").await;
    assert_eq!(
        metadata["jwks_uri"],
        format!("{}/oauth2/jwks", metadata["issuer"].as_str().unwrap())
    );
    assert_eq!(
        metadata["introspection_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let unknown = s
        .client
        .get(s.url("/t/nope.org/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let post = s.client.post(s.url("/oauth2/jwks")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    let head = s
        .client
        .head(s.url("/t/foo.com/oauth2/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);

    // A tenant created through the API has its key from the start.
    let (status, _) = s
        .api(
            "POST",
            "/api/v1/tenants",
            common::super_admin(),
            Some(json!({"domain": "new.org", "admin": {"username": "boss", "password": "boss-password"}})),
        )
        .await;
    assert_eq!(status, 201);
    let new = jwks(&s, "/t/new.org").await;
    assert_eq!(new.keys.len(), 1);
    assert!(!seen.contains(&kids(&new)[0]));
}

async fn errors_stay_json_and_without_accept_nothing_changes(s: TestServer) {
    let token = access_token(&s, "/t/foo.com/oauth2/token", FOO_CLIENT).await;
    for (caller, expected) in [
        (("admin@foo.com", "wrong-password"), 401),
        (("alice@foo.com", "alice-password"), 403),
    ] {
        let (status, content_type, body) = signed_answer(&s, "/t/foo.com", caller, &token).await;
        assert_eq!(
            (status, content_type.as_str()),
            (expected, "application/json"),
            "{body}"
        );
        let _: Value = serde_json::from_str(&body).unwrap();
    }
    let response = s
        .client
        .post(s.url("/t/foo.com/oauth2/introspect"))
        .basic_auth(FOO_ADMIN.0, Some(FOO_ADMIN.1))
        .header("Accept", JWT)
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/json");
    for accept in [
        None,
        Some("application/json"),
        Some("*/*"),
        Some("application/token-introspection+jwt;q=0"),
    ] {
        let mut request = s
            .client
            .post(s.url("/t/foo.com/oauth2/introspect"))
            .basic_auth(FOO_ADMIN.0, Some(FOO_ADMIN.1))
            .form(&[("token", &token)]);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{accept:?}"
        );
        assert_eq!(response.headers()["vary"], "accept");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["active"], true);
    }
}

async fn a_tampered_answer_fails_verification(s: TestServer) {
    let token = access_token(&s, "/t/foo.com/oauth2/token", FOO_CLIENT).await;
    let set = jwks(&s, "/t/foo.com").await;
    let iss = issuer(&s, "/t/foo.com").await;
    let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, "no-such-token").await;
    verify(&jwt, &set, &iss, "admin@foo.com").unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    // The claims rewritten to say active, with the original signature.
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["token_introspection"] = json!({"active": true, "client_id": "foo-client"});
    let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    assert!(verify(&forged, &set, &iss, "admin@foo.com").is_err());
    // One bit of the signature changed.
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(signature)
    );
    assert!(verify(&flipped, &set, &iss, "admin@foo.com").is_err());
    // Another tenant's answer, presented as foo.com's: bar.com's key is not foo.com's.
    let bar_jwt = jwt_for(
        &s,
        "/t/bar.com",
        ("admin@bar.com", "bar-admin-password"),
        &token,
    )
    .await;
    let bar_kid = jsonwebtoken::decode_header(&bar_jwt).unwrap().kid.unwrap();
    assert!(set.find(&bar_kid).is_none());
}

async fn rotation_signs_with_the_new_key_and_keeps_the_old_one_published(s: TestServer) {
    let token = access_token(&s, "/t/foo.com/oauth2/token", FOO_CLIENT).await;
    let iss = issuer(&s, "/t/foo.com").await;
    let before = jwt_for(&s, "/t/foo.com", FOO_ADMIN, &token).await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();

    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/keys/rotate",
            ("alice@foo.com", "alice-password"),
            None,
        )
        .await;
    assert_eq!(status, 403, "alice holds no key management permission");
    let (status, rotated) = s
        .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["state"], "active");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    let after = jwt_for(&s, "/t/foo.com", FOO_ADMIN, &token).await;
    let set = jwks(&s, "/t/foo.com").await;
    assert_eq!(kids(&set), [new_kid.clone(), old_kid.clone()]);
    let (header, _) = verify(&after, &set, &iss, "admin@foo.com").unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    // An answer signed before the rotation still verifies during the retire window.
    verify(&before, &set, &iss, "admin@foo.com").unwrap();

    let (status, listed) = s
        .api("GET", "/t/foo.com/api/v1/keys", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [(new_kid.as_str(), "active"), (old_kid.as_str(), "retiring")]
    );
    let retired_until = keys[1]["published_until"].as_i64().unwrap();
    let now = portcullis::service::now();
    assert!((retired_until - (now + 604_800)).abs() <= 5, "{listed}");
    assert!(keys.iter().all(|k| k["created_at"].is_i64()));

    let (_, audit) = s
        .api("GET", "/t/foo.com/api/v1/audit?limit=5", FOO_ADMIN, None)
        .await;
    let rotation = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "key.rotate")
        .expect("the rotation is audited");
    assert_eq!(
        (rotation["actor"].as_str(), rotation["target"].as_str()),
        (Some("admin@foo.com"), Some(new_kid.as_str()))
    );
    // Other tenants keep their keys.
    assert_eq!(jwks(&s, "/t/bar.com").await.keys.len(), 1);

    // Rotating in a loop keeps at most three retiring keys: the oldest drop out.
    let mut newest = Vec::new();
    for _ in 0..6 {
        let (status, rotated) = s
            .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
            .await;
        assert_eq!(status, 200, "{rotated}");
        newest.insert(0, rotated["kid"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kids(&jwks(&s, "/t/foo.com").await),
        newest[..4],
        "the signing key and the three newest retiring keys"
    );
}

async fn a_retired_key_leaves_the_jwks_after_its_window(backend: Backend) {
    // Times are whole seconds: a window of 1 could close between the rotation and the
    // next read; 3 leaves at least 2.
    let s = TestServer::start_with(backend, common::default_tenant_files(), |c| {
        c.keys.retire_after_seconds = 3;
    })
    .await;
    let old = kids(&jwks(&s, "/t/foo.com").await);
    let (status, rotated) = s
        .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        kids(&jwks(&s, "/t/foo.com").await),
        [new_kid.clone(), old[0].clone()]
    );
    let started = Instant::now();
    while kids(&jwks(&s, "/t/foo.com").await).len() > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the retired key stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kids(&jwks(&s, "/t/foo.com").await), [new_kid]);
    let (_, listed) = s
        .api("GET", "/t/foo.com/api/v1/keys", FOO_ADMIN, None)
        .await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
}

mod retire_window {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_retired_key_leaves_the_jwks_after_its_window(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if super::common::postgres_url().is_some() {
            super::a_retired_key_leaves_the_jwks_after_its_window(super::Backend::Postgres).await;
        }
    }
}

/// A wrong master key, or none, while the database holds sealed keys: the start stops
/// and says why, without printing a key.
async fn a_wrong_or_missing_master_key_stops_the_start(s: TestServer) {
    let config = std::sync::Arc::new(s.gateway.config().clone());
    let path = s.database.master_key.clone();
    let original = std::fs::read_to_string(&path).unwrap();
    let database = s.database.clone();
    s.stop().await;

    let another_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    std::fs::write(&path, format!("{another_key}\n")).unwrap();
    let wrong = portcullis::prepare(config.clone(), None)
        .await
        .err()
        .expect("a wrong key stops the start");
    let message = format!("{wrong:#}");
    assert!(!message.contains(&another_key), "{message}");
    assert!(
        message.contains("does not open") && message.contains(&path.display().to_string()),
        "{message}"
    );

    std::fs::remove_file(&path).unwrap();
    let missing = portcullis::prepare(config.clone(), None)
        .await
        .err()
        .expect("a missing key stops the start");
    let message = format!("{missing:#}");
    assert!(
        message.contains("missing") && message.contains("restore"),
        "{message}"
    );
    assert!(!path.exists(), "a new master key was made over sealed keys");

    // The right key back, but readable by every user: the start names the fix.
    std::fs::write(&path, &original).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = portcullis::prepare(config.clone(), None)
            .await
            .err()
            .expect("a key every user may read stops the start");
        let message = format!("{exposed:#}");
        let fix = format!("chmod 600 {}", path.display());
        assert!(message.contains(&fix), "{message}");
        assert!(!message.contains(original.trim()), "{message}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // With the right key and mode back, it starts and signs as before.
    let s = TestServer::start_on(database, common::default_tenant_files(), |_| {}).await;
    let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, "no-such-token").await;
    verify(
        &jwt,
        &jwks(&s, "/t/foo.com").await,
        &issuer(&s, "/t/foo.com").await,
        "admin@foo.com",
    )
    .unwrap();
}

on_both_backends!(crate::common::TestServer::for_backend;
    an_active_answer_verifies_with_the_tenants_jwks,
    inactive_and_foreign_tokens_are_signed_as_active_false_alone,
    each_tenant_publishes_only_its_own_well_formed_keys,
    errors_stay_json_and_without_accept_nothing_changes,
    a_tampered_answer_fails_verification,
    rotation_signs_with_the_new_key_and_keeps_the_old_one_published,
    a_wrong_or_missing_master_key_stops_the_start,
);

/// Two instances on one PostgreSQL database: a rotation on A, and B's very next
/// answers carry the new key (through the change notifications).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_signs_with_the_new_key_right_after_a_rotation() {
    let Some((a, b)) = common::two_instances().await else {
        return;
    };
    common::settled(&b).await;
    let iss = issuer(&b, "/t/foo.com").await;
    // B has the key cached before the rotation.
    let before = jwt_for(&b, "/t/foo.com", FOO_ADMIN, "x").await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    for round in 0..3 {
        let (status, rotated) = a
            .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
            .await;
        assert_eq!(status, 200);
        let new_kid = rotated["kid"].as_str().unwrap().to_owned();
        let committed = Instant::now();
        loop {
            let jwt = jwt_for(&b, "/t/foo.com", FOO_ADMIN, "x").await;
            let (header, _) =
                verify(&jwt, &jwks(&b, "/t/foo.com").await, &iss, "admin@foo.com").unwrap();
            if header.kid.as_deref() == Some(new_kid.as_str()) {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(1),
                "round {round}: B still signs with the old key"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!(
            "round {round}: B signed with the new key {:?} after the rotation",
            committed.elapsed()
        );
    }
    // Every retired key is still in B's JWKS, so the first answer still verifies.
    let set = jwks(&b, "/t/foo.com").await;
    assert_eq!(set.keys.len(), 4);
    verify(&before, &set, &iss, "admin@foo.com").unwrap();
    assert!(kids(&set).contains(&old_kid));
}

/// A lost channel never leaves B signing with a retired key: a rotation on A while
/// B's listener is being replaced is in B's very next answer. (That an instance that
/// cannot hear reads the keys for every signature is the keyring's unit test: B
/// reconnects too fast here to stay deaf.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_cannot_hear_the_others_signs_with_the_newest_key() {
    let Some((a, b)) = common::two_instances().await else {
        return;
    };
    common::settled(&b).await;
    let before = jwt_for(&b, "/t/foo.com", FOO_ADMIN, "x").await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    common::cut_off(&a, &b).await;
    let (status, rotated) = a
        .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    // B either still cannot hear (and reads the keys) or has just emptied its caches
    // to hear again: either way its next answer carries the new key.
    let after = jwt_for(&b, "/t/foo.com", FOO_ADMIN, "x").await;
    let kid = jsonwebtoken::decode_header(&after).unwrap().kid.unwrap();
    assert_eq!(kid, rotated["kid"].as_str().unwrap());
    assert_ne!(kid, old_kid);
    let set = jwks(&b, "/t/foo.com").await;
    verify(
        &after,
        &set,
        &issuer(&b, "/t/foo.com").await,
        "admin@foo.com",
    )
    .unwrap();
    verify(
        &before,
        &set,
        &issuer(&b, "/t/foo.com").await,
        "admin@foo.com",
    )
    .unwrap();
}

/// The master key never reaches the database: neither the SQLite file nor its WAL
/// holds it, as bytes or as the file's text, while serving or after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_is_not_in_the_database() {
    let s = TestServer::start(Backend::Sqlite).await;
    let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, "x").await;
    assert!(!jwt.is_empty());
    let (status, _) = s
        .api("POST", "/t/foo.com/api/v1/keys/rotate", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 200);
    let text = std::fs::read_to_string(&s.database.master_key).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    assert_eq!(raw.len(), 32);
    let database = s.database.clone();
    assert_nowhere_in(database.dir.path(), &[&raw, text.trim().as_bytes()]);
    s.stop().await;
    assert_nowhere_in(database.dir.path(), &[&raw, text.trim().as_bytes()]);
}

/// Asserts that no database file in `dir` (the file, its WAL) holds any of `secrets`.
fn assert_nowhere_in(dir: &std::path::Path, secrets: &[&[u8]]) {
    let mut read = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().contains("portcullis.db") {
            continue;
        }
        // The WAL and shared-memory files go when the last connection closes.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        read += 1;
        for secret in secrets {
            assert!(
                !contains(&bytes, secret),
                "{} holds the master key",
                path.display()
            );
        }
    }
    assert!(read >= 1, "no database file in {}", dir.display());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A tenant with no key at its first signature (made by an instance older than
/// signing keys, during a rolling upgrade) gets one then, and signs with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_key_gets_one_at_its_first_signature() {
    let s = TestServer::start(Backend::Sqlite).await;
    let foo = s.gateway.tenant_for_request(Some("foo.com")).await.unwrap();
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&s.database.url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM signing_keys WHERE tenant_id = $1")
        .bind(foo.id.get())
        .execute(&mut db)
        .await
        .unwrap();
    s.gateway
        .apply_notice(&portcullis::store::Notice::ForgetTenant(foo.id))
        .await
        .unwrap();
    let jwt = jwt_for(&s, "/t/foo.com", FOO_ADMIN, "x").await;
    let set = jwks(&s, "/t/foo.com").await;
    assert_eq!(set.keys.len(), 1);
    verify(&jwt, &set, &issuer(&s, "/t/foo.com").await, "admin@foo.com").unwrap();
    let stored = s.gateway.store().signing_keys(foo.id, 0).await.unwrap();
    assert_eq!(stored.len(), 1);
}
