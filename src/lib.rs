//! Portcullis: a multi-tenant OAuth 2.0 authorization server and token-introspection
//! gateway.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod http;
pub mod logging;
mod secret_file;
pub mod server;
pub mod service;
pub mod store;
pub mod tenant_file;

pub use logging::init_logging;

use config::Config;
use server::tls::TlsError;
use service::bootstrap::{self, AdminPassword};
use service::{Gateway, StartupError};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Connects, migrates and reconciles the store, and builds the gateway: everything
/// `serve` needs but the listener.
pub async fn prepare(
    config: Arc<Config>,
    admin_password: Option<String>,
) -> Result<(Arc<Gateway>, AdminPassword), StartupError> {
    let store = store::connect(&config.database.url).await?;
    store.claim().await?;
    let prepared = build(config, store.clone(), admin_password).await;
    if prepared.is_err() {
        store.close().await;
    }
    prepared
}

/// What `prepare` does once the store is claimed.
async fn build(
    config: Arc<Config>,
    store: Arc<dyn store::Store>,
    admin_password: Option<String>,
) -> Result<(Arc<Gateway>, AdminPassword), StartupError> {
    store.migrate().await?;
    let reconciled = bootstrap::reconcile(&config, &*store, admin_password).await?;
    let gateway = Gateway::new(config, store).await?;
    let admin = gateway.settle(reconciled).await?;
    Ok((Arc::new(gateway), admin))
}

/// The TLS acceptor the configuration asks for, generating a self-signed certificate on
/// first start when none is there.
pub fn tls_acceptor(config: &Config) -> Result<Option<tokio_rustls::TlsAcceptor>, TlsError> {
    let tls = &config.server.tls;
    if !tls.enabled {
        return Ok(None);
    }
    if !tls.cert.exists() && !tls.key.exists() {
        server::tls::generate(&tls.cert, &tls.key, &server::tls::default_hosts())?;
        tracing::info!(cert = %tls.cert.display(), key = %tls.key.display(), "generated a self-signed certificate");
    }
    Ok(Some(server::tls::acceptor(&tls.cert, &tls.key)?))
}

/// Serves on `listener` until `shutdown` resolves; what tests call with port 0.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    spawn_cache_sweeper(&gateway);
    gateway.spawn_instance_feed();
    gateway.spawn_purger();
    let metrics = server::metrics::spawn(&gateway).await?;
    let served = server::listener::serve(listener, gateway, tls, shutdown).await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served
}

/// Sweeps expired tokens out of the cache, and idle keys out of the rate limiters, every
/// minute while the gateway lives.
fn spawn_cache_sweeper(gateway: &Arc<Gateway>) {
    gateway.every(std::time::Duration::from_secs(60), async |gateway| {
        gateway.sweep_caches();
    });
}
