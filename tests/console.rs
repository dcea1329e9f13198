//! The console over HTTP, as a browser drives it: sign-in through the tenant's own code
//! flow, the session cookie, CSRF and cross-site refusals, tenant binding, sessions
//! that end, changes audited as made in the console, and sessions on two instances.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestDatabase, TestServer};
use serde_json::json;

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
/// The `Origin` of the test servers' public URL (`server.public_url`'s default).
const SITE: &str = "https://localhost:9443";

/// What a browser holds for the console: its session cookie.
struct Browser<'a> {
    s: &'a TestServer,
    session: String,
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `name=value` of the cookie a response set under `name`, with its attributes.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn pair(cookie: &str) -> String {
    cookie.split(';').next().unwrap().to_owned()
}

/// The value of the hidden or text field `name` in `html`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

/// The path and query of a `Location`, absolute or not: the test servers' public URL
/// is not their address.
fn local(location: &str) -> String {
    match location.strip_prefix(SITE) {
        Some(rest) => rest.to_owned(),
        None => location.to_owned(),
    }
}

/// Opens `page` of the console at `prefix` without a session and signs in on the
/// sign-in page as `user`; answers the browser and where the callback sent it.
async fn sign_in<'a>(
    s: &'a TestServer,
    prefix: &str,
    page: &str,
    user: &str,
    password: &str,
) -> (Browser<'a>, String) {
    let r = s
        .client
        .get(s.url(&format!("{prefix}/console/{page}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_authorize = header(&r, "location");
    assert!(
        to_authorize.starts_with(&format!("{prefix}/oauth2/authorize?")),
        "{to_authorize}"
    );
    assert!(to_authorize.contains("client_id=portcullis-console"));
    assert!(to_authorize.contains("code_challenge_method=S256"));
    let flow = set_cookie(&r, "__Host-portcullis_console_flow").expect("a flow cookie");
    let r = s.client.get(s.url(&to_authorize)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csrf_cookie = pair(&set_cookie(&r, "__Host-portcullis_csrf").unwrap());
    let html = r.text().await.unwrap();
    let mut form: Vec<(String, String)> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "csrf",
    ]
    .iter()
    .map(|name| ((*name).to_owned(), field(&html, name)))
    .collect();
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    form.push(("action".into(), "approve".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = s
        .client
        .post(s.url(&format!("{prefix}/oauth2/authorize")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", csrf_cookie)
        .body(common::encode_form(&pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let callback = header(&r, "location");
    assert!(
        callback.starts_with(&format!("{SITE}{prefix}/console/callback?code=")),
        "{callback}"
    );
    let r = s
        .client
        .get(s.url(&local(&callback)))
        .header("cookie", pair(&flow))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", header(&r, "location"));
    let session = set_cookie(&r, "__Host-portcullis_console").expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Domain"), "{session}");
    let back = header(&r, "location");
    (
        Browser {
            s,
            session: pair(&session),
        },
        back,
    )
}

impl Browser<'_> {
    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self
            .s
            .client
            .get(self.s.url(path))
            .header("cookie", &self.session)
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        (r.status().as_u16(), r.text().await.unwrap(), headers)
    }

    /// POSTs a form as the page at `from` would: with that page's CSRF token, from this
    /// site. `extra` headers replace what a browser would send.
    async fn post(
        &self,
        from: &str,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> (u16, String, String) {
        let (_, html, _) = self.get(from).await;
        let csrf = field(&html, "csrf");
        let mut pairs = vec![("csrf", csrf.as_str())];
        pairs.extend_from_slice(form);
        self.post_raw(path, &pairs, extra).await
    }

    async fn post_raw(
        &self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut request = self
            .s
            .client
            .post(self.s.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &self.session);
        // What a browser sends from a page of this site, unless the test says otherwise.
        for (name, value) in [("origin", SITE), ("sec-fetch-site", "same-origin")] {
            if !extra.iter().any(|(n, _)| *n == name) {
                request = request.header(name, value);
            }
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let r = request
            .body(common::encode_form(form))
            .send()
            .await
            .unwrap();
        let location = header(&r, "location");
        (r.status().as_u16(), location, r.text().await.unwrap())
    }
}

async fn sign_in_as_foo_admin(s: &TestServer) -> Browser<'_> {
    let (browser, back) = sign_in(s, "/t/foo.com", "users", "admin", FOO_ADMIN.1).await;
    assert_eq!(back, "/t/foo.com/console/users");
    browser
}

async fn signing_in_goes_through_the_tenants_own_code_flow(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    let (status, html, headers) = browser.get("/t/foo.com/console/users").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("<nav aria-label=\"Console\">"), "{html}");
    assert!(html.contains("admin@foo.com"));
    assert!(html.contains(">Sign out</button>"));
    assert!(html.contains(">alice</a>"), "{html}");
    assert!(!html.contains("<script"), "no script, ever");
    // The sign-in redeemed a code into a grant of the console client; no token reached
    // the browser, and the grant is one of the admin's.
    let (_, grants) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/tokens?username=admin",
            FOO_ADMIN,
            None,
        )
        .await;
    assert!(
        grants["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["client_id"] == "portcullis-console"),
        "{grants}"
    );
    // The stylesheet needs no session and may be cached.
    let r = s
        .client
        .get(s.url("/t/foo.com/console/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/css"));
    // `/console` goes to `/console/`, which asks for a sign-in of its own tenant.
    let r = s.client.get(s.url("/console")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "location")),
        (303, "/console/".into())
    );
    // The first page shows what the roles allow.
    let (status, home, _) = browser.get("/t/foo.com/console/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains(">Users</a>") && home.contains(">Tokens</a>"),
        "{home}"
    );
}

async fn a_console_change_is_audited_as_made_in_the_console(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    let new = "/t/foo.com/console/users/new";
    let (status, location, body) = browser
        .post(
            new,
            new,
            &[("username", "carol"), ("password", "carol-password")],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert!(
        location.starts_with("/t/foo.com/console/users/carol?done="),
        "{location}"
    );
    let (status, page, _) = browser.get(&location).await;
    assert_eq!(status, 200);
    assert!(page.contains("User carol was created."), "{page}");
    let (_, log) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/audit?action=user.create&target=carol",
            FOO_ADMIN,
            None,
        )
        .await;
    let event = &log["events"][0];
    assert_eq!(
        (&event["actor"], &event["via"]),
        (&json!("admin@foo.com"), &json!("console")),
        "{log}"
    );
    // A form that fails keeps what was typed, never the password, and marks the field.
    let (status, _, page) = browser
        .post(
            new,
            new,
            &[("username", "dave"), ("password", "short")],
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("value=\"dave\""), "{page}");
    assert!(!page.contains("short\""), "{page}");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    // The sign-in and the sign-out are in the log too.
    let (status, location, _) = browser
        .post(
            "/t/foo.com/console/",
            "/t/foo.com/console/sign-out",
            &[],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/t/foo.com/console/signed-out")
    );
    let (_, log) = s
        .api(
            "GET",
            "/t/foo.com/api/v1/audit?actor=admin@foo.com",
            FOO_ADMIN,
            None,
        )
        .await;
    let actions: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"console.sign_in") && actions.contains(&"console.sign_out"),
        "{actions:?}"
    );
    // After "Sign out" the cookie opens nothing.
    let (status, _, _) = browser.get("/t/foo.com/console/users").await;
    assert_eq!(status, 303);
}

async fn posts_without_the_token_or_from_another_site_are_refused(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    let new = "/t/foo.com/console/users/new";
    let (_, form_page, _) = browser.get(new).await;
    let csrf = field(&form_page, "csrf");
    let good = [
        ("csrf", csrf.as_str()),
        ("username", "mallory"),
        ("password", "mallory-password"),
    ];
    let no_token = &good[1..];
    let wrong_token = [
        ("csrf", "x".repeat(43)),
        ("username", "mallory".into()),
        ("password", "mallory-password".into()),
    ];
    let wrong_token: Vec<(&str, &str)> =
        wrong_token.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (form, extra) in [
        (no_token, &[][..]),
        (&wrong_token[..], &[][..]),
        (&good[..], &[("origin", "https://evil.example")][..]),
        (&good[..], &[("sec-fetch-site", "cross-site")][..]),
    ] {
        let (status, _, page) = browser.post_raw(new, form, extra).await;
        assert_eq!(status, 403, "{extra:?}");
        assert!(page.contains("did not come from this console"), "{page}");
    }
    let (status, _) = s
        .api("GET", "/t/foo.com/api/v1/users/mallory", FOO_ADMIN, None)
        .await;
    assert_eq!(status, 404, "nothing refused was done");
    // The same form, as the page sends it, works.
    let (status, _, _) = browser.post_raw(new, &good, &[]).await;
    assert_eq!(status, 303);
}

async fn a_session_and_its_client_belong_to_one_tenant(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    // foo.com's session opens nothing of the super tenant's console.
    let (status, _, headers) = browser.get("/console/users").await;
    assert_eq!(status, 303);
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with("/oauth2/authorize?"), "{location}");
    // The console client cannot be registered, and no token endpoint knows it.
    let (status, error) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            FOO_ADMIN,
            Some(json!({"client_id": "portcullis-console", "public": true,
                        "grant_types": ["authorization_code"],
                        "redirect_uris": ["https://x.example/cb"]})),
        )
        .await;
    assert_eq!(
        (status, &error["field"]),
        (400, &json!("client_id")),
        "{error}"
    );
    for path in ["/oauth2/token", "/t/foo.com/oauth2/token"] {
        let r = s
            .post_form(
                path,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "portcullis-console"),
                    ("code", "whatever-code-whatever-code-whatever-code-x"),
                    ("code_verifier", &"v".repeat(43)),
                ],
            )
            .await;
        assert_eq!(r.status(), 401, "{path}");
    }
    // Its callback under another tenant does not take a flow started here.
    let (status, _, _) = browser.get("/console/callback?code=abc&state=def").await;
    assert_eq!(status, 400);
}

async fn a_session_ends_with_its_user_and_needs_a_recent_sign_in_to_delete(s: TestServer) {
    s.api_user("/t/foo.com", FOO_ADMIN, "ops", "ops-password", &["admin"])
        .await;
    s.api_user("/t/foo.com", FOO_ADMIN, "temp", "temp-password", &[])
        .await;
    let (browser, _) = sign_in(&s, "/t/foo.com", "users", "ops", "ops-password").await;
    // A deletion asks to confirm, and deletes.
    let delete = "/t/foo.com/console/users/temp/delete";
    let (status, page, _) = browser.get(delete).await;
    assert_eq!(status, 200);
    assert!(page.contains("Delete the user"), "{page}");
    let (status, location, _) = browser.post(delete, delete, &[], &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/t/foo.com/console/users?done=User+temp+was+deleted.")
    );
    // A sign-in older than five minutes must be made again first.
    s.api_user("/t/foo.com", FOO_ADMIN, "temp2", "temp-password", &[])
        .await;
    age_sessions(&s, 600).await;
    let (status, _, headers) = browser.get("/t/foo.com/console/users/temp2/delete").await;
    assert_eq!(status, 303);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/t/foo.com/oauth2/authorize?"),
        "a new sign-in"
    );
    // Disabling the user ends the session at its next request.
    disable(&s, "ops").await;
    let (status, _, _) = browser.get("/t/foo.com/console/users").await;
    assert_eq!(status, 303, "the session ended");
    // So does a new password.
    s.api_user("/t/foo.com", FOO_ADMIN, "ops2", "ops2-password", &["admin"])
        .await;
    let (browser, _) = sign_in(&s, "/t/foo.com", "users", "ops2", "ops2-password").await;
    let (status, _) = s
        .api(
            "PUT",
            "/t/foo.com/api/v1/users/ops2/password",
            FOO_ADMIN,
            Some(json!({"password": "a-new-password"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = browser.get("/t/foo.com/console/users").await;
    assert_eq!(status, 303, "the session ended");
}

/// Disables `username` of foo.com through the admin API.
async fn disable(s: &TestServer, username: &str) {
    let (status, _) = s
        .api(
            "PUT",
            &format!("/t/foo.com/api/v1/users/{username}/enabled"),
            FOO_ADMIN,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
}

/// Moves every console session's sign-in `seconds` into the past.
async fn age_sessions(s: &TestServer, seconds: i64) {
    let sql = format!("UPDATE console_sessions SET signed_in_at = signed_in_at - {seconds}");
    run_sql(s, &sql).await;
}

/// Runs one statement on the test's database; answers the rows it touched.
async fn run_sql(s: &TestServer, sql: &str) -> u64 {
    match s.database.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.database.url).await.unwrap();
            let done = sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
            done.rows_affected()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&s.database.url).await.unwrap();
            let done = sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
            done.rows_affected()
        }
    }
}

async fn sessions_that_ended_unseen_are_purged(s: TestServer) {
    let idle = sign_in_as_foo_admin(&s).await;
    let (busy, _) = sign_in(&s, "/t/foo.com", "users", "admin", FOO_ADMIN.1).await;
    // One idle for 15 minutes, one signed in 8 hours ago; a third still fresh.
    let (fresh, _) = sign_in(&s, "/t/foo.com", "users", "admin", FOO_ADMIN.1).await;
    run_sql(
        &s,
        "UPDATE console_sessions SET last_seen_at = last_seen_at - 900 \
         WHERE id = (SELECT MIN(id) FROM console_sessions)",
    )
    .await;
    run_sql(
        &s,
        "UPDATE console_sessions SET signed_in_at = signed_in_at - 28800 \
         WHERE id = (SELECT MIN(id) + 1 FROM console_sessions)",
    )
    .await;
    assert_eq!(s.gateway.end_stale_console_sessions().await.unwrap(), 2);
    assert_eq!(s.gateway.end_stale_console_sessions().await.unwrap(), 0);
    for (browser, live) in [(&idle, false), (&busy, false), (&fresh, true)] {
        let (status, _, _) = browser.get("/t/foo.com/console/users").await;
        assert_eq!(status == 200, live);
    }
}

/// On PostgreSQL, a second instance on the same database; SQLite has one instance.
async fn a_session_made_on_one_instance_works_on_another(s: TestServer) {
    let other = match s.database.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(
            TestServer::start_on(
                TestDatabase::shared_with(&s.database),
                common::default_tenant_files(),
                |_| {},
            )
            .await,
        ),
    };
    let browser = sign_in_as_foo_admin(&s).await;
    let there = Browser {
        s: other.as_ref().unwrap_or(&s),
        session: browser.session.clone(),
    };
    let (status, html, _) = there.get("/t/foo.com/console/users").await;
    assert_eq!(status, 200, "{html}");
    // A form from one instance is taken by the other.
    let new = "/t/foo.com/console/users/new";
    let (_, page, _) = browser.get(new).await;
    let csrf = field(&page, "csrf");
    let (status, _, _) = there
        .post_raw(
            new,
            &[
                ("csrf", &csrf),
                ("username", "erin"),
                ("password", "erin-password"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    // Sign out on one; the other refuses the cookie at once (the database is shared).
    let (status, _, _) = browser
        .post(
            "/t/foo.com/console/",
            "/t/foo.com/console/sign-out",
            &[],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = there.get("/t/foo.com/console/users").await;
    assert_eq!(status, 303);
    // A user disabled through one instance loses its session on the other within a
    // second: the other hears of the change and drops the user it had cached.
    s.api_user("/t/foo.com", FOO_ADMIN, "ops", "ops-password", &["admin"])
        .await;
    let (ops, _) = sign_in(&s, "/t/foo.com", "users", "ops", "ops-password").await;
    let ops_there = Browser {
        s: there.s,
        session: ops.session.clone(),
    };
    let (status, _, _) = ops_there.get("/t/foo.com/console/users").await;
    assert_eq!(status, 200, "the user is cached there now");
    disable(&s, "ops").await;
    let disabled = std::time::Instant::now();
    loop {
        let (status, _, _) = ops_there.get("/t/foo.com/console/users").await;
        if status == 303 {
            break;
        }
        assert!(
            disabled.elapsed() < std::time::Duration::from_secs(1),
            "the session outlived its user's disabling by a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

on_both_backends!(crate::common::TestServer::for_backend;
    signing_in_goes_through_the_tenants_own_code_flow,
    a_console_change_is_audited_as_made_in_the_console,
    posts_without_the_token_or_from_another_site_are_refused,
    a_session_and_its_client_belong_to_one_tenant,
    a_session_ends_with_its_user_and_needs_a_recent_sign_in_to_delete,
    a_session_made_on_one_instance_works_on_another,
    sessions_that_ended_unseen_are_purged,
);
