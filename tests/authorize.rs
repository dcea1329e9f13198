//! End-to-end: the authorization code flow (RFC 6749 §4.1, RFC 7636) with its sign-in
//! page, against the real TLS server, on SQLite and PostgreSQL.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::flow::{open, pkce, query_param, submit};
use common::TestServer;
use serde_json::{json, Value};

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const SPA_CALLBACK: &str = "https://spa.foo.com/callback";

/// Signs alice in through foo-spa with PKCE and answers (code, verifier).
async fn spa_code(s: &TestServer, prefix: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let page = open(
        s,
        prefix,
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("scope", "read"),
            ("state", "st-1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (status, location, body) =
        submit(s, prefix, &page, "alice", "alice-password", "approve").await;
    assert_eq!(status, 303, "{body}");
    let location = location.unwrap();
    assert!(
        location.starts_with(&format!("{SPA_CALLBACK}?")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    (query_param(&location, "code").unwrap(), verifier)
}

async fn exchange(
    s: &TestServer,
    prefix: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut pairs = vec![("grant_type", "authorization_code")];
    pairs.extend_from_slice(form);
    let r = s
        .post_form(&format!("{prefix}/oauth2/token"), auth, &pairs)
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The rightful exchange of a code by the public client `foo-spa`.
async fn spa_exchange(s: &TestServer, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("client_id", "foo-spa"),
        ("code", code),
        ("redirect_uri", SPA_CALLBACK),
        ("code_verifier", verifier),
    ];
    exchange(s, "/t/foo.com", None, &form).await
}

async fn the_full_flow_with_pkce_issues_tokens_naming_the_user(s: TestServer) {
    let (code, verifier) = spa_code(&s, "/t/foo.com").await;
    let (status, tokens) = spa_exchange(&s, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(tokens["scope"], "read");
    let (_, info) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            FOO_ADMIN,
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice@foo.com");
    assert_eq!(info["client_id"], "foo-spa");
    // The same flow through the super tenant's path: the client's tenant decides.
    let (code, verifier) = spa_code(&s, "").await;
    let (status, _) = exchange(
        &s,
        "",
        None,
        &[
            ("client_id", "foo-spa"),
            ("code", &code),
            ("redirect_uri", SPA_CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200);
}

async fn the_sign_in_page_is_safe_and_says_who_asks(s: TestServer) {
    let (_, challenge) = pkce();
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("scope", "read write"),
            ("state", "<script>alert(1)</script>"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    let h = &page.headers;
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    for attribute in [
        "__Host-portcullis_csrf=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    for text in [
        "foo.com",
        "foo-spa",
        "<li>read</li>",
        "<li>write</li>",
        "<label for=\"username\">",
        "<label for=\"password\">",
    ] {
        assert!(page.html.contains(text), "{text}");
    }
    assert!(!page.html.contains("<script>"), "state must be escaped");
    assert!(page.html.contains("&lt;script&gt;"));
}

async fn a_public_client_must_use_pkce_and_the_right_verifier(s: TestServer) {
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("state", "s"),
        ],
    )
    .await;
    assert_eq!(page.status, 302);
    let location = page.headers["location"].to_str().unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(location, "state").as_deref(), Some("s"));
    assert_eq!(
        query_param(location, "iss").as_deref(),
        Some(format!("{}/t/foo.com", s.gateway.config().server.public_url).as_str())
    );
    // plain is not offered.
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("code_challenge", &"a".repeat(43)),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(
        query_param(page.headers["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );
    // A wrong verifier, or none, gets nothing; the right one still works.
    let (code, verifier) = spa_code(&s, "/t/foo.com").await;
    let (wrong, _) = pkce();
    for form in [vec![("code_verifier", wrong.as_str())], vec![]] {
        let mut f = vec![
            ("client_id", "foo-spa"),
            ("code", code.as_str()),
            ("redirect_uri", SPA_CALLBACK),
        ];
        f.extend(form);
        let (status, body) = exchange(&s, "/t/foo.com", None, &f).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    let (status, _) = spa_exchange(&s, &code, &verifier).await;
    assert_eq!(status, 200);
}

const WEB_CALLBACK: &str = "https://web.foo.com/cb?from=portcullis";

/// A code for the confidential client `foo-web`, signed in as alice.
async fn web_code(s: &TestServer) -> String {
    let page = open(
        s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-web"),
            ("redirect_uri", WEB_CALLBACK),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    let (status, location, _) = submit(
        s,
        "/t/foo.com",
        &page,
        "alice@foo.com",
        "alice-password",
        "approve",
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    // The registered query survives, the code is added.
    assert!(
        location.starts_with(&format!("{WEB_CALLBACK}&code=")),
        "{location}"
    );
    query_param(&location, "code").unwrap()
}

async fn a_confidential_client_authenticates_and_repeats_its_redirect_uri(s: TestServer) {
    let right = ("redirect_uri", WEB_CALLBACK);
    let web = Some(("foo-web", "web-secret"));
    let code = web_code(&s).await;
    let (status, _) = exchange(
        &s,
        "/t/foo.com",
        None,
        &[("client_id", "foo-web"), ("code", &code), right],
    )
    .await;
    assert_eq!(status, 401, "a confidential client must authenticate");
    // Whoever failed to authenticate is not known to be the code's client: the code
    // is spent, and the rightful exchange fails too.
    let (status, _) = exchange(&s, "/t/foo.com", web, &[("code", &code), right]).await;
    assert_eq!(status, 400);
    let code = web_code(&s).await;
    let (status, body) = exchange(&s, "/t/foo.com", web, &[("code", &code), right]).await;
    assert_eq!(status, 200, "{body}");
    // A wrong or missing redirect_uri spends the code (it has leaked): the rightful
    // exchange that follows fails too.
    for wrong in [vec![("redirect_uri", "https://web.foo.com/cb")], vec![]] {
        let code = web_code(&s).await;
        let mut form = vec![("code", code.as_str())];
        form.extend(wrong.clone());
        let (status, body) = exchange(&s, "/t/foo.com", web, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{wrong:?}"
        );
        let (status, _) = exchange(&s, "/t/foo.com", web, &[("code", &code), right]).await;
        assert_eq!(
            status, 400,
            "a code spent by a wrong redirect_uri stays spent"
        );
    }
    // Another client cannot exchange someone else's code, and its attempt spends it.
    let (code, verifier) = spa_code(&s, "/t/foo.com").await;
    let (status, _) = exchange(
        &s,
        "/t/foo.com",
        Some(("foo-web", "web-secret")),
        &[
            ("code", &code),
            ("redirect_uri", SPA_CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = spa_exchange(&s, &code, &verifier).await;
    assert_eq!(
        status, 400,
        "the rightful client's exchange of a leaked code fails"
    );
}

async fn bad_clients_and_redirect_uris_get_a_page_never_a_redirect(s: TestServer) {
    let (_, challenge) = pkce();
    for query in [
        vec![
            ("response_type", "code"),
            ("client_id", "ghost"),
            ("redirect_uri", SPA_CALLBACK),
        ],
        vec![("response_type", "code"), ("redirect_uri", SPA_CALLBACK)],
        vec![
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", "https://evil.example/cb"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
        // Two registered URIs: naming none is not allowed.
        vec![
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
        // A client of another tenant at a tenant's path.
        vec![("response_type", "code"), ("client_id", "bar-client")],
    ] {
        let page = open(&s, "/t/foo.com", &query).await;
        assert_eq!(page.status, 400, "{query:?}");
        assert!(page.headers.get("location").is_none());
        assert!(page.html.contains("Sign-in cannot continue"));
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
}

async fn other_errors_go_back_to_the_client(s: TestServer) {
    let (_, challenge) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("response_type", "token"),
                ("client_id", "foo-spa"),
                ("redirect_uri", SPA_CALLBACK),
            ],
            "unsupported_response_type",
        ),
        (
            vec![("client_id", "foo-spa"), ("redirect_uri", SPA_CALLBACK)],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("client_id", "foo-spa"),
                ("redirect_uri", SPA_CALLBACK),
                ("scope", "read admin"),
            ],
            "invalid_scope",
        ),
        (
            vec![("response_type", "code"), ("client_id", "foo-nocode")],
            "unauthorized_client",
        ),
    ];
    for (mut query, error) in cases {
        query.extend_from_slice(&pkce_params);
        query.push(("state", "keep-me"));
        let page = open(&s, "/t/foo.com", &query).await;
        assert_eq!(page.status, 302, "{error}");
        let location = page.headers["location"].to_str().unwrap();
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some(error),
            "{location}"
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("keep-me"));
        assert!(query_param(location, "error_description").is_some());
    }
    // Cancel on the page is access_denied.
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "c"),
        ],
    )
    .await;
    let (status, location, _) = submit(&s, "/t/foo.com", &page, "", "", "deny").await;
    assert_eq!(status, 302);
    assert_eq!(
        query_param(&location.unwrap(), "error").as_deref(),
        Some("access_denied")
    );
}

async fn a_post_without_the_csrf_token_issues_no_code(s: TestServer) {
    let (_, challenge) = pkce();
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let form = |csrf: &str| {
        common::encode_form(&[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("csrf", csrf),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
    };
    let post = |body: String, cookie: Option<String>| {
        let mut r = s
            .client
            .post(format!("{}/t/foo.com/oauth2/authorize", s.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        r.send()
    };
    let csrf = page.hidden("csrf");
    for (body, cookie) in [
        (form(&csrf), None),                          // no cookie
        (form(""), Some(page.cookie())),              // no field
        (form(&"x".repeat(43)), Some(page.cookie())), // a different value
    ] {
        let r = post(body, cookie).await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
    let r = post(form(&csrf), Some(page.cookie())).await.unwrap();
    assert_eq!(r.status(), 303);
}

async fn wrong_credentials_reshow_the_form_saying_nothing_more(s: TestServer) {
    let (_, challenge) = pkce();
    let page = open(
        &s,
        "/t/foo.com",
        &[
            ("response_type", "code"),
            ("client_id", "foo-spa"),
            ("redirect_uri", SPA_CALLBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let mut bodies = Vec::new();
    // A wrong password, an unknown user, and a user of another tenant.
    for (user, password) in [
        ("alice", "wrong"),
        ("ghost", "alice-password"),
        ("admin@bar.com", "bar-admin-password"),
    ] {
        let (status, location, body) =
            submit(&s, "/t/foo.com", &page, user, password, "approve").await;
        assert_eq!((status, location), (200, None));
        assert!(body.contains("The username or password is wrong."));
        bodies.push(body.replace(user, "USER"));
    }
    let stripped: Vec<String> = bodies
        .iter()
        .map(|b| b.split("name=\"csrf\"").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        stripped[0], stripped[1],
        "the page must not tell an unknown user from a wrong password"
    );
    // The failures count toward the lock: alice's first, and four more.
    for _ in 0..4 {
        submit(&s, "/t/foo.com", &page, "alice", "wrong", "approve").await;
    }
    let (_, alice) = s
        .api("GET", "/t/foo.com/api/v1/users/alice", FOO_ADMIN, None)
        .await;
    assert_eq!(alice["locked"], true, "{alice}");
    let (status, _, body) = submit(
        &s,
        "/t/foo.com",
        &page,
        "alice",
        "alice-password",
        "approve",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("The username or password is wrong."));
}

async fn a_reused_code_revokes_what_it_issued(s: TestServer) {
    let (code, verifier) = spa_code(&s, "/t/foo.com").await;
    let form = [
        ("client_id", "foo-spa"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, tokens) = exchange(&s, "/t/foo.com", None, &form).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, access).await);
    let (status, body) = exchange(&s, "/t/foo.com", None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(!s.is_active("/t/foo.com", FOO_ADMIN, access).await);
    assert!(
        !s.is_active(
            "/t/foo.com",
            FOO_ADMIN,
            tokens["refresh_token"].as_str().unwrap()
        )
        .await
    );
    let (_, info) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/tokens/lookup",
            FOO_ADMIN,
            Some(json!({"token": access})),
        )
        .await;
    assert_eq!(
        (info["state"].as_str(), info["state_reason"].as_str()),
        (Some("REVOKED"), Some("code_reuse"))
    );
    let (_, code_info) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/tokens/lookup",
            FOO_ADMIN,
            Some(json!({"token": code})),
        )
        .await;
    assert_eq!(
        (code_info["kind"].as_str(), code_info["state"].as_str()),
        (Some("authorization_code"), Some("INACTIVE"))
    );
    assert_eq!(code_info["state_reason"], "exchanged");
}

async fn pkce_is_required_of_a_confidential_client_by_default(s: TestServer) {
    let (status, created) = s.api("POST", "/t/short.com/api/v1/clients", ("admin@short.com", "short-admin-password"),
        Some(json!({"client_id": "short-strict", "grant_types": ["authorization_code"], "redirect_uris": ["https://short.example/cb"]}))).await;
    assert_eq!(
        (status, created["require_pkce"].as_bool()),
        (201, Some(true))
    );
    let page = open(
        &s,
        "/t/short.com",
        &[("response_type", "code"), ("client_id", "short-strict")],
    )
    .await;
    assert_eq!(page.status, 302);
    let location = page.headers["location"].to_str().unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("invalid_request")
    );
    let (_, challenge) = pkce();
    let page = open(
        &s,
        "/t/short.com",
        &[
            ("response_type", "code"),
            ("client_id", "short-strict"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    // A public client cannot be exempted.
    let (status, body) = s.api("POST", "/t/short.com/api/v1/clients", ("admin@short.com", "short-admin-password"),
        Some(json!({"public": true, "grant_types": ["authorization_code"], "redirect_uris": ["https://short.example/cb"], "require_pkce": false}))).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("require_pkce"))
    );
}

async fn parallel_sign_in_guesses_lock_the_user(s: TestServer) {
    let s = std::sync::Arc::new(s);
    let query = [
        ("response_type", "code"),
        ("client_id", "foo-web"),
        ("redirect_uri", "https://web.foo.com/cb?from=portcullis"),
    ];
    let mut pages = Vec::new();
    for _ in 0..20 {
        pages.push(open(&s, "/t/foo.com", &query).await);
    }
    let guesses: Vec<_> = pages
        .into_iter()
        .enumerate()
        .map(|(i, page)| {
            let s = s.clone();
            tokio::spawn(async move {
                submit(
                    &s,
                    "/t/foo.com",
                    &page,
                    "alice",
                    &format!("wrong-{i}"),
                    "approve",
                )
                .await
                .0
            })
        })
        .collect();
    for g in guesses {
        let status = g.await.unwrap();
        assert!(
            status == 200 || status == 429,
            "the form again, or limited: {status}"
        );
    }
    let tenant = s.gateway.tenant_for_request(Some("foo.com")).await.unwrap();
    let alice = s
        .gateway
        .store()
        .user(tenant.id, "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(alice
        .locked_until
        .is_some_and(|t| t > portcullis::service::now()));
    let page = open(&s, "/t/foo.com", &query).await;
    let (status, location, _) = submit(
        &s,
        "/t/foo.com",
        &page,
        "alice",
        "alice-password",
        "approve",
    )
    .await;
    assert_eq!(
        (status, location),
        (200, None),
        "the right password during the lock re-shows the form"
    );
}

async fn codes_expire(s: TestServer) {
    // short.com codes live one second; its client is confidential.
    let page = open(
        &s,
        "/t/short.com",
        &[
            ("response_type", "code"),
            ("client_id", "short-client"),
            ("redirect_uri", "https://short.example/cb"),
        ],
    )
    .await;
    assert_eq!(
        page.status, 400,
        "short-client has no redirect URI registered"
    );
    let (status, created) = s.api("POST", "/t/short.com/api/v1/clients", ("admin@short.com", "short-admin-password"),
        Some(json!({"client_id": "short-web", "grant_types": ["authorization_code"], "redirect_uris": ["https://short.example/cb"], "require_pkce": false}))).await;
    assert_eq!(status, 201);
    assert_eq!(created["require_pkce"], false);
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let page = open(
        &s,
        "/t/short.com",
        &[("response_type", "code"), ("client_id", "short-web")],
    )
    .await;
    let (_, location, _) = submit(
        &s,
        "/t/short.com",
        &page,
        "admin",
        "short-admin-password",
        "approve",
    )
    .await;
    let code = query_param(&location.unwrap(), "code").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = exchange(
        &s,
        "/t/short.com",
        Some(("short-web", &secret)),
        &[("code", &code)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (_, info) = s
        .api(
            "POST",
            "/t/short.com/api/v1/tokens/lookup",
            ("admin@short.com", "short-admin-password"),
            Some(json!({"token": code})),
        )
        .await;
    assert_eq!(info["state"], "EXPIRED");
}

/// A code presented by anyone but its own client is spent, whichever tenant or
/// endpoint it came through: another tenant's client at the super tenant's endpoint
/// (which takes every tenant's clients), the code's own client at another tenant's
/// endpoint, or a client whose authentication failed. The rightful exchange then fails.
async fn a_code_presented_anywhere_by_another_is_spent(s: TestServer) {
    // (path prefix, Basic credentials, extra form fields)
    type Presenter<'a> = (
        &'a str,
        Option<(&'a str, &'a str)>,
        &'a [(&'a str, &'a str)],
    );
    let presenters: [Presenter; 4] = [
        ("", Some(("bar-client", "bar-secret")), &[]),
        ("/t/bar.com", None, &[("client_id", "foo-spa")]),
        ("/t/foo.com", Some(("foo-web", "wrong-secret")), &[]),
        ("", None, &[("client_id", "no-such-client")]),
    ];
    for (prefix, auth, extra) in presenters {
        let (code, verifier) = spa_code(&s, "/t/foo.com").await;
        let mut form = vec![
            ("code", code.as_str()),
            ("redirect_uri", SPA_CALLBACK),
            ("code_verifier", verifier.as_str()),
        ];
        form.extend_from_slice(extra);
        let (status, body) = exchange(&s, prefix, auth, &form).await;
        assert!(matches!(status, 400 | 401), "{prefix} {auth:?}: {body}");
        let (status, body) = spa_exchange(&s, &code, &verifier).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "the code leaked through {prefix:?} by {auth:?} {extra:?} is spent"
        );
    }
    // The rightful client's own exchange of a fresh code still works.
    let (code, verifier) = spa_code(&s, "/t/foo.com").await;
    let (status, body) = spa_exchange(&s, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
}

on_both_backends!(crate::common::TestServer::for_backend;
    the_full_flow_with_pkce_issues_tokens_naming_the_user,
    a_code_presented_anywhere_by_another_is_spent,
    the_sign_in_page_is_safe_and_says_who_asks,
    a_public_client_must_use_pkce_and_the_right_verifier,
    a_confidential_client_authenticates_and_repeats_its_redirect_uri,
    bad_clients_and_redirect_uris_get_a_page_never_a_redirect,
    other_errors_go_back_to_the_client,
    a_post_without_the_csrf_token_issues_no_code,
    wrong_credentials_reshow_the_form_saying_nothing_more,
    a_reused_code_revokes_what_it_issued,
    pkce_is_required_of_a_confidential_client_by_default,
    parallel_sign_in_guesses_lock_the_user,
    codes_expire,
);
