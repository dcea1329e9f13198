//! The Prometheus listener on `metrics.listen`: plain HTTP, `GET /metrics` only. It is
//! meant for a private address (the default is loopback), apart from the API port,
//! but it shares the process's file descriptors with the API port: so it has the API
//! port's header timeout, an idle timeout and a cap on open connections, and a pile
//! of idle sockets here cannot starve the API.
//!
//! The answer says what it sends: OpenMetrics to a scraper that accepts it (as
//! Prometheus does), the text format 0.0.4 to everyone else.

use crate::http::Body;
use crate::service::Gateway;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `metrics.listen` (nothing when it is empty) and serves it until the task is
/// aborted. Binding fails the start, with the address in the error.
pub async fn spawn(gateway: &Arc<Gateway>) -> std::io::Result<Option<JoinHandle<()>>> {
    let address = gateway.config().metrics.listen.clone();
    if address.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics.listen {address}: {e}")))?;
    let bound = listener.local_addr()?;
    gateway.metrics_bound(bound);
    tracing::info!(address = %bound, "serving metrics");
    let limits = Limits {
        header_timeout: Duration::from_millis(gateway.config().server.header_timeout_ms),
        idle_timeout: Duration::from_millis(gateway.config().metrics.idle_timeout_ms),
    };
    let open = Arc::new(Semaphore::new(gateway.config().metrics.max_connections));
    let gateway = Arc::downgrade(gateway);
    Ok(Some(tokio::spawn(accept(listener, gateway, open, limits))))
}

#[derive(Clone, Copy)]
struct Limits {
    header_timeout: Duration,
    idle_timeout: Duration,
}

async fn accept(
    listener: TcpListener,
    gateway: Weak<Gateway>,
    open: Arc<Semaphore>,
    limits: Limits,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!("metrics connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            serve_connection(stream, gateway, limits).await;
            drop(permit);
        });
    }
}

/// When the connection last finished a request, and how many are in flight: what
/// the idle timeout is measured from.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn idle_since(&self) -> Option<Instant> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        (self.in_flight.load(Ordering::SeqCst) == 0).then_some(last)
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection(stream: TcpStream, gateway: Weak<Gateway>, limits: Limits) {
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let counted = activity.clone();
    let service = service_fn(move |request| {
        let in_flight = InFlight::start(&counted);
        let gateway = gateway.clone();
        async move {
            let answer = answer(gateway, request).await;
            drop(in_flight);
            answer
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut check_at = Instant::now() + limits.idle_timeout;
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(check_at), if !closing => {
                match activity.idle_since() {
                    Some(since) if since.elapsed() >= limits.idle_timeout => {
                        // Closes at once when idle, after the answer otherwise.
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Some(since) => check_at = since + limits.idle_timeout,
                    None => check_at = Instant::now() + limits.idle_timeout,
                }
            }
        }
    }
}

async fn answer(
    gateway: Weak<Gateway>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let found = request.method() == Method::GET && request.uri().path() == "/metrics";
    let openmetrics = accepts_openmetrics(request.headers());
    let (status, text) = match (found, gateway.upgrade()) {
        (true, Some(gateway)) => {
            let text = gateway.render_metrics().await;
            let text = if openmetrics {
                text
            } else {
                text_format(&text)
            };
            (StatusCode::OK, text)
        }
        (true, None) => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
        (false, _) => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let content_type = if openmetrics {
        OPENMETRICS
    } else {
        TEXT_FORMAT
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Prometheus asks for OpenMetrics first, and for the text format with a lower weight.
fn accepts_openmetrics(headers: &HeaderMap) -> bool {
    crate::http::accepts(headers, "application/openmetrics-text")
}

/// Rewrites OpenMetrics text as the text format 0.0.4. The two differ where it matters
/// to a parser: a counter's `HELP` and `TYPE` name the family (`x`) in OpenMetrics
/// but the sample (`x_total`) in the text format, `UNIT` lines do not exist there,
/// and neither does the closing `# EOF`.
fn text_format(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let described = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|keyword| Some((keyword, line.strip_prefix(keyword)?)));
        match described {
            Some((keyword, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(keyword);
                text.push_str(name);
                if counters.contains(name) {
                    text.push_str("_total");
                }
                text.push(' ');
                text.push_str(tail);
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::ACCEPT;

    #[test]
    fn counters_are_named_by_their_samples_in_the_text_format() {
        let openmetrics = "# HELP app_requests Requests answered.\n\
                           # TYPE app_requests counter\n\
                           app_requests_total{status=\"200\"} 3\n\
                           # HELP app_open Open now.\n\
                           # TYPE app_open gauge\n\
                           # UNIT app_open connections\n\
                           app_open 2\n\
                           # EOF\n";
        assert_eq!(
            text_format(openmetrics),
            "# HELP app_requests_total Requests answered.\n\
             # TYPE app_requests_total counter\n\
             app_requests_total{status=\"200\"} 3\n\
             # HELP app_open Open now.\n\
             # TYPE app_open gauge\n\
             app_open 2\n"
        );
    }

    #[test]
    fn only_a_scraper_naming_openmetrics_gets_it() {
        let accept = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
            accepts_openmetrics(&headers)
        };
        assert!(accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!accept("text/plain"));
        assert!(!accept("*/*"));
        assert!(!accept("application/openmetrics-text;q=0"));
        assert!(!accepts_openmetrics(&HeaderMap::new()));
    }
}
