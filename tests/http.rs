//! End-to-end: bad input, HTTP/1.1 and HTTP/2, timeouts against slow clients, health
//! and draining.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use common::{default_tenant_files, Backend, TestServer, ADMIN_PASSWORD};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A raw HTTP/1.1-over-TLS connection, to control exactly what goes on the wire.
async fn raw_connection(s: &TestServer) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&s.cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let addr = s.base.trim_start_matches("https://").to_owned();
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads one response: status and body (by Content-Length). `None` when the server
/// closed the connection first.
async fn read_response(stream: &mut TlsStream<TcpStream>) -> Option<(u16, String)> {
    read_answer(stream)
        .await
        .map(|answer| (answer.status, answer.body))
}

struct Answer {
    status: u16,
    /// The head, lowercased.
    head: String,
    body: String,
}

impl Answer {
    fn closes(&self) -> bool {
        self.head.contains("\r\nconnection: close\r\n")
    }
}

/// Reads one response whole; `None` when the server closed the connection first.
async fn read_answer(stream: &mut TlsStream<TcpStream>) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Answer {
        status,
        head,
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string(),
    })
}

/// True once the server has closed `stream` (end of stream or a reset), within 5 s.
async fn closed_by_server(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn form_request(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

async fn wrong_methods_get_405_with_allow(s: TestServer) {
    let r = s.client.get(s.url("/oauth2/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
    let r = s.client.post(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    let r = s
        .client
        .delete(s.url("/t/foo.com/oauth2/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

async fn unknown_paths_get_404_json(s: TestServer) {
    for path in [
        "/",
        "/nope",
        "/oauth2/token/",
        "/t/foo.com/oauth2/nope",
        "/api/v2/x",
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    }
}

async fn bad_bodies_are_400_and_the_connection_survives(s: TestServer) {
    let mut conn = raw_connection(&s).await;
    let admin = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"))
    };
    let auth = format!("Authorization: Basic {admin}\r\n");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            form_request(
                "/oauth2/introspect",
                "Authorization: Basic !!notbase64\r\n",
                b"token=x",
            ),
            "Basic",
        ),
        (
            form_request(
                "/oauth2/introspect",
                "Authorization: Basic bm9jb2xvbg==\r\n",
                b"token=x",
            ),
            "':'",
        ),
        (
            form_request("/oauth2/introspect", &auth, b"token=a&token=b"),
            "repeated",
        ),
        (
            form_request("/oauth2/introspect", &auth, b"token=%ff%fe"),
            "UTF-8",
        ),
        (
            form_request(
                "/oauth2/token",
                "",
                b"grant_type=client_credentials&grant_type=password",
            ),
            "repeated",
        ),
    ];
    for (request, needle) in cases {
        conn.write_all(&request).await.unwrap();
        let (status, body) = read_response(&mut conn).await.expect("a response");
        assert_eq!(status, 400, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"].as_str().unwrap().contains(needle),
            "{body}"
        );
        // The same connection serves the next request.
        conn.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(&mut conn).await.expect("still open").0, 200);
    }
}

async fn a_non_form_body_is_invalid_request(s: TestServer) {
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let mut request = s
            .client
            .post(s.url("/oauth2/token"))
            .basic_auth("super-client", Some("super-secret"))
            .body("grant_type=client_credentials");
        if let Some(ct) = content_type {
            request = request.header("Content-Type", ct);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 400, "{content_type:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    // Parameters after the media type are ignored; case does not matter.
    let r = s
        .client
        .post(s.url("/oauth2/token"))
        .basic_auth("super-client", Some("super-secret"))
        .header(
            "Content-Type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        )
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn bodies_over_64_kib_are_413(s: TestServer) {
    let big = format!("token={}", "a".repeat(70 * 1024));
    let r = s
        .client
        .post(s.url("/oauth2/introspect"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Just under the limit is fine.
    let ok = format!("token={}", "a".repeat(60 * 1024));
    let r = s
        .client
        .post(s.url("/oauth2/introspect"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn http2_and_http1_are_both_served(s: TestServer) {
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let h1 = common::https_client(&s.cert_pem, true);
    let r = h1.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), 200);
}

async fn answers_are_json_and_not_cached(s: TestServer) {
    let r = s
        .post_form(
            "/oauth2/token",
            Some(("super-client", "super-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert!(body["expires_in"].is_i64());
}

async fn readiness_turns_503_when_draining(s: TestServer) {
    assert_eq!(
        s.client
            .get(s.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.gateway.start_draining();
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "draining");
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

fn basic(name: &str, password: &str) -> String {
    use base64::Engine;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Authorization: Basic {credentials}\r\n")
}

/// A request with any method, content type and body, exactly as given.
fn raw_request(method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The server with a tenant (`bar.com`) allowed one token, introspection or
/// revocation request a second.
async fn server_with_a_limited_tenant(backend: Backend) -> Option<TestServer> {
    if backend == Backend::Postgres {
        common::postgres_url()?;
    }
    let tenants = default_tenant_files()
        .into_iter()
        .map(|(domain, text)| match domain.as_str() {
            "bar.com" => (
                domain,
                format!("{text}\n[rate_limits]\nrequests_per_tenant = 1\n"),
            ),
            _ => (domain, text),
        })
        .collect();
    Some(TestServer::start_with(backend, tenants, |_| {}).await)
}

/// Every answer decided before the request's body is needed (404, 405, 400, 401, 403,
/// 429) leaves the keep-alive connection usable: the next request on it, a good one,
/// is answered, whatever the size of the body the early answer did not need.
async fn early_answers_keep_the_connection_for_the_next_request(s: TestServer) {
    let mut conn = raw_connection(&s).await;
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let admin = format!("{form}{}", basic("admin", ADMIN_PASSWORD));
    let good = raw_request("POST", "/oauth2/introspect", &admin, b"token=x");
    for size in [0, 100, 60_000] {
        let body = vec![b'a'; size];
        let with = |headers: &str| format!("{form}{headers}");
        let early: Vec<(u16, Vec<u8>)> = vec![
            (404, raw_request("POST", "/nope", form, &body)),
            (
                404,
                raw_request("POST", "/t/no-such.example/oauth2/token", form, &body),
            ),
            (405, raw_request("POST", "/healthz", form, &body)),
            (405, raw_request("PUT", "/oauth2/introspect", &admin, &body)),
            (
                400,
                raw_request(
                    "POST",
                    "/oauth2/introspect",
                    "Content-Type: text/plain\r\n",
                    &body,
                ),
            ),
            (
                400,
                raw_request(
                    "POST",
                    "/oauth2/introspect",
                    &with("Authorization: Basic !!\r\n"),
                    &body,
                ),
            ),
            (401, raw_request("POST", "/oauth2/introspect", form, &body)),
            (
                401,
                raw_request(
                    "POST",
                    "/oauth2/token",
                    &with(&basic("super-client", "wrong")),
                    &body,
                ),
            ),
            (
                403,
                raw_request(
                    "POST",
                    "/oauth2/introspect",
                    &with(&basic("nobody", "nobody-password")),
                    &body,
                ),
            ),
        ];
        for (expected, request) in early {
            conn.write_all(&request).await.unwrap();
            let answer = read_answer(&mut conn).await.expect("an answer");
            assert_eq!(answer.status, expected, "body of {size}: {}", answer.body);
            assert!(!answer.closes(), "{expected} with a body of {size} closes");
            conn.write_all(&good).await.unwrap();
            let next = read_answer(&mut conn)
                .await
                .expect("the next request is answered");
            assert_eq!(
                (next.status, next.body.as_str()),
                (200, r#"{"active":false}"#)
            );
        }
        // The tenant's budget is one a second: of three requests in a row, at least
        // one is a 429, and none ends the connection.
        let limited = raw_request("POST", "/t/bar.com/oauth2/introspect", form, &body);
        let mut statuses = Vec::new();
        for _ in 0..3 {
            conn.write_all(&limited).await.unwrap();
            let answer = read_answer(&mut conn).await.expect("an answer");
            assert!(!answer.closes(), "{}", answer.head);
            if answer.status == 429 {
                assert!(answer.head.contains("\r\nretry-after: "), "{}", answer.head);
            }
            statuses.push(answer.status);
        }
        assert!(
            statuses.iter().all(|s| matches!(s, 401 | 429)),
            "{statuses:?}"
        );
        assert!(statuses.contains(&429), "body of {size}: {statuses:?}");
        conn.write_all(&good).await.unwrap();
        let next = read_answer(&mut conn)
            .await
            .expect("the next request is answered");
        assert_eq!(next.status, 200, "after a 429 with a body of {size}");
    }
}

on_both_backends!(crate::server_with_a_limited_tenant;
    early_answers_keep_the_connection_for_the_next_request,
);

on_both_backends!(crate::common::TestServer::for_backend;
    wrong_methods_get_405_with_allow,
    unknown_paths_get_404_json,
    bad_bodies_are_400_and_the_connection_survives,
    a_non_form_body_is_invalid_request,
    bodies_over_64_kib_are_413,
    http2_and_http1_are_both_served,
    answers_are_json_and_not_cached,
    readiness_turns_503_when_draining,
);

async fn server_with_short_timeouts() -> TestServer {
    TestServer::start_with(Backend::Sqlite, default_tenant_files(), |c| {
        c.server.header_timeout_ms = 300;
        c.server.body_timeout_ms = 300;
        c.server.handshake_timeout_ms = 300;
    })
    .await
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let s = server_with_short_timeouts().await;
    let mut conn = raw_connection(&s).await;
    conn.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_response(&mut conn).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(answer.is_none() || answer.unwrap().0 == 408);
}

#[tokio::test]
async fn slow_bodies_are_cut_off() {
    let s = server_with_short_timeouts().await;
    let mut conn = raw_connection(&s).await;
    conn.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type").await.unwrap();
    let started = Instant::now();
    let (status, body) = read_response(&mut conn).await.expect("a timeout answer");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, 408, "{body}");
}

#[tokio::test]
async fn silent_tls_clients_are_cut_off() {
    let s = server_with_short_timeouts().await;
    let mut tcp = TcpStream::connect(s.base.trim_start_matches("https://"))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[tokio::test]
async fn oversized_headers_are_refused_without_harm() {
    let s = TestServer::start(Backend::Sqlite).await;
    let mut conn = raw_connection(&s).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut conn).await;
    // hyper answers 431 (RFC 6585) and closes; the server itself carries on.
    assert!(answer.is_none() || answer.unwrap().0 == 431);
    assert_eq!(
        s.client
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A client that writes its whole 1 MB body before reading anything (Python's
/// `http.client` does) still receives the 413.
#[tokio::test]
async fn a_client_that_sends_first_still_reads_its_413() {
    let s = TestServer::start(Backend::Sqlite).await;
    for declared in [true, false] {
        let mut conn = raw_connection(&s).await;
        let body = vec![b'a'; 1024 * 1024];
        let head = if declared {
            format!(
                "POST /oauth2/introspect HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        } else {
            "POST /oauth2/introspect HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_owned()
        };
        conn.write_all(head.as_bytes()).await.unwrap();
        if declared {
            conn.write_all(&body).await.unwrap();
        } else {
            for chunk in body.chunks(16 * 1024) {
                conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await
                    .unwrap();
                conn.write_all(chunk).await.unwrap();
                conn.write_all(b"\r\n").await.unwrap();
            }
            conn.write_all(b"0\r\n\r\n").await.unwrap();
        }
        conn.flush().await.unwrap();
        let answer = read_answer(&mut conn).await.expect("the 413 arrives");
        assert_eq!(
            answer.status, 413,
            "declared length: {declared}: {}",
            answer.body
        );
        // The rest of a body past the limit is not read: the answer says the
        // connection ends, and it does.
        assert!(answer.closes(), "{}", answer.head);
        assert!(closed_by_server(&mut conn).await);
    }
}

/// A body far past the limit at a rate-limited tenant is answered too, and the answer
/// says the connection closes.
#[tokio::test]
async fn a_body_past_the_limit_gets_its_answer_and_connection_close() {
    let s = server_with_a_limited_tenant(Backend::Sqlite).await.unwrap();
    let body = vec![b'a'; 512 * 1024];
    for path in [
        "/t/bar.com/oauth2/introspect",
        "/t/bar.com/oauth2/token",
        "/nope",
    ] {
        let mut conn = raw_connection(&s).await;
        let headers = "Content-Type: application/x-www-form-urlencoded\r\n";
        conn.write_all(&raw_request("POST", path, headers, &body))
            .await
            .unwrap();
        let answer = read_answer(&mut conn).await.expect("an answer");
        assert!(
            matches!(answer.status, 413 | 429),
            "{path}: {}",
            answer.status
        );
        assert!(answer.closes(), "{path}: {}", answer.head);
        assert!(closed_by_server(&mut conn).await, "{path}");
    }
}

/// Past `server.max_connections_per_address` a new connection is closed at once; the
/// open ones keep being served, and a closed one frees its place.
#[tokio::test]
async fn connections_past_the_per_address_cap_are_closed() {
    let s = TestServer::start_with(Backend::Sqlite, default_tenant_files(), |c| {
        c.server.max_connections_per_address = 3;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(raw_connection(&s).await);
    }
    let addr = s.base.trim_start_matches("https://").to_owned();
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the fourth connection is closed at once"
    );
    for conn in &mut open {
        conn.write_all(HEALTH).await.unwrap();
        assert_eq!(read_response(conn).await.unwrap().0, 200);
    }
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = raw_connection(&s).await;
    again.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut again).await.unwrap().0, 200);
}
