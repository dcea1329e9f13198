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

/// What a browser holds for the console: its session cookie, and the single sign-on
/// cookie its sign-in set (`name=value`).
struct Browser<'a> {
    s: &'a TestServer,
    session: String,
    sign_in: String,
}

/// The prefix of every tenant's single sign-on cookie.
const SIGN_IN_COOKIE: &str = "__Host-portcullis_session.";

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
    common::html::field_value(html, name)
}

/// A form that came back refused: what was typed in it is kept, and a field is marked.
fn assert_kept_and_marked(page: &str, typed: &str) {
    assert!(
        page.contains(&format!("value=\"{typed}\"")) && page.contains("aria-invalid=\"true\""),
        "{page}"
    );
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
    assert!(
        to_authorize.contains("max_age=28800"),
        "a single sign-on session no older than a console session: {to_authorize}"
    );
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
    let sign_in = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| pair(v.to_str().unwrap()))
        .find(|c| c.starts_with(SIGN_IN_COOKIE))
        .expect("a single sign-on cookie");
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
            sign_in,
        },
        back,
    )
}

impl Browser<'_> {
    /// The `Cookie` header: every cookie of the site goes with every request.
    fn cookies(&self) -> String {
        format!("{}; {}", self.session, self.sign_in)
    }

    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = self
            .s
            .client
            .get(self.s.url(path))
            .header("cookie", self.cookies())
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
            .header("cookie", self.cookies());
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

async fn the_console_signs_in_through_the_single_sign_on_session(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    // A browser holding only the single sign-on cookie gets in without a password.
    let r = s
        .client
        .get(s.url("/t/foo.com/console/users"))
        .header("cookie", &browser.sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_authorize = header(&r, "location");
    let flow = pair(&set_cookie(&r, "__Host-portcullis_console_flow").unwrap());
    let r = s
        .client
        .get(s.url(&to_authorize))
        .header("cookie", &browser.sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "no sign-in page");
    let callback = local(&header(&r, "location"));
    assert!(
        callback.starts_with("/t/foo.com/console/callback?code="),
        "{callback}"
    );
    let r = s
        .client
        .get(s.url(&callback))
        .header("cookie", flow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "__Host-portcullis_console").expect("a session");
    let console = Browser {
        s: &s,
        session: pair(&session),
        sign_in: browser.sign_in.clone(),
    };
    let (status, _, _) = console.get("/t/foo.com/console/users").await;
    assert_eq!(status, 200);

    // A dangerous action needs a password from the last five minutes, session or not.
    s.api_user("/t/foo.com", FOO_ADMIN, "temp3", "temp-password", &[])
        .await;
    age_sessions(&s, 600).await;
    run_sql(
        &s,
        "UPDATE sign_in_sessions SET signed_in_at = signed_in_at - 600",
    )
    .await;
    let (status, _, headers) = console.get("/t/foo.com/console/users/temp3/delete").await;
    assert_eq!(status, 303);
    let again = headers["location"].to_str().unwrap().to_owned();
    assert!(again.contains("max_age=300"), "{again}");
    let r = s
        .client
        .get(s.url(&again))
        .header("cookie", &browser.sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the sign-in page asks for the password");

    // Signing out of the console signs the browser out of the tenant too.
    let (status, _, _) = console
        .post(
            "/t/foo.com/console/",
            "/t/foo.com/console/sign-out",
            &[],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let r = s
        .client
        .get(s.url(&format!("{to_authorize}&prompt=none")))
        .header("cookie", &browser.sign_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        header(&r, "location").contains("error=login_required"),
        "{}",
        header(&r, "location")
    );
}

async fn sessions_that_ended_unseen_are_purged(s: TestServer) {
    let idle = sign_in_as_foo_admin(&s).await;
    let (busy, _) = sign_in(&s, "/t/foo.com", "users", "admin", FOO_ADMIN.1).await;
    // One idle, one signed in too long ago; a third still fresh. Each sign-in started
    // a single sign-on session beside its console session, with limits of its own.
    let (fresh, _) = sign_in(&s, "/t/foo.com", "users", "admin", FOO_ADMIN.1).await;
    for (table, idle_seconds, lifetime_seconds) in [
        ("console_sessions", 15 * 60, 8 * 3600),
        ("sign_in_sessions", 30 * 60, 10 * 3600),
    ] {
        let first = format!("(SELECT MIN(id) FROM {table})");
        let sql = format!(
            "UPDATE {table} SET last_seen_at = last_seen_at - {idle_seconds} WHERE id = {first}"
        );
        run_sql(&s, &sql).await;
        let sql = format!(
            "UPDATE {table} SET signed_in_at = signed_in_at - {lifetime_seconds} \
             WHERE id = (SELECT MIN(id) + 1 FROM {table})"
        );
        run_sql(&s, &sql).await;
    }
    assert_eq!(s.gateway.end_stale_console_sessions().await.unwrap(), 2);
    assert_eq!(s.gateway.end_stale_console_sessions().await.unwrap(), 0);
    assert_eq!(s.gateway.end_stale_sign_in_sessions().await.unwrap(), 2);
    assert_eq!(s.gateway.end_stale_sign_in_sessions().await.unwrap(), 0);
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
        sign_in: browser.sign_in.clone(),
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
        sign_in: ops.sign_in.clone(),
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

/// The text between `before` and the next `after` in `html`.
fn between<'h>(html: &'h str, before: &str, after: &str) -> &'h str {
    let start = html
        .find(before)
        .unwrap_or_else(|| panic!("no {before} in {html}"))
        + before.len();
    let end = html[start..].find(after).unwrap() + start;
    &html[start..end]
}

async fn the_super_tenant_makes_a_tenant_whose_admin_manages_it(s: TestServer) {
    let (root, back) = sign_in(&s, "", "tenants", "admin", common::ADMIN_PASSWORD).await;
    assert_eq!(back, "/console/tenants");
    let (status, page, _) = root.get("/console/tenants").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(">Tenants</a>") && page.contains(">foo.com</td>"),
        "{page}"
    );
    let new = "/console/tenants/new";
    let (status, _, page) = root
        .post(
            new,
            new,
            &[
                ("domain", "bad domain"),
                ("admin.username", "boss"),
                ("admin.password", "boss-password-1"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_kept_and_marked(&page, "bad domain");
    assert!(
        !page.contains("boss-password-1"),
        "a password is never shown back"
    );
    let (status, location, _) = root
        .post(
            new,
            new,
            &[
                ("domain", "made.com"),
                ("admin.username", "boss"),
                ("admin.password", "boss-password-1"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (
            303,
            "/console/tenants?done=Tenant+made.com+was+created+with+its+administrator."
        )
    );
    // Tenants are the super tenant's: no link to them, and no page, in another tenant.
    let foo_admin = sign_in_as_foo_admin(&s).await;
    let (_, home, _) = foo_admin.get("/t/foo.com/console/").await;
    assert!(!home.contains(">Tenants</a>"), "{home}");
    let (status, _, _) = foo_admin.get("/t/foo.com/console/tenants").await;
    assert_eq!(status, 403);

    // The new tenant's administrator signs in to its console and sets it up.
    let (boss, _) = sign_in(&s, "/t/made.com", "roles", "boss", "boss-password-1").await;
    let c = "/t/made.com/console";
    let roles_new = format!("{c}/roles/new");
    let (status, _, page) = boss
        .post(
            &roles_new,
            &roles_new,
            &[("name", "support"), ("permissions", "nope")],
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains(">nope</textarea>") && page.contains("aria-invalid=\"true\""),
        "{page}"
    );
    let usermgt = "/permission/admin/manage/identity/usermgt";
    let (status, location, _) = boss
        .post(
            &roles_new,
            &roles_new,
            &[("name", "support"), ("permissions", usermgt)],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (
            303,
            "/t/made.com/console/roles/support?done=Role+support+was+created."
        )
    );
    let role = format!("{c}/roles/support");
    let (status, _, _) = boss
        .post(
            &role,
            &role,
            &[(
                "permissions",
                &format!("{usermgt}\r\n/permission/admin/monitor/audit\r\n"),
            )],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let boss_api = ("boss@made.com", "boss-password-1");
    let (_, support) = s
        .api("GET", "/t/made.com/api/v1/roles/support", boss_api, None)
        .await;
    assert_eq!(
        support["permissions"],
        json!([usermgt, "/permission/admin/monitor/audit"])
    );
    let delete = format!("{role}/delete");
    let (status, page, _) = boss.get(&delete).await;
    assert!(status == 200 && page.contains("Delete the role"), "{page}");
    let (status, _, _) = boss.post(&delete, &delete, &[], &[]).await;
    assert_eq!(status, 303);
    let (status, _) = s
        .api("GET", "/t/made.com/api/v1/roles/support", boss_api, None)
        .await;
    assert_eq!(status, 404);

    // A client: registered with its secret shown once, edited, its secret rotated.
    let clients_new = format!("{c}/clients/new");
    let (status, _, page) = boss
        .post(
            &clients_new,
            &clients_new,
            &[("client_id", "made-app"), ("require_pkce", "on")],
            &[],
        )
        .await;
    assert_eq!(status, 400, "no grant type");
    assert!(page.contains("value=\"made-app\""), "{page}");
    let (status, _, page) = boss
        .post(
            &clients_new,
            &clients_new,
            &[
                ("client_id", "made-app"),
                ("grant:client_credentials", "on"),
                ("require_pkce", "on"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let secret = between(&page, "<dt>Client secret</dt><dd><code>", "</code>").to_owned();
    let token = "/t/made.com/oauth2/token";
    s.client_token(token, ("made-app", &secret), None).await;
    let client = format!("{c}/clients/made-app");
    let (status, location, _) = boss
        .post(
            &client,
            &client,
            &[
                ("grant:client_credentials", "on"),
                ("scopes", "read\nwrite"),
                ("name", "Made app"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (
            303,
            "/t/made.com/console/clients/made-app?done=The+client+was+saved."
        )
    );
    let (_, view) = s
        .api("GET", "/t/made.com/api/v1/clients/made-app", boss_api, None)
        .await;
    assert_eq!(
        (&view["scopes"], &view["name"]),
        (&json!(["read", "write"]), &json!("Made app"))
    );
    let rotate = format!("{client}/secret");
    let (status, page, _) = boss.get(&rotate).await;
    assert!(
        status == 200 && page.contains("stops working at once"),
        "{page}"
    );
    let (status, _, page) = boss.post(&rotate, &rotate, &[], &[]).await;
    assert_eq!(status, 200, "{page}");
    let rotated = between(&page, "<dt>Client secret</dt><dd><code>", "</code>").to_owned();
    assert_ne!(rotated, secret);
    let old = s
        .post_form(
            token,
            Some(("made-app", &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(old.status(), 401, "the old secret stopped working");
    s.client_token(token, ("made-app", &rotated), Some("read"))
        .await;

    // Settings: what is typed is checked as the API checks it, and kept when refused.
    let settings = format!("{c}/settings");
    let (_, page, _) = boss.get(&settings).await;
    let refresh = field(&page, "tokens.refresh_token_ttl");
    let mut form = vec![
        ("tokens.access_token_ttl", "abc"),
        ("tokens.refresh_token_ttl", refresh.as_str()),
        ("tokens.authorization_code_ttl", "60"),
        ("tokens.grant_max_lifetime", "86400"),
        ("introspection.allowed_clients", "made-app"),
        ("rate_limits.requests_per_caller", ""),
        ("rate_limits.requests_per_tenant", "500"),
    ];
    let (status, _, page) = boss.post(&settings, &settings, &form, &[]).await;
    assert_eq!(status, 400);
    assert_kept_and_marked(&page, "abc");
    form[0].1 = "600";
    let (status, _, _) = boss.post(&settings, &settings, &form, &[]).await;
    assert_eq!(status, 303);
    let (_, now) = s
        .api("GET", "/t/made.com/api/v1/settings", boss_api, None)
        .await;
    assert_eq!(now["tokens"]["access_token_ttl"], 600, "{now}");
    assert_eq!(now["introspection"]["allowed_clients"], json!(["made-app"]));
    assert_eq!(now["rate_limits"]["requests_per_tenant"], 500);

    // Keys: a rotation retires the key that signed until now.
    let keys = format!("{c}/keys/rotate");
    let (status, _, _) = boss.post(&keys, &keys, &[], &[]).await;
    assert_eq!(status, 303);
    let (_, page, _) = boss.get(&format!("{c}/keys")).await;
    assert!(
        page.contains(">Active</td>") && page.contains(">Retiring</td>"),
        "{page}"
    );

    // The client goes, then the tenant.
    let delete = format!("{client}/delete");
    let (status, _, _) = boss.post(&delete, &delete, &[], &[]).await;
    assert_eq!(status, 303);
    let (status, _) = s
        .api("GET", "/t/made.com/api/v1/clients/made-app", boss_api, None)
        .await;
    assert_eq!(status, 404);
    let deactivate = "/console/tenants/made.com/deactivate";
    let (status, page, _) = root.get(deactivate).await;
    assert!(
        status == 200 && page.contains("Deactivate the tenant"),
        "{page}"
    );
    let (status, _, _) = root.post(deactivate, deactivate, &[], &[]).await;
    assert_eq!(status, 303);
    let (status, _, _) = boss.get(&format!("{c}/keys")).await;
    assert_eq!(status, 404, "a deactivated tenant has no console");
}

async fn resources_and_the_audit_log_in_the_console(s: TestServer) {
    let browser = sign_in_as_foo_admin(&s).await;
    let c = "/t/foo.com/console";
    let (status, page, _) = browser
        .get(&format!(
            "{c}/resources/test?path=%2Ft%2Ffoo.com%2Fapi%2Fv1%2Fusers%2Falice&method=DELETE"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Rule 2 decides"), "{page}");
    assert!(
        page.contains("<code>/permission/admin/manage/identity/usermgt</code>."),
        "{page}"
    );
    let (status, page, _) = browser
        .get(&format!("{c}/resources/test?path=users&method=GET"))
        .await;
    assert_eq!(status, 400);
    assert_kept_and_marked(&page, "users");

    // The rules are one form; positions order them, an empty context drops a rule, and
    // a bad rule is named by its number with what was typed kept.
    let resources = format!("{c}/resources");
    let (status, page, _) = browser.get(&resources).await;
    assert!(
        status == 200 && page.contains("Save rules") && page.contains("name=\"context.0\""),
        "{page}"
    );
    let usermgt = "/permission/admin/manage/identity/usermgt";
    let rolemgt = "/permission/admin/manage/identity/rolemgt";
    let mut rules = vec![
        ("context.0", "(.*)/api/v1/roles(.*)"),
        ("method.0", "all"),
        ("permissions.0", rolemgt),
        ("secured.0", "on"),
        ("position.0", "2"),
        ("context.1", "(.*)/api/v1/users(.*)"),
        ("method.1", "all"),
        ("permissions.1", usermgt),
        ("secured.1", "on"),
        ("position.1", "1"),
        ("context.2", ""),
        ("method.2", "all"),
        ("permissions.2", ""),
        ("position.2", ""),
        ("context.3", "(.*)/api/v1/(.*)"),
        ("method.3", "all"),
        ("permissions.3", "/permission/admin"),
        ("secured.3", "on"),
        ("position.3", ""),
        ("context.4", "(unclosed"),
        ("method.4", "GET"),
        ("permissions.4", ""),
        ("position.4", ""),
    ];
    let (status, _, page) = browser.post(&resources, &resources, &rules, &[]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("Rule 4:") && page.contains("value=\"(unclosed\""),
        "{page}"
    );
    rules.truncate(rules.len() - 4);
    let (status, location, _) = browser.post(&resources, &resources, &rules, &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (
            303,
            "/t/foo.com/console/resources?done=The+rules+were+saved%3B+they+apply+now."
        )
    );
    let (_, saved) = s
        .api("GET", "/t/foo.com/api/v1/resources", FOO_ADMIN, None)
        .await;
    let contexts: Vec<&str> = saved["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["context"].as_str().unwrap())
        .collect();
    assert_eq!(
        &contexts[..3],
        [
            "(.*)/api/v1/users(.*)",
            "(.*)/api/v1/roles(.*)",
            "(.*)/api/v1/(.*)"
        ],
        "{saved}"
    );

    // The audit log, filtered, on a page and as CSV.
    s.api_user("/t/foo.com", FOO_ADMIN, "erin", "erin-password", &[])
        .await;
    let (status, page, _) = browser
        .get(&format!(
            "{c}/audit?action=user.create&actor=&target=erin&since=&until="
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<td>erin</td>") && page.contains("<td>admin@foo.com</td>"),
        "{page}"
    );
    assert!(
        !page.contains("resources.update</td>"),
        "filtered by action"
    );
    let (status, page, _) = browser.get(&format!("{c}/audit?since=yesterday")).await;
    assert_eq!(status, 400);
    assert_kept_and_marked(&page, "yesterday");
    let (status, csv, headers) = browser
        .get(&format!("{c}/audit/export?action=user.create&target=erin"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"audit-foo.com.csv\""
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "\"id\",\"at\",\"actor\",\"action\",\"target\",\"from\",\"detail\",\"via\""
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].contains("\"admin@foo.com\",\"user.create\",\"erin\""),
        "{csv}"
    );
}

async fn a_users_profile_is_set_on_its_page(s: TestServer) {
    s.api_user("/t/foo.com", FOO_ADMIN, "erin", "erin-password", &[])
        .await;
    let browser = sign_in_as_foo_admin(&s).await;
    let page = "/t/foo.com/console/users/erin";
    let action = "/t/foo.com/console/users/erin/profile";
    let (status, _, html) = browser
        .post(
            page,
            action,
            &[
                ("name", "Erin"),
                ("email", "erin-at-foo"),
                ("email_verified", "on"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_kept_and_marked(&html, "erin-at-foo");
    let (status, location, _) = browser
        .post(
            page,
            action,
            &[
                ("name", "Erin"),
                ("email", "erin@foo.example"),
                ("email_verified", "on"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (
            303,
            "/t/foo.com/console/users/erin?done=The+profile+was+saved."
        )
    );
    let (_, user) = s
        .api("GET", "/t/foo.com/api/v1/users/erin", FOO_ADMIN, None)
        .await;
    assert_eq!(
        (&user["name"], &user["email"], &user["email_verified"]),
        (&json!("Erin"), &json!("erin@foo.example"), &json!(true))
    );
    // A file's user shows its profile, and no form for it.
    let (_, html, _) = browser.get("/t/foo.com/console/users/alice").await;
    assert!(
        html.contains("<h2 id=\"profile\">") && !html.contains("Save profile"),
        "{html}"
    );
}

async fn a_view_only_admin_sees_read_only_pages(s: TestServer) {
    s.foo_client_viewer("vera", "vera-password").await;
    s.api_client("/t/foo.com", FOO_ADMIN, "api-made").await;
    let (vera, back) = sign_in(&s, "/t/foo.com", "clients", "vera", "vera-password").await;
    assert_eq!(back, "/t/foo.com/console/clients");
    let c = "/t/foo.com/console";
    let (status, page, _) = vera.get(&format!("{c}/clients")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(">api-made</a>") && page.contains(">Clients</a>"),
        "{page}"
    );
    for hidden in ["New client", ">Users</a>", ">Roles</a>", ">Settings</a>"] {
        assert!(!page.contains(hidden), "{hidden} shown to a viewer: {page}");
    }
    let (status, page, _) = vera.get(&format!("{c}/clients/api-made")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<dt>Client ID</dt>"), "{page}");
    for hidden in ["Save client", "Rotate secret", ">Delete</a>", "<textarea"] {
        assert!(!page.contains(hidden), "{hidden} shown to a viewer: {page}");
    }
    // What is not shown is refused anyway.
    let (status, _, _) = vera.get(&format!("{c}/clients/new")).await;
    assert_eq!(status, 403);
    let new = format!("{c}/clients");
    let (status, _, page) = vera
        .post(
            &new,
            &format!("{c}/clients/api-made"),
            &[("grant:password", "on")],
            &[],
        )
        .await;
    assert_eq!(status, 403, "{page}");
    let (status, _, _) = vera.get(&format!("{c}/users")).await;
    assert_eq!(status, 403);
    // A file's client is shown with the file's name, read-only for everyone.
    let admin = sign_in_as_foo_admin(&s).await;
    let (_, page, _) = admin.get(&format!("{c}/clients/foo-client")).await;
    assert!(
        page.contains("<code>tenants/foo.com.toml</code>") && !page.contains("Save client"),
        "{page}"
    );
    let (_, page, _) = admin.get(&format!("{c}/settings")).await;
    assert!(
        page.contains("<code>tenants/foo.com.toml</code>") && !page.contains("Save settings"),
        "{page}"
    );
}

on_both_backends!(crate::common::TestServer::for_backend;
    signing_in_goes_through_the_tenants_own_code_flow,
    a_console_change_is_audited_as_made_in_the_console,
    posts_without_the_token_or_from_another_site_are_refused,
    a_session_and_its_client_belong_to_one_tenant,
    a_session_ends_with_its_user_and_needs_a_recent_sign_in_to_delete,
    a_session_made_on_one_instance_works_on_another,
    the_console_signs_in_through_the_single_sign_on_session,
    sessions_that_ended_unseen_are_purged,
    the_super_tenant_makes_a_tenant_whose_admin_manages_it,
    resources_and_the_audit_log_in_the_console,
    a_view_only_admin_sees_read_only_pages,
    a_users_profile_is_set_on_its_page,
);
