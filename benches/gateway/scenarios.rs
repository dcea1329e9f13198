//! The scenarios: what each connection sends, what counts as the right answer, and the
//! order in which the servers are started and measured.

use crate::fixtures::{self, CLIENT_ID, CLIENT_SECRET, USER, USER_PASSWORD};
use crate::load::{Plan, Session, Sessions, Target};
use crate::process::{self, Server};
use crate::{measure, print_table, Options, Row, Workspace, ADMIN_PASSWORD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A session from two closures: the next request, and the judge of its answer.
struct Steps<R, C> {
    request: R,
    check: C,
}

impl<R, C> Session for Steps<R, C>
where
    R: FnMut() -> Option<Request<Full<Bytes>>> + Send,
    C: FnMut(StatusCode, &[u8]) -> bool + Send,
{
    fn request(&mut self) -> Option<Request<Full<Bytes>>> {
        (self.request)()
    }
    fn check(&mut self, status: StatusCode, body: &[u8]) -> bool {
        (self.check)(status, body)
    }
}

pub(crate) fn steps<R, C>(request: R, check: C) -> Box<dyn Session>
where
    R: FnMut() -> Option<Request<Full<Bytes>>> + Send + 'static,
    C: FnMut(StatusCode, &[u8]) -> bool + Send + 'static,
{
    Box::new(Steps { request, check })
}

pub(crate) fn basic(name: &str, secret: &str) -> String {
    let pair = format!("{name}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A GET of `path` with Basic credentials.
pub(crate) fn get(path: &str, authorization: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::AUTHORIZATION, authorization)
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

/// A form POST to `path` with Basic credentials.
fn post(path: &str, authorization: &str, form: String) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::AUTHORIZATION, authorization)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))
        .expect("a valid request")
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_default()
}

fn is_active(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::OK && json(body)["active"] == serde_json::Value::Bool(true)
}

/// The answer's media type a caller asks for.
#[derive(Clone, Copy)]
enum Answer {
    Json,
    /// RFC 9701: a JWT signed with the tenant's key.
    Signed,
}

/// Whether a signed answer says active. The signature itself is the tests' business
/// (tests/signed.rs); here only its shape and claims are read.
fn is_signed_active(status: StatusCode, body: &[u8]) -> bool {
    let claims = body.split(|b| *b == b'.').nth(1).and_then(|c| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
    });
    status == StatusCode::OK
        && body.iter().filter(|b| **b == b'.').count() == 2
        && claims.is_some_and(|c| json(&c)["token_introspection"]["active"] == true)
}

/// Introspects tokens picked from `tokens` in a different order on every connection,
/// as `caller`; every answer must say active.
fn introspections(
    path: &'static str,
    caller: String,
    tokens: Arc<Vec<String>>,
    answer: Answer,
) -> Sessions {
    Arc::new(move |n| {
        let (caller, tokens) = (caller.clone(), tokens.clone());
        let mut next = n.wrapping_mul(7_919);
        steps(
            move || {
                next = next.wrapping_add(1);
                let token = &tokens[next % tokens.len()];
                let mut request = post(path, &caller, format!("token={token}"));
                if let Answer::Signed = answer {
                    let jwt = hyper::header::HeaderValue::from_static(
                        "application/token-introspection+jwt",
                    );
                    request.headers_mut().insert(hyper::header::ACCEPT, jwt);
                }
                Some(request)
            },
            match answer {
                Answer::Json => is_active,
                Answer::Signed => is_signed_active,
            },
        )
    })
}

/// Sends each `(path, caller, token)` introspection once, over all connections
/// together.
fn each_once(requests: Arc<Vec<(String, String, String)>>) -> Sessions {
    let cursor = Arc::new(AtomicUsize::new(0));
    Arc::new(move |_| {
        let (requests, cursor) = (requests.clone(), cursor.clone());
        steps(
            move || {
                let (path, caller, token) = requests.get(cursor.fetch_add(1, Ordering::Relaxed))?;
                Some(post(path, caller, format!("token={token}")))
            },
            is_active,
        )
    })
}

/// Introspects every token of the working set once, so that the measured window sees
/// the steady state: each token cached, as it is for a resource server that asks about
/// the same tokens again and again.
async fn warm(target: &Target, server: &Server, requests: Vec<(String, String, String)>) {
    let walk = Plan {
        connections: 32,
        warmup: Duration::ZERO,
        measure: Duration::from_secs(600),
    };
    let outcome =
        crate::load::drive(target, walk, &each_once(Arc::new(requests)), server.pid()).await;
    if let Some(error) = &outcome.first_error {
        eprintln!(
            "bench: warming had {} wrong answers, the first: {error}",
            outcome.errors
        );
    }
}

/// The super tenant's introspection of each of `tokens` as `caller`.
fn as_caller(caller: &str, tokens: &[String]) -> Vec<(String, String, String)> {
    tokens
        .iter()
        .map(|t| {
            (
                "/oauth2/introspect".to_owned(),
                caller.to_owned(),
                t.clone(),
            )
        })
        .collect()
}

/// Introspects in a tenant picked anew for every request, as that tenant's admin.
fn across_tenants(tokens: Arc<Vec<Vec<String>>>) -> Sessions {
    let callers: Arc<Vec<(String, String)>> = Arc::new(
        (0..tokens.len())
            .map(|n| {
                let domain = fixtures::tenant_domain(n);
                let caller = basic(&format!("admin@{domain}"), fixtures::TENANT_ADMIN_PASSWORD);
                (format!("/t/{domain}/oauth2/introspect"), caller)
            })
            .collect(),
    );
    Arc::new(move |n| {
        let (callers, tokens) = (callers.clone(), tokens.clone());
        let mut next = n.wrapping_mul(7_919);
        steps(
            move || {
                next = next.wrapping_add(104_729);
                let tenant = next % tokens.len();
                let (path, caller) = &callers[tenant];
                let own = &tokens[tenant];
                let token = &own[next / tokens.len() % own.len()];
                Some(post(path, caller, format!("token={token}")))
            },
            is_active,
        )
    })
}

/// The client credentials grant, answered with a fresh access token.
fn client_credentials() -> Sessions {
    let caller = basic(CLIENT_ID, CLIENT_SECRET);
    Arc::new(move |_| {
        let caller = caller.clone();
        steps(
            move || {
                let form = "grant_type=client_credentials".to_owned();
                Some(post("/oauth2/token", &caller, form))
            },
            |status, body| {
                status == StatusCode::OK
                    && json(body)["access_token"]
                        .as_str()
                        .is_some_and(|t| t.len() == 43)
            },
        )
    })
}

/// A chain of refresh grants per connection, started by one password grant; each
/// answer's refresh token is the next request's.
fn refreshes() -> Sessions {
    let caller = basic(CLIENT_ID, CLIENT_SECRET);
    Arc::new(move |_| {
        let caller = caller.clone();
        let current: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let reader = current.clone();
        steps(
            move || {
                let form = match reader.lock().unwrap().as_deref() {
                    Some(refresh) => format!("grant_type=refresh_token&refresh_token={refresh}"),
                    None => format!("grant_type=password&username={USER}&password={USER_PASSWORD}"),
                };
                Some(post("/oauth2/token", &caller, form))
            },
            move |status, body| {
                let answer = json(body);
                let refresh = answer["refresh_token"].as_str().map(str::to_owned);
                let right = status == StatusCode::OK
                    && answer["access_token"].is_string()
                    && refresh.is_some();
                *current.lock().unwrap() = refresh;
                right
            },
        )
    })
}

/// Revokes each token of `tokens` once, over all connections together.
fn revocations(tokens: Arc<Vec<String>>) -> Sessions {
    let caller = basic(CLIENT_ID, CLIENT_SECRET);
    let cursor = Arc::new(AtomicUsize::new(0));
    Arc::new(move |_| {
        let (caller, tokens, cursor) = (caller.clone(), tokens.clone(), cursor.clone());
        steps(
            move || {
                let token = tokens.get(cursor.fetch_add(1, Ordering::Relaxed))?;
                let form = format!("token={token}&token_type_hint=access_token");
                Some(post("/oauth2/revoke", &caller, form))
            },
            |status, _| status == StatusCode::OK,
        )
    })
}

/// The bare server at both connection counts.
async fn baseline(
    workspace: &Workspace,
    options: &Options,
    plan: impl Fn(usize) -> Plan,
    name: &str,
) -> Vec<Row> {
    let log = workspace.disk.path().join("bare.log");
    let bare = process::start_bare(&workspace.cert, &workspace.key, &log);
    let target = workspace.target(&bare);
    // Any body will do: the bare server answers every request alike.
    let any = introspections(
        "/oauth2/introspect",
        String::new(),
        Arc::new(vec!["x".into()]),
        Answer::Json,
    );
    let mut rows = Vec::new();
    for connections in [32, 256] {
        rows.extend(measure(options, name, &target, &bare, plan(connections), &any).await);
    }
    rows
}

/// Waits until the server says it is ready.
async fn ready(target: &Target) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let request = Request::get("/readyz")
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .expect("a request");
        if let Ok((StatusCode::OK, _)) = target.once(request).await {
            return;
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts Portcullis on `database` with the tenant files in `tenants`, and waits until
/// it is ready.
pub(crate) async fn portcullis(
    workspace: &Workspace,
    name: &str,
    database: &str,
    tenants: &std::path::Path,
) -> (Server, Target) {
    let settings = [
        ("DATABASE__URL", database.to_owned()),
        ("TENANTS__DIR", tenants.display().to_string()),
        ("SERVER__TLS__CERT", workspace.cert.display().to_string()),
        ("SERVER__TLS__KEY", workspace.key.display().to_string()),
        (
            "KEYS__MASTER_KEY_FILE",
            workspace
                .disk
                .path()
                .join("master.key")
                .display()
                .to_string(),
        ),
    ];
    let log = workspace.disk.path().join(format!("{name}.log"));
    let server = process::start_portcullis(&settings, &log);
    let target = workspace.target(&server);
    ready(&target).await;
    (server, target)
}

/// Runs every scenario and prints the table; answers how many targets were missed by
/// more than the noise.
pub(crate) async fn run_all(options: Options) -> usize {
    let started = Instant::now();
    let workspace = Workspace::new();
    let plan = |connections| Plan {
        connections,
        warmup: options.warmup,
        measure: options.measure,
    };
    let admin = basic("admin", ADMIN_PASSWORD);
    let client = basic(CLIENT_ID, CLIENT_SECRET);
    let mut rows: Vec<Row> = Vec::new();

    // The baseline, at both connection counts.
    rows.extend(baseline(&workspace, &options, plan, "bare hyper + rustls").await);

    // One tenant on SQLite, on disk: the everyday shape.
    let tenants = workspace.disk.path().join("tenants");
    fixtures::write_super_tenant(&tenants);
    let url = format!(
        "sqlite://{}",
        workspace.disk.path().join("one.db").display()
    );
    let (one, one_target) = portcullis(&workspace, "sqlite", &url, &tenants).await;
    let idle_rss_one_tenant = one.rss_bytes();
    let store = portcullis::store::connect(&url).await.expect("the store");
    let super_id = fixtures::tenant_id(&*store, "carbon.super").await;
    let hot = Arc::new(fixtures::store_tokens(&*store, super_id, 1_000).await);
    let revocable = Arc::new(fixtures::store_tokens(&*store, super_id, options.revocable).await);
    store.close().await;
    warm(&one_target, &one, as_caller(&admin, &hot)).await;
    let scenarios: Vec<(&str, usize, Sessions)> = vec![
        (
            "introspect, allowed client, SQLite",
            32,
            introspections(
                "/oauth2/introspect",
                client.clone(),
                hot.clone(),
                Answer::Json,
            ),
        ),
        (
            "introspect, allowed client, signed (RFC 9701)",
            32,
            introspections(
                "/oauth2/introspect",
                client.clone(),
                hot.clone(),
                Answer::Signed,
            ),
        ),
        ("client_credentials, SQLite", 32, client_credentials()),
        ("client_credentials, SQLite", 256, client_credentials()),
        ("refresh grant, SQLite", 32, refreshes()),
        ("revocation, SQLite", 32, revocations(revocable.clone())),
    ];
    for (name, connections, sessions) in &scenarios {
        rows.extend(
            measure(
                &options,
                name,
                &one_target,
                &one,
                plan(*connections),
                sessions,
            )
            .await,
        );
    }

    let stored = format!("introspect, {} tokens stored, SQLite", options.many_tokens);
    let tenants_row = format!("introspect across {} tenants, SQLite", options.many_tenants);
    let large = if options.wants(&stored) || options.wants(&tenants_row) {
        Some(large_stores(&workspace, &options, &admin, [stored, tenants_row]).await)
    } else {
        None
    };

    // The rows that are compared with each other are measured in turn, round after
    // round: a machine that is busier during one window then moves every row alike
    // instead of one of them, and each round's figures show how far the load moved.
    let mut compared: Vec<(String, &Server, &Target, Sessions)> = vec![(
        ONE_TENANT.to_owned(),
        &one,
        &one_target,
        introspections("/oauth2/introspect", admin.clone(), hot, Answer::Json),
    )];
    if let Some(large) = &large {
        for (name, sessions) in &large.rows {
            compared.push((name.clone(), &large.server, &large.target, sessions.clone()));
        }
    }
    let mut in_rounds: Vec<Row> = Vec::new();
    for _ in 0..options.rounds {
        for (name, server, target, sessions) in &compared {
            let Some(round) = measure(&options, name, target, server, plan(32), sessions).await
            else {
                continue;
            };
            match in_rounds.iter_mut().find(|row| row.scenario == *name) {
                Some(row) => row.absorb(round),
                None => in_rounds.push(round),
            }
        }
    }
    rows.extend(in_rounds);
    let memory = large.map(|large| (large.idle_rss, large.cached_bytes));
    drop(one);

    // PostgreSQL, when there is one.
    let postgres = std::env::var("PORTCULLIS_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    match fixtures::fresh_postgres(&postgres, "portcullis_bench").await {
        Some(url) => {
            let tenants = workspace.disk.path().join("tenants");
            let (server, target) = portcullis(&workspace, "postgres", &url, &tenants).await;
            let store = portcullis::store::connect(&url).await.expect("the store");
            let super_id = fixtures::tenant_id(&*store, "carbon.super").await;
            let hot = Arc::new(fixtures::store_tokens(&*store, super_id, 1_000).await);
            store.close().await;
            warm(&target, &server, as_caller(&admin, &hot)).await;
            let introspection =
                introspections("/oauth2/introspect", admin.clone(), hot, Answer::Json);
            rows.extend(
                measure(
                    &options,
                    "introspect, admin (Basic), PostgreSQL",
                    &target,
                    &server,
                    plan(32),
                    &introspection,
                )
                .await,
            );
            for connections in [32, 256] {
                let row = measure(
                    &options,
                    "client_credentials, PostgreSQL",
                    &target,
                    &server,
                    plan(connections),
                    &client_credentials(),
                )
                .await;
                rows.extend(row);
            }
        }
        None => eprintln!("bench: no PostgreSQL at {postgres}; its scenarios are skipped"),
    }

    // The admin lists at scale, on a database of their own each.
    let lists_postgres = fixtures::fresh_postgres(&postgres, "portcullis_lists").await;
    let lists_plan = plan(crate::lists::CONNECTIONS);
    rows.extend(crate::lists::rows(&workspace, &options, lists_plan, lists_postgres).await);

    // Again at the end: a machine that was busy during one baseline would flatter
    // every ratio, so the table takes the better of the two.
    rows.extend(baseline(&workspace, &options, plan, "bare hyper + rustls, again").await);
    let baseline = print_table(&mut rows);
    if let Some((idle_rss_many_tenants, cached_bytes)) = memory {
        let idle_tenant = idle_rss_many_tenants.saturating_sub(idle_rss_one_tenant) as f64
            / options.many_tenants as f64;
        println!();
        println!(
            "memory: an idle tenant {:.1} KB (anonymous RSS with {} tenants less with one, per tenant); \
             {:.0} bytes per cached active token (anonymous RSS growth over {} more tokens introspected once each)",
            idle_tenant / 1024.0,
            options.many_tenants + 1,
            cached_bytes as f64 / options.cached_tokens as f64,
            options.cached_tokens
        );
    }
    let missed = crate::targets::report(&mut rows, &baseline);
    println!("took {:.0} s", started.elapsed().as_secs_f64());
    if options.keep {
        let disk = workspace.disk.keep();
        let memory = workspace.memory.keep();
        println!("kept: {} and {}", disk.display(), memory.display());
    }
    missed
}

/// The large store: many tenants and a million tokens, each warmed.
struct Large {
    server: Server,
    target: Target,
    /// The million-token row and the many-tenant row.
    rows: Vec<(String, Sessions)>,
    /// RSS right after start, with every tenant loaded.
    idle_rss: u64,
    /// RSS growth over `cached_tokens` more tokens introspected once each.
    cached_bytes: u64,
}

/// Starts the server of the large store, fills and warms it, and measures its memory.
async fn large_stores(
    workspace: &Workspace,
    options: &Options,
    admin: &str,
    [stored, tenants_row]: [String; 2],
) -> Large {
    // Many tenants and a million tokens, in a database in memory where there is one:
    // only set-up would be slower on disk, and reads come from the page cache either way.
    let tenants = workspace.memory.path().join("tenants");
    fixtures::write_super_tenant(&tenants);
    fixtures::write_tenants(&tenants, options.many_tenants);
    let url = format!(
        "sqlite://{}",
        workspace.memory.path().join("many.db").display()
    );
    eprintln!("bench: starting with {} tenants", options.many_tenants + 1);
    let (server, target) = portcullis(workspace, "many", &url, &tenants).await;
    let idle_rss = server.rss_bytes();
    eprintln!("bench: storing {} tokens", options.many_tokens);
    let store = portcullis::store::connect(&url).await.expect("the store");
    let super_id = fixtures::tenant_id(&*store, "carbon.super").await;
    let many = fixtures::store_tokens(&*store, super_id, options.many_tokens).await;
    let ids = store.tenants().await.expect("the tenants");
    let mut per_tenant = Vec::with_capacity(options.many_tenants);
    for n in 0..options.many_tenants {
        let domain = fixtures::tenant_domain(n);
        let id = ids
            .iter()
            .find(|t| t.domain == domain)
            .expect("the tenant")
            .id;
        per_tenant.push(fixtures::store_tokens(&*store, id, 10).await);
    }
    store.close().await;

    // Memory per cached token: introspect fresh tokens once each, twice over, and
    // count only the second round. The first fills what any load fills once (SQLite's
    // page caches, the allocator's arenas), which is not the cache's to answer for.
    let count = options.cached_tokens;
    let mut cached_bytes = 0;
    for round in [&many[..count], &many[count..2 * count]] {
        let before = server.rss_bytes();
        warm(&target, &server, as_caller(admin, round)).await;
        cached_bytes = server.rss_bytes().saturating_sub(before);
    }

    let middle = many.len() / 2;
    let hot_of_many = Arc::new(many[middle..middle + 20_000.min(many.len() - middle)].to_vec());
    let mut working_set = as_caller(admin, &hot_of_many);
    for (n, tokens) in per_tenant.iter().enumerate() {
        let domain = fixtures::tenant_domain(n);
        let path = format!("/t/{domain}/oauth2/introspect");
        let caller = basic(&format!("admin@{domain}"), fixtures::TENANT_ADMIN_PASSWORD);
        working_set.extend(
            tokens
                .iter()
                .map(|t| (path.clone(), caller.clone(), t.clone())),
        );
    }
    warm(&target, &server, working_set).await;

    Large {
        server,
        target,
        rows: vec![
            (
                stored,
                introspections(
                    "/oauth2/introspect",
                    admin.to_owned(),
                    hot_of_many,
                    Answer::Json,
                ),
            ),
            (tenants_row, across_tenants(Arc::new(per_tenant))),
        ],
        idle_rss,
        cached_bytes,
    }
}

/// The row the large stores are compared with.
pub(crate) const ONE_TENANT: &str = "introspect, admin (Basic), SQLite";
