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
use fantoccini::{Client, ClientBuilder, Locator};
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

/// Whether the browser test can run here; in CI it must.
fn browser_available() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but Chromium or chromedriver is missing: .ci/run installs them");
    }
    eprintln!("skipped: install Debian's chromium and chromium-driver to run the browser test");
    false
}

/// A headless Chromium session with its own profile in `profile`.
async fn open_browser(driver_url: &str, profile: &Path) -> Client {
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
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900",
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .expect("a WebDriver session")
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
    if !browser_available() {
        return;
    }
    let s = TestServer::start(Backend::Sqlite).await;
    let (callback_port, mut callbacks) = callback_server().await;
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver_url, profile.path()).await;

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

        type_into(&browser, "username", "alice").await?;
        // Enter in the password field, as people do: the default button must sign in.
        type_into(&browser, "password", "alice-password\u{E007}").await?;
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

/// axe-core, pinned and vendored for the tests only (MPL-2.0, its licence beside it).
const AXE: &str = include_str!("fixtures/axe-core-4.10.3/axe.min.js");

/// The WCAG 2.0, 2.1 and 2.2 A and AA rules of axe-core.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { runOnly: { type: 'tag',
    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'] } })
  .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
  .catch(e => done(['axe failed: ' + e]));
"#;

/// The current page, checked: no axe-core violation, and no horizontal scrolling at
/// the window's width.
async fn check_page(browser: &Client, what: &str) -> Result<(), fantoccini::error::CmdError> {
    browser.execute(AXE, vec![]).await?;
    let violations = browser.execute_async(AXE_RUN, vec![]).await?;
    assert_eq!(violations, json!([]), "axe-core on {what}");
    let overflow = browser
        .execute(
            "const e = document.documentElement; return e.scrollWidth - e.clientWidth;",
            vec![],
        )
        .await?;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "{what} scrolls sideways by {overflow} px"
    );
    Ok(())
}

/// Presses Tab from the top of the page until focus comes round again; every link,
/// button and field must be reached, each with a visible outline.
async fn tab_through(browser: &Client, what: &str) -> Result<(), fantoccini::error::CmdError> {
    let focusable = browser
        .execute(
            "return document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea').length;",
            vec![],
        )
        .await?
        .as_u64()
        .unwrap();
    browser
        .execute(
            "document.activeElement && document.activeElement.blur(); window.focus();",
            vec![],
        )
        .await?;
    let mut reached = std::collections::HashSet::new();
    for _ in 0..focusable + 2 {
        browser
            .active_element()
            .await?
            .send_keys("\u{E004}")
            .await?;
        let (which, outline) = {
            let seen = browser
                .execute(
                    "const e = document.activeElement; \
                     const all = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]; \
                     return [all.indexOf(e), getComputedStyle(e).outlineStyle];",
                    vec![],
                )
                .await?;
            (
                seen[0].as_i64().unwrap(),
                seen[1].as_str().unwrap().to_owned(),
            )
        };
        if which >= 0 {
            assert_ne!(outline, "none", "focus is visible on {what}");
            reached.insert(which);
        }
    }
    assert_eq!(
        reached.len() as u64,
        focusable,
        "Tab reaches every control of {what}"
    );
    Ok(())
}

async fn screenshot(browser: &Client, name: &str) -> Result<(), fantoccini::error::CmdError> {
    std::fs::write(artifacts_dir().join(name), browser.screenshot().await?).unwrap();
    Ok(())
}

/// Types `keys` into the element with this id, as a keyboard would.
async fn type_into(
    browser: &Client,
    id: &str,
    keys: &str,
) -> Result<(), fantoccini::error::CmdError> {
    browser.find(Locator::Id(id)).await?.send_keys(keys).await
}

/// Presses Enter on the button whose text is `label`.
async fn press(browser: &Client, label: &str) -> Result<(), fantoccini::error::CmdError> {
    let button = browser
        .find(Locator::XPath(&format!(
            "//button[normalize-space()='{label}']"
        )))
        .await?;
    button.send_keys("\u{E007}").await
}

/// A server whose public URL is its own address: the browser must reach the server
/// there, since the sign-in comes back to it and the console takes forms only from it.
async fn console_server() -> TestServer {
    let port = common::free_port();
    TestServer::start_with(Backend::Sqlite, common::default_tenant_files(), |c| {
        c.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.server.public_url = format!("https://127.0.0.1:{port}");
    })
    .await
}

/// Closes the browser however the drive ended; a failure names the page it was on.
async fn close(browser: Client, result: Result<(), fantoccini::error::CmdError>) {
    let current = browser
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let _ = browser.close().await;
    result.unwrap_or_else(|e| panic!("the browser drove the console (at {current}): {e}"));
}

/// The console by keyboard alone: sign in to foo.com, create a user with a role, see
/// it listed, let it take a token by the password grant, revoke that token from the
/// console, and see introspection answer inactive. Every page on the way is checked
/// with axe-core and at 320 CSS pixels, and the screenshots are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_by_keyboard_and_passes_axe() {
    if !browser_available() {
        return;
    }
    let s = console_server().await;
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver_url, profile.path()).await;
    let console = format!("{}/t/foo.com/console", s.base);
    let mut bob_token = String::new();

    let result = async {
        // Sign in: the console sends the browser through the tenant's sign-in page.
        browser.goto(&format!("{console}/")).await?;
        type_into(&browser, "username", "admin").await?;
        type_into(&browser, "password", "foo-admin-password\u{E007}").await?;
        browser.wait().for_element(Locator::Css("nav")).await?;
        assert_eq!(browser.current_url().await?.as_str(), format!("{console}/"));
        check_page(&browser, "the first page").await?;

        // Users, then New user, by keyboard.
        browser
            .find(Locator::LinkText("Users"))
            .await?
            .send_keys("\u{E007}")
            .await?;
        browser.wait().for_element(Locator::Id("search")).await?;
        check_page(&browser, "the users").await?;
        screenshot(&browser, "console-users.png").await?;
        tab_through(&browser, "the users").await?;
        browser
            .find(Locator::LinkText("New user"))
            .await?
            .send_keys("\u{E007}")
            .await?;
        browser
            .wait()
            .for_element(Locator::Id("field-username"))
            .await?;
        check_page(&browser, "the new user form").await?;
        // A password too short: the form comes back with the field marked.
        type_into(&browser, "field-username", "bob").await?;
        type_into(&browser, "field-password", "short").await?;
        press(&browser, "Create user").await?;
        browser
            .wait()
            .for_element(Locator::Css("[aria-invalid=true]"))
            .await?;
        check_page(&browser, "the new user form with an error").await?;
        let kept = browser
            .find(Locator::Id("field-username"))
            .await?
            .prop("value")
            .await?;
        assert_eq!(kept.as_deref(), Some("bob"));
        type_into(&browser, "field-password", "bob-password").await?;
        // Space ticks the role's checkbox.
        browser
            .find(Locator::Css("input[name='role:admin']"))
            .await?
            .send_keys(" ")
            .await?;
        press(&browser, "Create user").await?;
        browser.wait().for_element(Locator::Id("grants")).await?;
        let page = browser.source().await?;
        assert!(page.contains("User bob was created."), "{page}");
        check_page(&browser, "a user").await?;
        tab_through(&browser, "a user").await?;

        // The list shows bob; a search for nobody shows the empty state.
        browser.goto(&format!("{console}/users?q=bo")).await?;
        assert!(browser.source().await?.contains(">bob</a>"));
        browser
            .goto(&format!("{console}/users?q=nobody-at-all"))
            .await?;
        assert!(browser.source().await?.contains("No user matches."));
        check_page(&browser, "an empty list").await?;

        // bob takes a token with the password grant.
        let r = s
            .post_form(
                "/t/foo.com/oauth2/token",
                Some(("foo-client", "foo-secret")),
                &[
                    ("grant_type", "password"),
                    ("username", "bob"),
                    ("password", "bob-password"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        let tokens: Value = r.json().await.unwrap();
        bob_token = tokens["access_token"].as_str().unwrap().to_owned();

        // Revoke it from bob's page, by keyboard.
        browser.goto(&format!("{console}/users/bob")).await?;
        screenshot(&browser, "console-user.png").await?;
        let revoke = browser
            .find(Locator::XPath(
                "//section[@aria-labelledby='grants']//button[normalize-space()='Revoke']",
            ))
            .await?;
        revoke.send_keys("\u{E007}").await?;
        browser.wait().for_element(Locator::Css(".notice")).await?;
        let page = browser.source().await?;
        assert!(page.contains("The grant was revoked"), "{page}");

        // Tokens: the lookup form and a token's story.
        browser
            .find(Locator::LinkText("Tokens"))
            .await?
            .send_keys("\u{E007}")
            .await?;
        browser.wait().for_element(Locator::Id("token")).await?;
        check_page(&browser, "the token lookup").await?;
        type_into(&browser, "token", &format!("{bob_token}\u{E007}")).await?;
        browser.wait().for_element(Locator::Id("history")).await?;
        let page = browser.source().await?;
        assert!(
            page.contains("REVOKED") && !page.contains(&bob_token),
            "{page}"
        );
        check_page(&browser, "a token").await?;

        // A deletion's confirmation page.
        browser.goto(&format!("{console}/users/bob/delete")).await?;
        assert!(browser.source().await?.contains("Delete the user"));
        check_page(&browser, "a confirmation").await?;

        // At 320 CSS pixels: nothing scrolls sideways, and nothing fails axe-core.
        browser.set_window_size(320, 800).await?;
        let width = browser.execute("return window.innerWidth;", vec![]).await?;
        assert!(width.as_i64().unwrap() <= 320, "a narrow window: {width}");
        for path in ["/", "/users", "/users/new", "/users/bob", "/tokens"] {
            browser.goto(&format!("{console}{path}")).await?;
            check_page(&browser, &format!("{path} at 320 px")).await?;
        }
        browser.set_window_size(390, 844).await?;
        browser.goto(&format!("{console}/users")).await?;
        screenshot(&browser, "console-users-phone.png").await?;

        // Sign out, by keyboard; the page after it is checked too.
        press(&browser, "Sign out").await?;
        browser
            .wait()
            .for_element(Locator::LinkText("Sign in again"))
            .await?;
        check_page(&browser, "the signed-out page").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    close(browser, result).await;
    let (_, info) = s
        .introspect(
            "/t/foo.com/oauth2/introspect",
            ("admin@foo.com", "foo-admin-password"),
            &bob_token,
        )
        .await;
    assert_eq!(info["active"], false, "the token revoked in the console");
    eprintln!("screenshots: {}", artifacts_dir().display());
}

/// Every other console page, in its empty, full and error states, passes axe-core and
/// reflows at 320 CSS pixels; the super tenant's pages are driven by keyboard; a
/// view-only admin of foo.com sees the clients read-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_passes_axe_and_a_viewer_sees_read_only_pages() {
    if !browser_available() {
        return;
    }
    let s = console_server().await;
    s.foo_client_viewer("vera", "vera-password").await;
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver_url, profile.path()).await;
    let console = format!("{}/console", s.base);

    let result = async {
        browser.goto(&format!("{console}/tenants")).await?;
        type_into(&browser, "username", "admin").await?;
        type_into(
            &browser,
            "password",
            &format!("{}\u{E007}", common::ADMIN_PASSWORD),
        )
        .await?;
        browser.wait().for_element(Locator::Id("search")).await?;
        check_page(&browser, "the tenants").await?;

        // A tenant, by keyboard; then its error state.
        browser.goto(&format!("{console}/tenants/new")).await?;
        check_page(&browser, "the new tenant form").await?;
        type_into(&browser, "field-domain", "kb.example").await?;
        type_into(&browser, "field-admin.username", "chief").await?;
        type_into(&browser, "field-admin.password", "chief-password-1").await?;
        press(&browser, "Create tenant").await?;
        browser.wait().for_element(Locator::Css(".notice")).await?;
        assert!(browser.source().await?.contains(">kb.example</td>"));
        browser.goto(&format!("{console}/tenants/new")).await?;
        type_into(&browser, "field-domain", "kb.example").await?;
        type_into(&browser, "field-admin.username", "chief").await?;
        type_into(&browser, "field-admin.password", "chief-password-1").await?;
        press(&browser, "Create tenant").await?;
        browser
            .wait()
            .for_element(Locator::Css("[aria-invalid=true]"))
            .await?;
        check_page(&browser, "the new tenant form with an error").await?;

        // A role, by keyboard, with a bad permission first.
        browser.goto(&format!("{console}/roles/new")).await?;
        check_page(&browser, "the new role form").await?;
        tab_through(&browser, "the new role form").await?;
        type_into(&browser, "field-name", "auditor").await?;
        type_into(&browser, "field-permissions", "not-a-permission").await?;
        press(&browser, "Create role").await?;
        browser
            .wait()
            .for_element(Locator::Css("[aria-invalid=true]"))
            .await?;
        check_page(&browser, "the new role form with an error").await?;
        browser
            .find(Locator::Id("field-permissions"))
            .await?
            .clear()
            .await?;
        type_into(
            &browser,
            "field-permissions",
            "/permission/admin/monitor/audit",
        )
        .await?;
        press(&browser, "Create role").await?;
        browser.wait().for_element(Locator::Css(".notice")).await?;
        check_page(&browser, "a role").await?;

        // A client, by keyboard: its secret is shown once.
        browser.goto(&format!("{console}/clients/new")).await?;
        check_page(&browser, "the new client form").await?;
        type_into(&browser, "field-client_id", "kb-client").await?;
        press(&browser, "Create client").await?;
        browser
            .wait()
            .for_element(Locator::Css("[aria-invalid=true], .error"))
            .await?;
        check_page(&browser, "the new client form with an error").await?;
        browser
            .find(Locator::Css("input[name='grant:client_credentials']"))
            .await?
            .send_keys(" ")
            .await?;
        press(&browser, "Create client").await?;
        browser.wait().for_element(Locator::Css("dl")).await?;
        assert!(browser.source().await?.contains("Client secret"));
        check_page(&browser, "a new client's secret").await?;
        browser
            .goto(&format!("{console}/clients/kb-client"))
            .await?;
        check_page(&browser, "a client").await?;
        screenshot(&browser, "console-client.png").await?;
        tab_through(&browser, "a client").await?;

        for (path, what) in [
            ("/", "the first page"),
            ("/roles", "the roles"),
            ("/roles/everything", "a role from a file"),
            ("/roles/auditor/delete", "a role's deletion"),
            ("/clients", "the clients"),
            ("/clients/kb-client/secret", "a secret's rotation"),
            ("/resources", "the resource rules"),
            (
                "/resources/test?path=%2Fapi%2Fv1%2Ftenants&method=POST",
                "a path tested",
            ),
            ("/resources/test?path=tenants&method=GET", "a path refused"),
            ("/audit", "the audit log"),
            ("/audit?action=user.delete", "an empty audit log"),
            ("/audit?since=someday", "an audit filter refused"),
            ("/keys", "the keys"),
            ("/keys/rotate", "a key's rotation"),
            ("/settings", "the settings"),
            ("/tenants/kb.example/deactivate", "a tenant's deactivation"),
            ("/tenants?q=nothing-like-this", "no tenant"),
        ] {
            browser.goto(&format!("{console}{path}")).await?;
            check_page(&browser, what).await?;
        }
        browser.goto(&format!("{console}/resources")).await?;
        screenshot(&browser, "console-resources.png").await?;

        browser.set_window_size(320, 800).await?;
        for path in [
            "/roles/new",
            "/clients/kb-client",
            "/resources",
            "/audit",
            "/keys",
            "/settings",
            "/tenants",
        ] {
            browser.goto(&format!("{console}{path}")).await?;
            check_page(&browser, &format!("{path} at 320 px")).await?;
        }
        browser.set_window_size(390, 844).await?;
        browser.goto(&format!("{console}/audit")).await?;
        screenshot(&browser, "console-audit-phone.png").await?;
        browser.set_window_size(1280, 900).await?;

        // A view-only admin of foo.com: the clients, read-only, and nothing else.
        let foo = format!("{}/t/foo.com/console", s.base);
        browser.goto(&format!("{foo}/clients")).await?;
        type_into(&browser, "username", "vera").await?;
        type_into(&browser, "password", "vera-password\u{E007}").await?;
        browser.wait().for_element(Locator::Css("nav")).await?;
        let page = browser.source().await?;
        assert!(page.contains(">foo-client</a>"), "{page}");
        for hidden in ["New client", ">Users</a>", ">Settings</a>"] {
            assert!(!page.contains(hidden), "{hidden} shown to a viewer");
        }
        check_page(&browser, "a viewer's clients").await?;
        browser.goto(&format!("{foo}/clients/foo-client")).await?;
        let page = browser.source().await?;
        assert!(
            !page.contains("Save client") && !page.contains("Rotate secret"),
            "{page}"
        );
        check_page(&browser, "a viewer's client").await?;
        browser.goto(&format!("{foo}/users")).await?;
        assert!(browser.source().await?.contains("Not allowed"));
        check_page(&browser, "a page refused").await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    close(browser, result).await;
}

/// Waits for the browser's next request to the callback server's redirect URI (not
/// its icon): the target it landed on.
async fn landed(callbacks: &mut mpsc::UnboundedReceiver<String>) -> String {
    loop {
        let target = tokio::time::timeout(Duration::from_secs(20), callbacks.recv())
            .await
            .expect("the browser reached the redirect URI in time")
            .expect("a callback request");
        if target.starts_with("/callback") {
            return target;
        }
    }
}

/// Single sign-on and logout in a real browser: a sign-in by keyboard, a second
/// authorization answered without a page, then the sign-out question (asked since the
/// request carries no ID token), by keyboard, and every page of the sign-out checked
/// with axe-core, at 320 CSS pixels too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_and_sign_out_work_by_keyboard_and_pass_axe() {
    if !browser_available() {
        return;
    }
    let s = console_server().await;
    let (callback_port, mut callbacks) = callback_server().await;
    let redirect_uri = format!("http://127.0.0.1:{callback_port}/callback");
    let rp = json!({"client_id": "browser-rp", "grant_types": ["authorization_code"],
                    "redirect_uris": [redirect_uri]});
    let (status, _) = s
        .api(
            "POST",
            "/t/foo.com/api/v1/clients",
            ("admin@foo.com", "foo-admin-password"),
            Some(rp),
        )
        .await;
    assert_eq!(status, 201);
    let (_driver, driver_url) = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver_url, profile.path()).await;
    let authorize = |state: &str| {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(common::random_suffix()));
        let query = common::encode_form(&[
            ("response_type", "code"),
            ("client_id", "browser-rp"),
            ("redirect_uri", &redirect_uri),
            ("scope", "openid"),
            ("state", state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        format!("{}/t/foo.com/oauth2/authorize?{query}", s.base)
    };
    let logout = |query: &[(&str, &str)]| {
        format!(
            "{}/t/foo.com/oauth2/logout?{}",
            s.base,
            common::encode_form(query)
        )
    };
    let back = [
        ("client_id", "browser-rp"),
        ("post_logout_redirect_uri", redirect_uri.as_str()),
        ("state", "bye"),
    ];

    let result = async {
        browser.goto(&authorize("first")).await?;
        type_into(&browser, "username", "alice").await?;
        type_into(&browser, "password", "alice-password\u{E007}").await?;
        assert!(landed(&mut callbacks).await.contains("state=first"));
        // The session answers the next request at once.
        browser.goto(&authorize("second")).await?;
        let target = landed(&mut callbacks).await;
        assert!(
            target.contains("code=") && target.contains("state=second"),
            "{target}"
        );

        // The question, by keyboard: stay first, then sign out.
        browser.goto(&logout(&back)).await?;
        assert_eq!(
            browser.find(Locator::Css("h1")).await?.text().await?,
            "Sign out?"
        );
        check_page(&browser, "the sign-out question").await?;
        tab_through(&browser, "the sign-out question").await?;
        screenshot(&browser, "sign-out.png").await?;
        press(&browser, "Stay signed in").await?;
        browser.wait().for_element(Locator::Css("h1")).await?;
        check_page(&browser, "still signed in").await?;
        browser.goto(&logout(&back)).await?;
        browser.set_window_size(320, 800).await?;
        check_page(&browser, "the sign-out question at 320 px").await?;
        screenshot(&browser, "sign-out-phone.png").await?;
        browser.set_window_size(1280, 900).await?;
        press(&browser, "Sign out").await?;
        assert!(landed(&mut callbacks).await.ends_with("?state=bye"));

        // Signed out: the sign-in page again, and the pages that say so.
        browser.goto(&authorize("third")).await?;
        browser.wait().for_element(Locator::Id("password")).await?;
        browser.goto(&logout(&[])).await?;
        check_page(&browser, "signed out").await?;
        let unregistered = [
            ("client_id", "browser-rp"),
            ("post_logout_redirect_uri", "https://elsewhere.example/"),
        ];
        browser.goto(&logout(&unregistered)).await?;
        let refusal = browser.source().await?;
        assert!(refusal.contains("not registered"), "{refusal}");
        check_page(&browser, "a refused sign-out").await?;
        Ok(())
    }
    .await;
    close(browser, result).await;
}
