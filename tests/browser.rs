//! A real browser through the authorization code flow: headless Chromium, driven over
//! WebDriver, opens the sign-in page, fills it in and lands on a redirect URI this test
//! serves; the test then exchanges the code and introspects the token. Screenshots of
//! the sign-in page (desktop and phone widths) are kept as test artifacts.
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
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills chromedriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves the client's redirect URI: answers every request with a small page and sends
/// each request target to the test.
async fn callback_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") && read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..read]).to_string();
                if let Some(target) = head.split(' ').nth(1) {
                    let _ = tx.send(target.to_owned());
                }
                let body = "<!doctype html><title>Signed in</title><p>Signed in.</p>";
                let response = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

async fn start_chromedriver() -> (Driver, String) {
    let port = common::free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = reqwest::Client::new();
    loop {
        if let Ok(r) = probe.get(format!("{url}/status")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, url)
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_and_the_code_becomes_a_token() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but Chromium or chromedriver is missing: .ci/run installs them");
        }
        eprintln!("skipped: install Debian's chromium and chromium-driver to run the browser test");
        return;
    }
    let s = TestServer::start(Backend::Sqlite).await;
    let (callback_port, mut callbacks) = callback_server().await;
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                // The test server's certificate is self-signed for this run.
                "--ignore-certificate-errors",
                format!("--user-data-dir={}", profile.path().display()),
                "--window-size=1280,900",
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver_url)
        .await
        .expect("a WebDriver session");

    let verifier = format!("{}-{}", common::random_suffix(), "browser".repeat(6));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let query = common::encode_form(&[
        ("response_type", "code"),
        ("client_id", "foo-spa"),
        ("redirect_uri", &redirect_uri),
        ("scope", "read write"),
        ("state", "browser-state"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let result = async {
        browser
            .goto(&format!("{}/t/foo.com/oauth2/authorize?{query}", s.base))
            .await?;
        let heading = browser.find(Locator::Css("h1")).await?.text().await?;
        assert_eq!(heading, "Sign in to continue");
        let page = browser.source().await?;
        assert!(
            page.contains("foo-spa") && page.contains("foo.com") && page.contains("<li>write</li>")
        );
        std::fs::write(
            artifacts_dir().join("sign-in.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        browser.set_window_size(390, 844).await?;
        std::fs::write(
            artifacts_dir().join("sign-in-phone.png"),
            browser.screenshot().await?,
        )
        .unwrap();

        browser
            .find(Locator::Id("username"))
            .await?
            .send_keys("alice")
            .await?;
        // Enter in the password field, as people do: the default button must sign in.
        browser
            .find(Locator::Id("password"))
            .await?
            .send_keys("alice-password\u{E007}")
            .await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let landed = tokio::time::timeout(Duration::from_secs(20), callbacks.recv()).await;
    let current = browser
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let _ = browser.close().await;
    result.expect("the browser drove the sign-in page");
    let target = landed
        .expect("the browser reached the redirect URI in time")
        .expect("a callback request");
    assert!(
        current.starts_with(&redirect_uri),
        "the browser ended on {current}"
    );

    let query = target.split_once('?').expect("a query").1;
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("browser-state"));
    let code = param("code").expect("a code");

    let r = s
        .post_form(
            "/t/foo.com/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "foo-spa"),
                ("code", &code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let (_, info) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("admin@foo.com", "foo-admin-password"),
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice@foo.com");
    assert_eq!(info["scope"], "read write");
    eprintln!("screenshots: {}", artifacts_dir().display());
}
