//! Two `portcullis serve` processes on one PostgreSQL database behind Debian's HAProxy
//! (TLS passed through, PROXY v2) and nginx (TLS terminated, X-Forwarded-For), each run
//! from its file in `deploy/` with this test's ports and addresses filled in.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestDatabase};
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: (&str, &str) = ("admin", common::ADMIN_PASSWORD);
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");

/// Where the test's requests come from, so that the balancers' own address (127.0.0.1)
/// is never mistaken for the client's.
const CLIENT_BEHIND_HAPROXY: &str = "127.0.0.7";
const CLIENT_BEHIND_NGINX: &str = "127.0.0.8";

/// A child process stopped when the test ends, however it ends: asked with SIGTERM
/// first (nginx's master takes its workers with it only then), killed after a while.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `portcullis serve` on `port`, with its metrics on `metrics_port`.
struct Instance {
    process: Process,
    port: u16,
    metrics_port: u16,
    _dir: tempfile::TempDir,
}

/// Which balancer the instances stand behind.
#[derive(Clone, Copy, PartialEq)]
enum Balancer {
    Haproxy,
    Nginx,
}

fn tool(name: &str) -> Option<String> {
    let found = ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).exists());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {name} is not installed: .ci/run installs it");
        }
        eprintln!("skipped: {name} is not installed (apt-get install haproxy nginx)");
    }
    found
}

fn start_instance(database: &TestDatabase, behind: Balancer) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    for (domain, text) in common::default_tenant_files() {
        std::fs::write(tenants.join(format!("{domain}.toml")), text).unwrap();
    }
    let (port, metrics_port) = (common::free_port(), common::free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .arg("serve")
        .current_dir(dir.path())
        .env("PORTCULLIS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS__DATABASE__URL", &database.url)
        .env("PORTCULLIS__KEYS__MASTER_KEY_FILE", &database.master_key)
        .env("PORTCULLIS__TENANTS__DIR", &tenants)
        .env("PORTCULLIS__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")
        .env("PORTCULLIS__SERVER__SHUTDOWN_GRACE_MS", "1000")
        .env(
            "PORTCULLIS__METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("PORTCULLIS_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    match behind {
        Balancer::Haproxy => command.env("PORTCULLIS__SERVER__PROXY_PROTOCOL", "true"),
        Balancer::Nginx => command.env("PORTCULLIS__SERVER__TLS__ENABLED", "false"),
    };
    let process = Process(command.spawn().unwrap());
    let instance = Instance {
        process,
        port,
        metrics_port,
        _dir: dir,
    };
    wait_for_port(metrics_port);
    instance
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A balancer's file from `deploy/`, with `replacements` made; each must be found.
fn filled_in(file: &str, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(Path::new("deploy").join(file)).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{file} no longer holds {from:?}");
        text = text.replace(from, to);
    }
    text
}

fn start_haproxy(haproxy: &str, port: u16, a: &Instance, b: &Instance, dir: &Path) -> Process {
    let config = filled_in(
        "haproxy.cfg",
        &[
            ("bind 0.0.0.0:443", format!("bind 127.0.0.1:{port}")),
            ("10.0.0.11:9443", format!("127.0.0.1:{}", a.port)),
            ("10.0.0.12:9443", format!("127.0.0.1:{}", b.port)),
        ],
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let process = Process(
        Command::new(haproxy)
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    process
}

fn start_nginx(nginx: &str, port: u16, a: &Instance, b: &Instance, dir: &Path) -> Process {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    portcullis::server::tls::generate(&cert, &key, &["127.0.0.1".into()]).unwrap();
    let config = filled_in(
        "nginx.conf",
        &[
            ("listen 443 ssl", format!("listen 127.0.0.1:{port} ssl")),
            ("10.0.0.11:9080", format!("127.0.0.1:{}", a.port)),
            ("10.0.0.12:9080", format!("127.0.0.1:{}", b.port)),
            ("/etc/portcullis/tls/server.crt", cert.display().to_string()),
            ("/etc/portcullis/tls/server.key", key.display().to_string()),
            (
                "/run/nginx-portcullis.pid",
                dir.join("nginx.pid").display().to_string(),
            ),
        ],
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let process = Process(
        Command::new(nginx)
            .args(["-g", "daemon off;", "-p"])
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    process
}

/// A client from `source` that opens a new connection for every request, so that the
/// balancer chooses an instance every time. The instances' certificates are
/// self-signed, each its own: the balancers are under test here, not TLS trust.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: &str, auth: (&str, &str), body: &str) -> (u16, Value) {
    let response = client
        .post(url)
        .basic_auth(auth.0, Some(auth.1))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Token requests served by an instance, from its own metrics.
async fn token_requests_served(instance: &Instance) -> f64 {
    let text = reqwest::get(format!(
        "http://127.0.0.1:{}/metrics",
        instance.metrics_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    text.lines()
        .filter(|l| l.starts_with("portcullis_requests_total{") && l.contains("endpoint=\"token\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Checks what both balancers must do: spread requests over both instances, carry the
/// client's address to the audit log, and make a revocation through them effective at
/// once.
async fn balanced(base: &str, client: &reqwest::Client, a: &Instance, b: &Instance, source: &str) {
    let introspect_url = format!("{base}/oauth2/introspect");
    let mut token = String::new();
    for _ in 0..10 {
        let (status, body) = post(
            client,
            &format!("{base}/t/foo.com/oauth2/token"),
            FOO_CLIENT,
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        token = body["access_token"].as_str().unwrap().to_owned();
    }
    assert!(
        token_requests_served(a).await > 0.0,
        "instance A got no request"
    );
    assert!(
        token_requests_served(b).await > 0.0,
        "instance B got no request"
    );

    // The client's own address reaches the audit log.
    let (status, _) = post(
        client,
        &introspect_url,
        ("admin", "not-the-password"),
        "token=x",
    )
    .await;
    assert_eq!(status, 401);
    let audit = client
        .get(format!("{base}/api/v1/audit"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    let audit: Value = audit.json().await.unwrap();
    let failure = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.signin_failure")
        .expect("the failed sign-in is audited");
    assert_eq!(failure["client_address"], source);

    // A revocation through the balancer is seen through it at once, whichever
    // instance answers.
    let foo_introspect = format!("{base}/t/foo.com/oauth2/introspect");
    let foo_admin = ("admin@foo.com", "foo-admin-password");
    let body = format!("token={token}");
    for _ in 0..4 {
        let (_, answer) = post(client, &foo_introspect, foo_admin, &body).await;
        assert_eq!(answer["active"], true);
    }
    let revoke_url = format!("{base}/t/foo.com/oauth2/revoke");
    let (status, _) = post(client, &revoke_url, FOO_CLIENT, &body).await;
    assert_eq!(status, 200);
    for _ in 0..6 {
        let (_, answer) = post(client, &foo_introspect, foo_admin, &body).await;
        assert_eq!(answer["active"], false);
    }
}

/// Two instances on one fresh PostgreSQL database behind a running balancer, both
/// serving through it; `None` when the balancer or PostgreSQL is missing outside CI.
struct Deployment {
    a: Instance,
    /// Serves beside A until the deployment is dropped.
    _b: Instance,
    base: String,
    client: reqwest::Client,
    _balancer: Process,
    _dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl Balancer {
    /// Where the test's requests come from behind this balancer.
    fn client_address(self) -> &'static str {
        match self {
            Balancer::Haproxy => CLIENT_BEHIND_HAPROXY,
            Balancer::Nginx => CLIENT_BEHIND_NGINX,
        }
    }
}

async fn deploy(behind: Balancer) -> Option<Deployment> {
    let program = tool(match behind {
        Balancer::Haproxy => "haproxy",
        Balancer::Nginx => "nginx",
    })?;
    common::postgres_url()?;
    let database = TestDatabase::new(Backend::Postgres).await;
    let a = start_instance(&database, behind);
    let b = start_instance(&database, behind);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let balancer = match behind {
        Balancer::Haproxy => start_haproxy(&program, port, &a, &b, dir.path()),
        Balancer::Nginx => start_nginx(&program, port, &a, &b, dir.path()),
    };
    let base = format!("https://127.0.0.1:{port}");
    let client = client_from(behind.client_address());
    // Until the balancer's health checks have seen both instances up.
    wait_until_both_serve(&client, &base).await;
    balanced(&base, &client, &a, &b, behind.client_address()).await;
    Some(Deployment {
        a,
        _b: b,
        base,
        client,
        _balancer: balancer,
        _dir: dir,
        _database: database,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_two_instances_share_the_load_and_drain_without_a_failure() {
    let Some(deployment) = deploy(Balancer::Haproxy).await else {
        return;
    };
    let Deployment {
        mut a,
        base,
        client,
        ..
    } = deployment;

    // A steady stream of introspections while A gets SIGTERM: readiness turns 503,
    // HAProxy takes A out, A's in-flight requests finish, and not one request fails.
    let token = {
        let url = format!("{base}/t/foo.com/oauth2/token");
        let (_, body) = post(&client, &url, FOO_CLIENT, "grant_type=client_credentials").await;
        body["access_token"].as_str().unwrap().to_owned()
    };
    let stream = {
        let client = client.clone();
        let url = format!("{base}/t/foo.com/oauth2/introspect");
        let body = format!("token={token}");
        tokio::spawn(async move {
            let (mut served, mut failed) = (0, Vec::new());
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                let response = client
                    .post(&url)
                    .basic_auth("admin@foo.com", Some("foo-admin-password"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => served += 1,
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (served, failed)
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let a_pid = a.process.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &a_pid])
        .status()
        .unwrap()
        .success());
    let (served, failed) = stream.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        served + failed.len()
    );
    assert!(served > 20, "only {served} requests in five seconds");
    let exit = wait_for_exit(&mut a.process.0);
    assert_eq!(exit, Some(0), "A did not drain and exit 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_two_instances_share_the_load_and_see_the_client() {
    // `deploy` checks the sharing, the client's address and revocations through it.
    deploy(Balancer::Nginx).await;
}

/// Until a request through the balancer is answered (both instances started).
async fn wait_until_both_serve(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = client.get(format!("{base}/readyz")).send().await;
        if ok.is_ok_and(|r| r.status() == 200) {
            // Both backends must be up in the balancer's view: a few more in a row.
            let mut all = true;
            for _ in 0..6 {
                let r = client.get(format!("{base}/readyz")).send().await;
                all &= r.is_ok_and(|r| r.status() == 200);
            }
            if all {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the balancer never served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_for_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
