//! Prometheus metrics on `metrics.listen`: the text format or OpenMetrics, as asked,
//! and a listener that held sockets cannot fill.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{Backend, TestServer};

const FOO_ADMIN: (&str, &str) = ("admin@foo.com", "foo-admin-password");
const FOO_CLIENT: (&str, &str) = ("foo-client", "foo-secret");

/// The metrics listener's address, once the server task has bound it.
async fn metrics_address(s: &TestServer) -> std::net::SocketAddr {
    for _ in 0..500 {
        if let Some(address) = s.gateway.metrics_address().as_ref() {
            return *address;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the metrics listener was not bound within 5 s");
}

async fn scrape(s: &TestServer) -> String {
    let address = metrics_address(s).await;
    let response = s
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let media_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        media_type.starts_with("text/plain; version=0.0.4"),
        "{media_type}"
    );
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_tokens_caches_and_locks_are_counted() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    let token = token["access_token"].as_str().unwrap();
    // A miss that fills the token cache, then a hit.
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, token).await);
    assert!(s.is_active("/t/foo.com", FOO_ADMIN, token).await);
    let revoked = s
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", token)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    // Five wrong passwords lock alice.
    for _ in 0..5 {
        let form = [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong-password"),
        ];
        let refused = s
            .post_form("/t/foo.com/oauth2/token", Some(FOO_CLIENT), &form)
            .await;
        assert_eq!(refused.status(), 400);
    }
    // The JWKS reads the tenant's keys: a miss that opens them, then a hit.
    for _ in 0..2 {
        let jwks = s.client.get(s.url("/t/foo.com/oauth2/jwks")).send().await;
        assert_eq!(jwks.unwrap().status(), 200);
    }

    let text = scrape(&s).await;
    let requests = |endpoint: &str, status: u16| {
        let series = format!(
            "portcullis_requests_total{{tenant=\"foo.com\",endpoint=\"{endpoint}\",status=\"{status}\"}}"
        );
        sample(&text, &series)
    };
    assert_eq!(requests("token", 200), 1.0);
    assert_eq!(requests("introspect", 200), 2.0);
    assert_eq!(requests("revoke", 200), 1.0);
    assert_eq!(requests("token", 400), 5.0);
    let issued =
        "portcullis_tokens_issued_total{tenant=\"foo.com\",grant_type=\"client_credentials\"}";
    assert_eq!(sample(&text, issued), 1.0);
    let revoked =
        "portcullis_tokens_revoked_total{tenant=\"foo.com\",reason=\"revoked_by_client\"}";
    assert_eq!(sample(&text, revoked), 1.0);
    let token_hits = "portcullis_cache_requests_total{cache=\"token\",result=\"hit\"}";
    assert!(sample(&text, token_hits) >= 1.0);
    let token_misses = "portcullis_cache_requests_total{cache=\"token\",result=\"miss\"}";
    assert!(sample(&text, token_misses) >= 1.0);
    for result in ["hit", "miss"] {
        let series = format!(
            "portcullis_cache_requests_total{{cache=\"signing_keys\",result=\"{result}\"}}"
        );
        assert_eq!(sample(&text, &series), 1.0, "{series}");
    }
    assert_eq!(
        sample(&text, "portcullis_locked_accounts{tenant=\"foo.com\"}"),
        1.0
    );
    assert_eq!(sample(&text, "portcullis_invalidation_channel_up"), 1.0);
    let introspections = "portcullis_request_duration_seconds_count{endpoint=\"introspect\"}";
    assert_eq!(sample(&text, introspections), 2.0);
    assert!(text.contains("# TYPE portcullis_invalidation_delay_seconds histogram"));
    // No secret or token ever becomes a label.
    for secret in [token, "foo-secret", "wrong-password", "foo-admin-password"] {
        assert!(!text.contains(secret), "the metrics carry {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_another_instance_are_timed() {
    let Some(a) = TestServer::start_postgres().await else {
        return;
    };
    let b = TestServer::start_on(
        common::TestDatabase::shared_with(&a.database),
        common::default_tenant_files(),
        |_| {},
    )
    .await;
    let token = a
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    let token = token["access_token"].as_str().unwrap();
    let revoked = a
        .post_form(
            "/t/foo.com/oauth2/revoke",
            Some(FOO_CLIENT),
            &[("token", token)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let started = std::time::Instant::now();
    loop {
        let text = scrape(&b).await;
        if sample(&text, "portcullis_invalidation_delay_seconds_count") >= 1.0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Without an `Accept` naming OpenMetrics, the answer is the text format, which
/// Prometheus's own checker passes without a finding; a scraper that names
/// OpenMetrics (as Prometheus does) gets OpenMetrics, and is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scraper_gets_the_format_it_asked_for_and_is_told_which() {
    let s = TestServer::start(Backend::Sqlite).await;
    let token = s
        .client_token("/t/foo.com/oauth2/token", FOO_CLIENT, None)
        .await;
    assert!(
        s.is_active(
            "/t/foo.com",
            FOO_ADMIN,
            token["access_token"].as_str().unwrap()
        )
        .await
    );
    let text = scrape(&s).await;
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(text.contains("# HELP portcullis_requests_total "), "{text}");
    assert!(
        text.contains("# TYPE portcullis_requests_total counter"),
        "{text}"
    );
    promtool_finds_nothing_in(&text);

    let address = metrics_address(&s).await;
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let response = s
        .client
        .get(format!("http://{address}/metrics"))
        .header("Accept", prometheus_accept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let openmetrics = response.text().await.unwrap();
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE portcullis_requests counter"));
}

/// Runs `promtool check metrics` (Debian's `prometheus` package, which `.ci/run`
/// installs) on `text`, and fails on any finding.
fn promtool_finds_nothing_in(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: promtool is not installed ({e}); .ci/run installs it");
            return;
        }
        Err(e) => panic!("promtool is needed in CI: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool: {findings}\n{text}"
    );
}

/// Idle sockets held on the metrics port are capped and closed after the idle
/// timeout; while they are held, the API port goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sockets_on_the_metrics_port_are_capped_and_timed_out() {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start_with(Backend::Sqlite, common::default_tenant_files(), |c| {
        c.metrics.max_connections = 4;
        c.metrics.idle_timeout_ms = 700;
    })
    .await;
    let address = metrics_address(&s).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }
    // Past the cap a connection is closed at once.
    for _ in 0..20 {
        let mut refused = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(2), refused.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
    let health = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The held sockets end by themselves after the idle timeout, freeing the places.
    let started = std::time::Instant::now();
    for socket in &mut held {
        let mut byte = [0u8; 1];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let text = scrape(&s).await;
    assert!(text.contains("portcullis_requests_total"));
}
