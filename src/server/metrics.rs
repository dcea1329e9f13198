//! The Prometheus listener on `metrics.listen`: plain HTTP, `GET /metrics` only. It is
//! meant for a private address (the default is loopback), apart from the API port.

use crate::http::Body;
use crate::service::Gateway;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The text exposition format's media type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `metrics.listen` (nothing when it is empty) and serves it until the task is
/// aborted. Binding fails the start, with the address in the error.
pub async fn spawn(gateway: &Arc<Gateway>) -> std::io::Result<Option<JoinHandle<()>>> {
    let address = gateway.config.metrics.listen.clone();
    if address.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics.listen {address}: {e}")))?;
    let bound = listener.local_addr()?;
    let _ = gateway.metrics_address.set(bound);
    tracing::info!(address = %bound, "serving metrics");
    let gateway = Arc::downgrade(gateway);
    Ok(Some(tokio::spawn(accept(listener, gateway))))
}

async fn accept(listener: TcpListener, gateway: Weak<Gateway>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(gateway.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer(
    gateway: Weak<Gateway>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let found = request.method() == Method::GET && request.uri().path() == "/metrics";
    let (status, text) = match (found, gateway.upgrade()) {
        (true, Some(gateway)) => (StatusCode::OK, gateway.render_metrics().await),
        (true, None) => (StatusCode::SERVICE_UNAVAILABLE, String::new()),
        (false, _) => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(response)
}
