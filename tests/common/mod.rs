//! The end-to-end harness: starts the real TLS server in-process on 127.0.0.1:0 over
//! SQLite or PostgreSQL, with tenant files written for the test, and talks to it with
//! a real HTTPS client.

use portcullis::config::Config;
use portcullis::service::credentials::hash_blocking;
use portcullis::service::Gateway;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;

pub mod fill;
pub mod flow;
pub mod html;

pub const ADMIN_PASSWORD: &str = "admin-password";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed test once per backend, as the tests `NAME::sqlite` and
/// `NAME::postgres`. `setup(Backend)` opens what every test takes; it answers `None`
/// only for PostgreSQL outside CI when no database is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($setup:path; $($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(it) = $setup($crate::common::Backend::Sqlite).await {
                        super::$name(it).await;
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(it) = $setup($crate::common::Backend::Postgres).await {
                        super::$name(it).await;
                    }
                }
            }
        )+
    };
}

/// The PostgreSQL URL for tests, or `None` (with a note) when it is unset outside CI.
/// In CI an unset URL fails the test: PostgreSQL tests never skip silently there.
pub fn postgres_url() -> Option<String> {
    match std::env::var("PORTCULLIS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but PORTCULLIS_TEST_DATABASE_URL is unset: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!("skipped: PORTCULLIS_TEST_DATABASE_URL is unset, so this PostgreSQL test did not run");
            None
        }
    }
}

/// A database for one test: a temporary SQLite file, or a fresh PostgreSQL schema. A
/// clone names the same database and keeps its folder alive after a server stops.
#[derive(Clone)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    /// Where the SQLite file lives (kept alive for the test).
    pub dir: Arc<tempfile::TempDir>,
    /// The master key file every instance on this database shares.
    pub master_key: PathBuf,
    /// Drops the PostgreSQL schema when the last clone goes.
    _schema: Option<Arc<SchemaDropper>>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut dropper = None;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("portcullis.db").display()),
            Backend::Postgres => {
                let base = postgres_url().expect("postgres URL");
                let schema = format!("t_{}", random_suffix());
                let pool = sqlx::postgres::PgPool::connect(&base)
                    .await
                    .expect("PostgreSQL reachable");
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                dropper = Some(Arc::new(SchemaDropper { base, schema }));
                url
            }
        };
        let master_key = dir.path().join("master.key");
        TestDatabase {
            url,
            backend,
            dir,
            master_key,
            _schema: dropper,
        }
    }

    /// The same database again, for a second instance beside the first.
    pub fn shared_with(other: &TestDatabase) -> Self {
        TestDatabase {
            url: other.url.clone(),
            backend: other.backend,
            dir: Arc::new(tempfile::tempdir().unwrap()),
            master_key: other.master_key.clone(),
            _schema: other._schema.clone(),
        }
    }
}

/// A test's PostgreSQL schema, dropped when the test is done with it: the database
/// outlives every run, and the million-event test alone leaves half a gigabyte.
struct SchemaDropper {
    base: String,
    schema: String,
}

impl Drop for SchemaDropper {
    fn drop(&mut self) {
        let (base, schema) = (self.base.clone(), self.schema.clone());
        // Drop runs on the test's runtime, which cannot wait on itself: the drop gets a
        // thread and a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let pool = sqlx::postgres::PgPool::connect(&base).await?;
                // A server still closing may hold a lock for a moment; never wait long.
                let mut tx = pool.begin().await?;
                sqlx::query("SET LOCAL lock_timeout = '10s'")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("note: the test schema {} was left behind", self.schema);
        }
    }
}

impl TestDatabase {
    /// Ends every instance's notice listener on this PostgreSQL database, as a failover
    /// or a connection reaper would; returns how many it ended.
    pub async fn cut_listeners(&self) -> usize {
        let schema = self.url.rsplit("search_path%3D").next().unwrap();
        let listening = format!("LISTEN \"portcullis.{schema}%");
        let admin = sqlx::postgres::PgPool::connect(&postgres_url().unwrap())
            .await
            .unwrap();
        let cut: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1",
        )
        .bind(&listening)
        .fetch_all(&admin)
        .await
        .unwrap();
        admin.close().await;
        cut.len()
    }
}

/// A port that was free a moment ago, for child processes that need one on the command
/// line (chromedriver, a `serve` under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// argon2 hashes of test secrets, computed once per test binary.
pub fn hash_of(secret: &str) -> String {
    static HASHES: OnceLock<std::sync::Mutex<HashMap<String, String>>> = OnceLock::new();
    let map = HASHES.get_or_init(Default::default);
    let mut map = map.lock().unwrap();
    map.entry(secret.to_owned())
        .or_insert_with(|| hash_blocking(secret).unwrap())
        .clone()
}

/// The tenant files every end-to-end test starts with.
/// `text` of a tenant file without the `[[…]]` block that holds `key` (as in
/// `username = "alice"`).
pub fn without_block(text: &str, key: &str) -> String {
    let at = text.find(key).unwrap();
    let start = text[..at].rfind("[[").unwrap();
    let end = text[at..].find("[[").map_or(text.len(), |n| at + n);
    format!("{}{}", &text[..start], &text[end..])
}

pub fn default_tenant_files() -> Vec<(String, String)> {
    let client = |id: &str, secret: &str, grants: &str, scopes: &str| {
        format!(
            "[[clients]]\nclient_id = \"{id}\"\nclient_secret_hash = \"{}\"\ngrant_types = [{grants}]\nscopes = [{scopes}]\n",
            hash_of(secret)
        )
    };
    let all = "\"client_credentials\", \"password\", \"refresh_token\"";
    let user = |name: &str, password: &str, roles: &str| {
        format!(
            "[[users]]\nusername = \"{name}\"\npassword_hash = \"{}\"\nroles = [{roles}]\n",
            hash_of(password)
        )
    };
    let view = "/permission/admin/manage/identity/applicationmgt/view";
    let super_tenant = format!(
        "domain = \"carbon.super\"\n\
         [[roles]]\nname = \"introspector\"\npermissions = [\"{view}\"]\n\
         [[roles]]\nname = \"viewer-ish\"\npermissions = [\"{view}er\"]\n\
         [[roles]]\nname = \"everything\"\npermissions = [\"/permission\"]\n\
         {}{}{}{}{}{}",
        client("super-client", "super-secret", all, ""),
        client("super_under_score", "s+cret/with=odd&chars", all, ""),
        user("admin", ADMIN_PASSWORD, "\"everything\""),
        user("viewer", "viewer-password", "\"introspector\""),
        user("nobody", "nobody-password", ""),
        user("sibling", "sibling-password", "\"viewer-ish\""),
    );
    let foo_tenant = format!(
        "domain = \"foo.com\"\n\
         [[roles]]\nname = \"admin\"\npermissions = [\"/permission/admin\"]\n\
         {}{}{}{}{}{}\
         [introspection]\nallowed_clients = [\"foo-allowed\"]\n",
        user("admin", "foo-admin-password", "\"admin\""),
        user("alice", "alice-password", ""),
        client("foo-client", "foo-secret", all, ""),
        client("foo-other", "other-secret", all, ""),
        client(
            "foo-allowed",
            "allowed-secret",
            "\"client_credentials\"",
            ""
        ),
        client(
            "foo-narrow",
            "narrow-secret",
            "\"client_credentials\"",
            "\"read\", \"write\""
        ),
    );
    let foo_tenant = format!(
        "{foo_tenant}\
         [[clients]]\nclient_id = \"foo-spa\"\ngrant_types = [\"authorization_code\", \"refresh_token\"]\n\
         redirect_uris = [\"https://spa.foo.com/callback\", \"http://127.0.0.1/callback\"]\nscopes = [\"read\", \"write\"]\n\
         [[clients]]\nclient_id = \"foo-web\"\nclient_secret_hash = \"{}\"\n\
         grant_types = [\"authorization_code\", \"refresh_token\"]\nredirect_uris = [\"https://web.foo.com/cb?from=portcullis\"]\n\
         require_pkce = false\n\
         [[clients]]\nclient_id = \"foo-nocode\"\nclient_secret_hash = \"{}\"\n\
         grant_types = [\"client_credentials\"]\nredirect_uris = [\"https://nocode.foo.com/cb\"]\n",
        hash_of("web-secret"),
        hash_of("nocode-secret")
    );
    let bar = format!(
        "domain = \"bar.com\"\n[[roles]]\nname = \"admin\"\npermissions = [\"/permission/admin\"]\n{}{}",
        user("admin", "bar-admin-password", "\"admin\""),
        client("bar-client", "bar-secret", all, ""),
    );
    let short = format!(
        "domain = \"short.com\"\n[tokens]\naccess_token_ttl = 2\nrefresh_token_ttl = 3\nauthorization_code_ttl = 1\n\
         [[roles]]\nname = \"admin\"\npermissions = [\"/permission/admin\"]\n{}{}",
        user("admin", "short-admin-password", "\"admin\""),
                client("short-client", "short-secret", "\"client_credentials\", \"password\", \"refresh_token\", \"authorization_code\"", ""),
    );
    vec![
        ("carbon.super".into(), super_tenant),
        ("foo.com".into(), foo_tenant),
        ("bar.com".into(), bar),
        ("short.com".into(), short),
    ]
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub gateway: Arc<Gateway>,
    pub database: TestDatabase,
    pub cert_pem: Vec<u8>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, default_tenant_files(), |_| {}).await
    }

    /// The server over `backend`; `None` for PostgreSQL when no database is configured.
    pub async fn for_backend(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::start(Backend::Sqlite).await),
            Backend::Postgres => Self::start_postgres().await,
        }
    }

    /// Like [`TestServer::for_backend`], with the configuration changed by `adjust`.
    pub async fn for_backend_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        if backend == Backend::Postgres {
            postgres_url()?;
        }
        Some(Self::start_with(backend, default_tenant_files(), adjust).await)
    }

    pub async fn start_postgres() -> Option<Self> {
        postgres_url()?;
        Some(Self::start(Backend::Postgres).await)
    }

    /// Starts a server over `backend` with these tenant files; `adjust` may change the
    /// configuration first.
    pub async fn start_with(
        backend: Backend,
        tenants: Vec<(String, String)>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_on(TestDatabase::new(backend).await, tenants, adjust).await
    }

    /// Starts a server over a database the test prepared (an upgrade fixture).
    pub async fn start_on(
        database: TestDatabase,
        tenants: Vec<(String, String)>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let tenants_dir = tempfile::tempdir().unwrap();
        for (domain, text) in &tenants {
            std::fs::write(tenants_dir.path().join(format!("{domain}.toml")), text).unwrap();
        }
        let cert_dir = tempfile::tempdir().unwrap();
        let (cert, key) = (
            cert_dir.path().join("server.crt"),
            cert_dir.path().join("server.key"),
        );
        portcullis::server::tls::generate(&cert, &key, &["localhost".into(), "127.0.0.1".into()])
            .unwrap();

        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.tls.cert = cert.clone();
        config.server.tls.key = key.clone();
        config.database.url = database.url.clone();
        config.keys.master_key_file = database.master_key.clone();
        config.tenants.dir = tenants_dir.path().to_path_buf();
        config.server.shutdown_grace_ms = 0;
        // A port of its own for every test server; `gateway.metrics_address` says which.
        config.metrics.listen = "127.0.0.1:0".into();
        adjust(&mut config);
        config.validate().unwrap();
        let config = Arc::new(config);

        let (gateway, _) = portcullis::prepare(config.clone(), Some(ADMIN_PASSWORD.into()))
            .await
            .unwrap();
        let tls = portcullis::tls_acceptor(&config).unwrap();
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(portcullis::serve(listener, gateway.clone(), tls, async {
            let _ = rx.await;
        }));
        let cert_pem = std::fs::read(&cert).unwrap();
        let client = https_client(&cert_pem, false);
        TestServer {
            base: format!("https://127.0.0.1:{port}"),
            client,
            gateway,
            database,
            cert_pem,
            shutdown: Some(tx),
            task: Some(task),
            _dirs: vec![tenants_dir, cert_dir],
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a form; `auth` is `(user, password)` for Basic.
    pub async fn post_form(
        &self,
        path: &str,
        auth: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(encode_form(form));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await.unwrap()
    }

    /// A client-credentials token for `client` at `path`'s token endpoint.
    pub async fn client_token(
        &self,
        path: &str,
        client: (&str, &str),
        scope: Option<&str>,
    ) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self.post_form(path, Some(client), &form).await;
        assert_eq!(response.status(), 200, "token request failed");
        response.json().await.unwrap()
    }

    /// A password-grant token pair.
    pub async fn password_token(
        &self,
        path: &str,
        client: (&str, &str),
        user: (&str, &str),
    ) -> Value {
        let response = self
            .post_form(
                path,
                Some(client),
                &[
                    ("grant_type", "password"),
                    ("username", user.0),
                    ("password", user.1),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "password grant failed");
        response.json().await.unwrap()
    }

    /// Introspects `token` at `path` as `caller` and returns (status, body).
    pub async fn introspect(&self, path: &str, caller: (&str, &str), token: &str) -> (u16, Value) {
        let response = self
            .post_form(path, Some(caller), &[("token", token)])
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Whether `token` is active, asked by the tenant's admin.
    pub async fn is_active(&self, tenant_path: &str, admin: (&str, &str), token: &str) -> bool {
        let (status, body) = self
            .introspect(&format!("{tenant_path}/oauth2/introspect"), admin, token)
            .await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn https_client(cert_pem: &[u8], http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30));
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

impl TestServer {
    /// Calls the admin API: `(status, JSON body or Null)`.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        auth: (&str, &str),
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, self.url(path))
            .basic_auth(auth.0, Some(auth.1));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a user through the admin API under `tenant` (`""` or `/t/{domain}`),
    /// so that the API may change everything about it; a tenant file's users are the
    /// file's.
    pub async fn api_user(
        &self,
        tenant: &str,
        admin: (&str, &str),
        username: &str,
        password: &str,
        roles: &[&str],
    ) {
        let body = serde_json::json!({"username": username, "password": password, "roles": roles});
        let (status, user) = self
            .api("POST", &format!("{tenant}/api/v1/users"), admin, Some(body))
            .await;
        assert_eq!(status, 201, "{user}");
    }

    /// Registers a confidential client with the client credentials, password and
    /// refresh grants through the admin API under `tenant`; returns its secret.
    pub async fn api_client(&self, tenant: &str, admin: (&str, &str), client_id: &str) -> String {
        let body = serde_json::json!({
            "client_id": client_id,
            "grant_types": ["client_credentials", "password", "refresh_token"],
        });
        let (status, client) = self
            .api(
                "POST",
                &format!("{tenant}/api/v1/clients"),
                admin,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{client}");
        client["client_secret"].as_str().unwrap().to_owned()
    }
}

impl TestServer {
    /// A user of foo.com whose one role holds `…/applicationmgt/view`, under rules that
    /// ask for it to read clients and for `…/applicationmgt` to change them (and for
    /// `/permission/admin` on the rest of the API): a view-only admin of clients.
    pub async fn foo_client_viewer(&self, username: &str, password: &str) {
        let admin = ("admin@foo.com", "foo-admin-password");
        let view = "/permission/admin/manage/identity/applicationmgt/view";
        let rules = serde_json::json!({"resources": [
            {"context": "(.*)/api/v1/clients(.*)", "http_method": "GET", "permissions": [view]},
            {"context": "(.*)/api/v1/clients(.*)", "permissions": ["/permission/admin/manage/identity/applicationmgt"]},
            {"context": "(.*)/api/v1/(.*)", "permissions": ["/permission/admin"]},
        ]});
        let (status, body) = self
            .api("PUT", "/t/foo.com/api/v1/resources", admin, Some(rules))
            .await;
        assert_eq!(status, 200, "{body}");
        let role = serde_json::json!({"name": "viewer", "permissions": [view]});
        let (status, body) = self
            .api("POST", "/t/foo.com/api/v1/roles", admin, Some(role))
            .await;
        assert_eq!(status, 201, "{body}");
        self.api_user("/t/foo.com", admin, username, password, &["viewer"])
            .await;
    }
}

/// A TLS connection to the server from `source` (a loopback address), kept open and
/// idle by the caller.
pub async fn tls_connection_from(
    s: &TestServer,
    source: std::net::IpAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_connection_with(s, source, &[]).await.unwrap()
}

/// A TLS connection to `s` from `source`, with `preamble` (a PROXY header) sent on the
/// TCP connection before the handshake.
pub async fn tls_connection_with(
    s: &TestServer,
    source: std::net::IpAddr,
    preamble: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::AsyncWriteExt;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&s.cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server: std::net::SocketAddr = s.base.trim_start_matches("https://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
    let mut tcp = socket.connect(server).await?;
    tcp.write_all(preamble).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

/// A and B on one PostgreSQL database; `None` when no database is configured.
pub async fn two_instances() -> Option<(TestServer, TestServer)> {
    let a = TestServer::start_postgres().await?;
    let b = TestServer::start_on(
        TestDatabase::shared_with(&a.database),
        default_tenant_files(),
        |_| {},
    )
    .await;
    Some((a, b))
}

/// Until `s` trusts its caches: its listener has heard its own heartbeat.
pub async fn settled(s: &TestServer) {
    let started = std::time::Instant::now();
    while !s.gateway.caches_trusted() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "never trusted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Cuts both instances' notice listeners (A and B share `a`'s database) and waits
/// until `b` has noticed and stopped trusting its caches.
pub async fn cut_off(a: &TestServer, b: &TestServer) {
    assert_eq!(
        a.database.cut_listeners().await,
        2,
        "one listener per instance"
    );
    let started = std::time::Instant::now();
    while b.gateway.caches_trusted() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "B never noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// The super tenant's administrator, as every test server creates it.
pub fn super_admin() -> (&'static str, &'static str) {
    ("admin", ADMIN_PASSWORD)
}
