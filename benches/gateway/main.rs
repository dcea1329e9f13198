//! `cargo bench --bench gateway`: Portcullis against a bare hyper + rustls server on the
//! same machine, in the same run, under the same load. Prints one table; ratios to the
//! bare server are what carry from machine to machine.
//!
//! Options: `--seconds N` measures each scenario for N seconds (default 10, after a
//! 3-second warm-up); `--rounds N` measures the rows that are compared with each other
//! (one tenant, a million tokens, 10,000 tenants) N times each, interleaved (default
//! 3); `--smoke` runs everything small and short; `--keep` keeps the servers' logs and
//! databases and prints where they are; `--only TEXT` measures only the scenarios
//! whose name holds TEXT (to profile one); `--check` exits non-zero when a row falls
//! under its target by more than the noise (README, "Performance").
//! PostgreSQL scenarios use `PORTCULLIS_BENCH_POSTGRES` (a server URL without a
//! database, default `postgres://postgres@127.0.0.1:5432`) and are skipped, saying
//! so, when nothing answers there.
// A benchmark, like a test, unwraps what it expects to hold.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod bare;
mod console;
/// Shared with the test that pages through the same lists.
#[path = "../../tests/common/fill.rs"]
mod fill;
mod fixtures;
/// Shared with the tests that sign in through the same pages.
#[path = "../../tests/common/html.rs"]
mod html;
mod lists;
mod load;
mod process;
mod scenarios;
mod targets;

use load::{Plan, Target};
use process::Server;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// How big and how long.
#[derive(Clone, Copy)]
pub struct Options {
    pub warmup: Duration,
    pub measure: Duration,
    /// Tokens stored for the "many tokens" scenario.
    pub many_tokens: usize,
    /// Tenants besides the super tenant for the "many tenants" scenario.
    pub many_tenants: usize,
    /// Tokens introspected once each to measure the cache's memory per token.
    pub cached_tokens: usize,
    /// Tokens stored for the revocation scenario to revoke, one per request.
    pub revocable: usize,
    /// Keep the servers' logs and databases, and say where.
    pub keep: bool,
    /// Measure only the scenarios whose name holds this text (and the bare server).
    pub only: Option<&'static str>,
    /// How many interleaved rounds the compared rows get.
    pub rounds: usize,
    /// Exit non-zero when a row misses its target by more than the noise.
    pub check: bool,
}

impl Options {
    /// Whether `--only` leaves the scenario `name` in; the bare server always is.
    pub fn wants(&self, name: &str) -> bool {
        name.starts_with("bare") || self.only.is_none_or(|only| name.contains(only))
    }

    fn from_args() -> Self {
        let mut options = Options {
            warmup: Duration::from_secs(3),
            measure: Duration::from_secs(10),
            many_tokens: 1_000_000,
            many_tenants: 10_000,
            cached_tokens: 100_000,
            revocable: 300_000,
            keep: false,
            only: None,
            rounds: 3,
            check: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--smoke" => {
                    options = Options {
                        warmup: Duration::from_millis(500),
                        measure: Duration::from_secs(1),
                        many_tokens: 20_000,
                        many_tenants: 100,
                        cached_tokens: 5_000,
                        revocable: 50_000,
                        rounds: 1,
                        ..options
                    }
                }
                "--seconds" => {
                    let seconds: u64 = args
                        .next()
                        .and_then(|s| s.parse().ok())
                        .expect("--seconds takes a whole number");
                    options.measure = Duration::from_secs(seconds);
                }
                "--keep" => options.keep = true,
                "--check" => options.check = true,
                "--rounds" => {
                    options.rounds = args
                        .next()
                        .and_then(|s| s.parse().ok())
                        .filter(|n| *n > 0)
                        .expect("--rounds takes a positive whole number");
                }
                "--only" => {
                    let only = args.next().expect("--only takes part of a scenario's name");
                    options.only = Some(only.leak());
                }
                // What `cargo bench` passes to every bench target.
                "--bench" => {}
                other => panic!("unknown option {other:?}; see the top of benches/gateway/main.rs"),
            }
        }
        options
    }
}

fn main() {
    if bare::serve_if_asked() {
        return;
    }
    let options = Options::from_args();
    // The load generator gets one thread; the server under test has the rest.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let missed = runtime.block_on(scenarios::run_all(options));
    if options.check && missed > 0 {
        eprintln!("bench: {missed} targets missed by more than the noise");
        std::process::exit(1);
    }
}

/// Files of one run: on disk where durability is measured, in memory (when the
/// machine has `/dev/shm`) where only set-up speed would suffer.
pub struct Workspace {
    pub disk: tempfile::TempDir,
    pub memory: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a folder");
        let memory = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").expect("a folder in memory")
        } else {
            tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a folder")
        };
        let (cert, key) = (
            disk.path().join("server.crt"),
            disk.path().join("server.key"),
        );
        portcullis::server::tls::generate(&cert, &key, &["127.0.0.1".into()])
            .expect("a certificate");
        Workspace {
            disk,
            memory,
            cert,
            key,
        }
    }

    /// A client that trusts this run's certificate.
    fn target(&self, server: &Server) -> Target {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.cert).expect("the certificate") {
            roots.add(cert.expect("a certificate")).expect("a root");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Target {
            address: server.address,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

/// One row of the table.
pub struct Row {
    pub scenario: String,
    pub connections: usize,
    pub outcome: load::Outcome,
    pub seconds: f64,
    /// Each round's requests per second and server CPU per request, for the rows that
    /// were measured in interleaved rounds.
    pub rounds: Vec<(f64, f64)>,
}

impl Row {
    /// Takes in another round of the same scenario.
    pub fn absorb(&mut self, round: Row) {
        if self.rounds.is_empty() {
            self.rounds
                .push((self.per_second(), self.cpu_us_per_request()));
        }
        self.rounds
            .push((round.per_second(), round.cpu_us_per_request()));
        self.outcome.absorb(round.outcome);
        self.seconds += round.seconds;
    }

    pub fn per_second(&self) -> f64 {
        self.outcome.answered as f64 / self.seconds
    }

    pub fn cpu_us_per_request(&self) -> f64 {
        let cpu = self.outcome.server_cpu_seconds.unwrap_or(f64::NAN);
        cpu * 1e6 / self.outcome.answered.max(1) as f64
    }
}

/// Runs one scenario and makes its row; nothing when `--only` leaves it out.
pub async fn measure(
    options: &Options,
    scenario: &str,
    target: &Target,
    server: &Server,
    plan: Plan,
    sessions: &load::Sessions,
) -> Option<Row> {
    if !options.wants(scenario) {
        return None;
    }
    eprintln!("bench: {scenario}, {} connections", plan.connections);
    let outcome = load::drive(target, plan, sessions, server.pid()).await;
    if let Some(error) = &outcome.first_error {
        eprintln!(
            "bench: {} wrong answers, the first: {error}",
            outcome.errors
        );
    }
    Some(Row {
        scenario: scenario.into(),
        connections: plan.connections,
        outcome,
        seconds: plan.measure.as_secs_f64(),
        rounds: Vec::new(),
    })
}

/// The table, in Markdown, with every row's ratio to the bare server at its
/// connection count: the better of its runs (most requests per second, least p99).
/// Rows measured in rounds say each round's req/s and CPU µs per request.
pub fn print_table(rows: &mut [Row]) -> Baseline {
    let mut bare = Baseline(Vec::new());
    for row in rows.iter_mut().filter(|r| r.scenario.starts_with("bare")) {
        let (rate, p99) = (row.per_second(), row.outcome.quantile_ms(0.99));
        match bare.0.iter_mut().find(|(c, _, _)| *c == row.connections) {
            Some((_, best_rate, best_p99)) => {
                *best_rate = best_rate.max(rate);
                *best_p99 = best_p99.min(p99);
            }
            None => bare.0.push((row.connections, rate, p99)),
        }
    }
    println!();
    println!("| scenario | conns | req/s | p50 ms | p99 ms | server CPU µs/req | ratio | p99 × bare | errors | rounds: req/s, CPU µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows.iter_mut() {
        let (rate, p50, p99) = (
            row.per_second(),
            row.outcome.quantile_ms(0.5),
            row.outcome.quantile_ms(0.99),
        );
        let (ratio, p99_ratio) = bare.ratios(row);
        // A row at a connection count the bare server was not measured at has no ratio.
        let shown = |value: f64, places: usize| {
            if value.is_nan() {
                "—".to_owned()
            } else {
                format!("{value:.places$}")
            }
        };
        let rounds = row
            .rounds
            .iter()
            .map(|(rate, cpu)| format!("{rate:.0}, {cpu:.0}"))
            .collect::<Vec<_>>()
            .join("; ");
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |",
            row.scenario,
            row.connections,
            rate,
            p50,
            p99,
            row.cpu_us_per_request(),
            shown(ratio, 3),
            shown(p99_ratio, 2),
            row.outcome.errors,
            rounds
        );
    }
    bare
}

/// The bare server's best requests per second and least p99 at each connection count.
pub struct Baseline(Vec<(usize, f64, f64)>);

impl Baseline {
    /// `row`'s requests per second and p99 as ratios to the bare server's.
    pub fn ratios(&self, row: &mut Row) -> (f64, f64) {
        let (rate, p99) = (row.per_second(), row.outcome.quantile_ms(0.99));
        self.0
            .iter()
            .find(|(c, _, _)| *c == row.connections)
            .map_or((f64::NAN, f64::NAN), |(_, r, p)| (rate / r, p99 / p))
    }
}
