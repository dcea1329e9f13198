//! The baseline: a bare hyper server over the same rustls configuration and certificate
//! as Portcullis, answering every request with one fixed JSON body once it has read the
//! request body. What it costs per request is the floor Portcullis is compared to.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) const ADDRESS: &str = "GATEWAY_BENCH_BARE_ADDRESS";
pub(crate) const CERT: &str = "GATEWAY_BENCH_BARE_CERT";
pub(crate) const KEY: &str = "GATEWAY_BENCH_BARE_KEY";

/// The answer: the size and shape of an active introspection answer.
const ANSWER: &str = r#"{"active":true,"scope":"","client_id":"bench-client","token_type":"Bearer","exp":1893456000,"iat":1700000000,"nbf":1700000000,"jti":"Xq2wVf9v0k3Jm8rTz1aB4w","iss":"https://127.0.0.1/oauth2/token"}"#;

/// Serves when this process was started as the bare server; `false` otherwise.
pub(crate) fn serve_if_asked() -> bool {
    let Ok(address) = std::env::var(ADDRESS) else {
        return false;
    };
    let cert = PathBuf::from(std::env::var(CERT).expect("the certificate"));
    let key = PathBuf::from(std::env::var(KEY).expect("the key"));
    // The same runtime Portcullis runs on: one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async move {
        let acceptor = portcullis::server::tls::acceptor(&cert, &key).expect("the TLS files");
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .expect("the port");
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, builder) = (acceptor.clone(), builder.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(answer);
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    true
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
