//! The load generator: keep-alive HTTP/1.1 connections over TLS, each sending its next
//! request as soon as the previous answer is read, every answer checked.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What one connection sends, and how it judges the answers.
pub trait Session: Send {
    /// The next request, or `None` when this session has nothing left to send.
    fn request(&mut self) -> Option<Request<Full<Bytes>>>;
    /// Whether `body` with `status` is the right answer to the last request.
    fn check(&mut self, status: StatusCode, body: &[u8]) -> bool;
}

/// Makes the session of connection `n`.
pub(crate) type Sessions = Arc<dyn Fn(usize) -> Box<dyn Session> + Send + Sync>;

/// Where to connect, and how to trust its certificate.
#[derive(Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub tls: TlsConnector,
}

impl Target {
    async fn connect(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.address).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::from(self.address.ip());
        let tls = self.tls.connect(name, tcp).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Sends one request on a fresh connection: for set-up steps.
    pub async fn once(
        &self,
        request: Request<Full<Bytes>>,
    ) -> std::io::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.once_with_headers(request).await?;
        Ok((status, body))
    }

    /// Like [`Target::once`], with the answer's headers: for set-up steps that follow
    /// redirects and cookies.
    pub async fn once_with_headers(
        &self,
        request: Request<Full<Bytes>>,
    ) -> std::io::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        let mut sender = self.connect().await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> std::io::Result<(StatusCode, Bytes)> {
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, body))
}

/// How long to load, and through how many connections.
#[derive(Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    /// Load before measuring starts: connections, caches and the allocator settle.
    pub warmup: Duration,
    pub measure: Duration,
}

/// What the measured window saw.
#[derive(Default)]
pub struct Outcome {
    pub answered: u64,
    /// Wrong answers, failed requests and failed connections.
    pub errors: u64,
    latencies_us: Vec<u32>,
    /// The first wrong answer, to say what went wrong.
    pub first_error: Option<String>,
    /// CPU time the server spent over the measured window.
    pub server_cpu_seconds: Option<f64>,
}

impl Outcome {
    /// Adds the requests, latencies and server CPU of another window of the same
    /// scenario (another round).
    pub fn absorb(&mut self, other: Outcome) {
        self.server_cpu_seconds = match (self.server_cpu_seconds, other.server_cpu_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.merge(other);
    }

    fn merge(&mut self, other: Outcome) {
        self.answered += other.answered;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// Runs `plan` against `target`, and reads `server`'s CPU time at the edges of the
/// measured window. Returns early when every session has ended.
pub(crate) async fn drive(
    target: &Target,
    plan: Plan,
    sessions: &Sessions,
    server: u32,
) -> Outcome {
    let started = Instant::now();
    let measure_from = started + plan.warmup;
    let end = measure_from + plan.measure;
    let workers: Vec<_> = (0..plan.connections)
        .map(|n| {
            let target = target.clone();
            let session = sessions(n);
            tokio::spawn(connection(target, session, measure_from, end))
        })
        .collect();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = crate::process::cpu_seconds(server);
        tokio::time::sleep_until(end.into()).await;
        crate::process::cpu_seconds(server) - before
    });
    let mut outcome = Outcome::default();
    for worker in workers {
        if let Ok(part) = worker.await {
            outcome.merge(part);
        }
    }
    if Instant::now() >= end {
        outcome.server_cpu_seconds = sampler.await.ok();
    } else {
        sampler.abort();
    }
    outcome
}

/// One connection's loop until `end`; reconnects after a failure.
async fn connection(
    target: Target,
    mut session: Box<dyn Session>,
    measure_from: Instant,
    end: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut sender = None;
    while Instant::now() < end {
        let sending = match sender.take() {
            Some(s) => Ok(s),
            None => target.connect().await,
        };
        let mut s = match sending {
            Ok(s) => s,
            Err(_) => {
                if Instant::now() >= measure_from {
                    outcome.errors += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(request) = session.request() else {
            break;
        };
        let sent = Instant::now();
        let answer = exchange(&mut s, request).await;
        let took = sent.elapsed();
        let right = match &answer {
            Ok((status, body)) => session.check(*status, body),
            Err(_) => false,
        };
        if answer.is_ok() {
            sender = Some(s);
        }
        if sent >= measure_from && sent < end {
            outcome.answered += 1;
            if !right {
                outcome.errors += 1;
                if outcome.first_error.is_none() {
                    outcome.first_error = Some(match &answer {
                        Ok((status, body)) => format!("{status} {}", String::from_utf8_lossy(body)),
                        Err(e) => e.to_string(),
                    });
                }
            }
            outcome
                .latencies_us
                .push(took.as_micros().min(u32::MAX as u128) as u32);
        }
    }
    outcome
}
