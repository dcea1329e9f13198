//! The `portcullis` binary as an operator runs it: first start, SIGTERM, and the
//! helper commands.
// Tests unwrap what they expect to hold; the shared harness is public so that each
// test binary may use a part of it without hiding helpers that none uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    // Keep the developer's environment out of these runs.
    for (key, _) in std::env::vars() {
        if key.starts_with("PORTCULLIS") {
            c.env_remove(key);
        }
    }
    c
}

#[test]
fn hash_password_prints_an_argon2id_phc_string() {
    let mut child = bin()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let parsed = argon2::PasswordHash::new(phc.trim()).unwrap();
    use argon2::PasswordVerifier;
    // The trailing newline is not part of the secret.
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());

    let mut child = bin()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&vec![b'x'; 1025])
        .unwrap();
    assert!(!child.wait_with_output().unwrap().status.success());
}

#[test]
fn gen_cert_writes_a_loadable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["gen-cert", "--out"])
        .arg(dir.path())
        .args(["--hosts", "id.example.com,10.0.0.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    portcullis::server::tls::acceptor(
        &dir.path().join("server.crt"),
        &dir.path().join("server.key"),
    )
    .unwrap();
}

#[test]
fn check_config_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    std::fs::write(
        tenants.join("foo.com.toml"),
        "domain = \"foo.com\"\n[tokens]\naccess_token_ttl = -5\n",
    )
    .unwrap();
    let out = bin()
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("foo.com.toml") && err.contains("tokens.access_token_ttl"),
        "{err}"
    );

    std::fs::write(tenants.join("foo.com.toml"), "domain = \"foo.com\"\n").unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[auth]\nlockout_attempts = 0\n",
    )
    .unwrap();
    let out = bin()
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.lockout_attempts"));

    std::fs::remove_file(dir.path().join("portcullis.toml")).unwrap();
    let out = bin()
        .arg("check-config")
        .current_dir(dir.path())
        .env("PORTCULLIS__LOG__FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = bin()
        .arg("check-config")
        .current_dir(dir.path())
        .env("PORTCULLIS__LOG__FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/portcullis.db").exists());
}

/// `serve` in `dir` on `port`, metrics off, with `settings` as extra environment; and
/// its standard error, line by line.
fn serve_in(dir: &Path, port: u16, settings: &[(&str, &str)]) -> (Child, Receiver<String>) {
    let mut command = bin();
    command
        .arg("serve")
        .current_dir(dir)
        .env("PORTCULLIS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS__METRICS__LISTEN", "")
        .stderr(Stdio::piped());
    for (key, value) in settings {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The lines up to the one saying the server listens; fails after 30 s without it.
fn until_listening(rx: &Receiver<String>) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.last().is_some_and(|l| l.contains("listening")) {
        assert!(
            Instant::now() < deadline,
            "the server did not start: {lines:?}"
        );
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    lines
}

/// A fresh directory, `serve`, and nothing else: a certificate, a database and an
/// admin with a random password printed once; SIGTERM drains and exits 0.
#[test]
fn first_start_bootstraps_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let (mut child, rx) = serve_in(
        dir.path(),
        port,
        &[("PORTCULLIS__SERVER__SHUTDOWN_GRACE_MS", "200")],
    );
    let lines = until_listening(&rx);
    let text = lines.join("\n");
    assert!(text.contains("listening"), "{text}");
    assert!(
        text.contains("generated a self-signed certificate"),
        "{text}"
    );
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the admin password is printed")
        .to_owned();
    assert!(password.len() >= 20);
    assert!(dir.path().join("certs/server.crt").exists());
    assert!(text.contains("generated the master key"), "{text}");
    let master_key = std::fs::read_to_string(dir.path().join("certs/master.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("certs/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(dir.path().join("data/portcullis.db").exists());

    // The printed password works.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let status = runtime.block_on(async {
        let client = common::https_client(&cert, false);
        client
            .post(format!("https://127.0.0.1:{port}/oauth2/introspect"))
            .basic_auth("admin", Some(&password))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("token=x")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    // The password was printed once, in the banner, and appears in no log line.
    let mut logs = String::new();
    while let Ok(line) = rx.try_recv() {
        logs.push_str(&line);
    }
    assert!(!logs.contains(&password), "the password reached the log");
    assert!(
        !text.contains(master_key.trim()) && !logs.contains(master_key.trim()),
        "the master key reached the log"
    );
}

/// Request lines are written by a thread every 20 ms (README, "Decisions"): a process
/// killed outright has written every line older than that.
#[test]
fn a_killed_server_has_written_every_line_older_than_its_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let (mut child, rx) = serve_in(
        dir.path(),
        port,
        &[("PORTCULLIS_ADMIN_PASSWORD", common::ADMIN_PASSWORD)],
    );
    until_listening(&rx);

    let cert = std::fs::read(dir.path().join("certs/server.crt")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let requests = 25;
    runtime.block_on(async {
        let client = common::https_client(&cert, false);
        for n in 0..requests {
            let status = client
                .post(format!("https://127.0.0.1:{port}/oauth2/introspect"))
                .basic_auth("admin", Some(common::ADMIN_PASSWORD))
                .form(&[("token", format!("no-such-token-{n}"))])
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    });
    // Well past the 20 ms interval (the rest is headroom for a busy machine), then
    // SIGKILL: no exit path runs, so only the thread can have written the lines.
    std::thread::sleep(Duration::from_millis(250));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logged = 0;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        if line.contains(" request ") && line.contains("endpoint=\"introspect\"") {
            logged += 1;
        }
    }
    assert_eq!(logged, requests, "request lines lost at the kill");
}
