//! The PROXY protocol: a trusted proxy's header names the client that the audit log,
//! lockout and rate limits see; other peers are served directly.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use base64::Engine;
use common::{Backend, TestServer};
use ppp::v2;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The proxy's address: loopback, but not the test client's 127.0.0.1.
const PROXY: &str = "127.0.0.3";

async fn behind_a_proxy() -> TestServer {
    TestServer::start_with(Backend::Sqlite, common::default_tenant_files(), |c| {
        c.server.trusted_proxies = vec![format!("{PROXY}/32")];
        c.server.proxy_protocol = true;
    })
    .await
}

fn v2_header(command: v2::Command, client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().unwrap();
    // Both addresses of one family, or the header carries none.
    let server: SocketAddr = if client.is_ipv4() {
        "10.0.0.1:9443".parse().unwrap()
    } else {
        "[2001:db8::1]:9443".parse().unwrap()
    };
    v2::Builder::with_addresses(
        v2::Version::Two | command,
        v2::Protocol::Stream,
        (client, server),
    )
    .build()
    .unwrap()
}

/// Sends one HTTP/1.1 request from `source` after `preamble`; answers the status.
async fn request_from(
    s: &TestServer,
    source: &str,
    preamble: &[u8],
    request: &str,
) -> std::io::Result<u16> {
    let source: IpAddr = source.parse().unwrap();
    let mut tls = common::tls_connection_with(s, source, preamble).await?;
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok());
    status.ok_or_else(|| std::io::Error::other(format!("no status in {text:?}")))
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// A failed sign-in as the super tenant's admin: it is audited with the client address.
fn failed_sign_in() -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:not-the-password");
    format!(
        "POST /oauth2/introspect HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 7\r\n\r\ntoken=x"
    )
}

/// The client addresses of the super tenant's failed sign-ins, newest first.
async fn failure_addresses(s: &TestServer) -> Vec<String> {
    let (status, log) = s
        .api("GET", "/api/v1/audit", common::super_admin(), None)
        .await;
    assert_eq!(status, 200);
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "user.signin_failure")
        .map(|e| e["client_address"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_names_the_client_in_the_audit_log() {
    let s = behind_a_proxy().await;
    let v2 = v2_header(v2::Command::Proxy, "203.0.113.7:51000");
    assert_eq!(
        request_from(&s, PROXY, &v2, &failed_sign_in())
            .await
            .unwrap(),
        401
    );
    let v1 = b"PROXY TCP6 2001:db8::9 ::1 51000 9443\r\n";
    assert_eq!(
        request_from(&s, PROXY, v1, &failed_sign_in())
            .await
            .unwrap(),
        401
    );
    assert_eq!(failure_addresses(&s).await, ["2001:db8::9", "203.0.113.7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_header_is_served_as_the_proxy_itself() {
    let s = behind_a_proxy().await;
    let local = v2_header(v2::Command::Local, "127.0.0.3:1");
    assert_eq!(request_from(&s, PROXY, &local, HEALTH).await.unwrap(), 200);
    assert_eq!(
        request_from(&s, PROXY, &local, &failed_sign_in())
            .await
            .unwrap(),
        401
    );
    assert_eq!(failure_addresses(&s).await, [PROXY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_without_a_header_is_closed() {
    let s = behind_a_proxy().await;
    let refused = request_from(&s, PROXY, b"", HEALTH).await;
    assert!(
        refused.is_err(),
        "served without a PROXY header: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_peers_are_served_directly() {
    let s = behind_a_proxy().await;
    assert_eq!(
        request_from(&s, "127.0.0.2", b"", HEALTH).await.unwrap(),
        200
    );
    // A header from a peer that is not a trusted proxy is not read: the handshake
    // fails, and nobody can choose the address they are logged under.
    let v2 = v2_header(v2::Command::Proxy, "203.0.113.7:51000");
    assert!(request_from(&s, "127.0.0.2", &v2, HEALTH).await.is_err());
}
