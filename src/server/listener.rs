//! The accept loop: one task per connection, the PROXY header (from trusted proxies,
//! when configured) and the TLS handshake inside it, HTTP/1.1 and HTTP/2 through
//! hyper-util's auto builder, timeouts against slow clients, caps on open connections
//! (in total and per client address), and a graceful drain on shutdown.

use super::proxy_protocol;
use crate::config::Server as ServerSettings;
use crate::http;
use crate::service::Gateway;
use dashmap::DashMap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Largest request head accepted; a larger one is refused by hyper.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serves `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (for at most `server.drain_timeout_ms`).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let settings = gateway.config().server.clone();
    let serving = Arc::new(Serving {
        builder: connection_builder(&settings),
        handshake_timeout: Duration::from_millis(settings.handshake_timeout_ms),
        tls,
        gateway: gateway.clone(),
    });
    let connections = Arc::new(Connections::new(
        settings.max_connections,
        settings.max_connections_per_address,
    ));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let exempt = gateway
            .trusted_proxies()
            .iter()
            .any(|net| net.contains(&peer.ip()));
        let Some(admitted) = connections.admit(peer.ip(), exempt) else {
            // Closed at once, before any TLS work; the open connections go on.
            tracing::debug!(%peer, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let serving = serving.clone();
        let watcher = graceful.watcher();
        let expect_header = exempt && settings.proxy_protocol;
        tokio::spawn(async move {
            let _admitted = admitted;
            serving
                .connection(stream, peer, expect_header, watcher)
                .await;
        });
    }
    drop(listener);
    let drain = Duration::from_millis(settings.drain_timeout_ms);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish before the drain timeout");
    }
    Ok(())
}

/// HTTP/1.1 and HTTP/2 with the server's limits on request heads and its timers.
fn connection_builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_timeout_ms))
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// What every connection of one listener shares.
struct Serving {
    gateway: Arc<Gateway>,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
}

impl Serving {
    /// One admitted connection, from its PROXY header and TLS handshake to its end.
    async fn connection(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        expect_header: bool,
        watcher: Watcher,
    ) {
        let peer = if expect_header {
            match self.proxied_client(&mut stream, peer).await {
                Some(client) => client,
                None => return,
            }
        } else {
            peer
        };
        let gateway = self.gateway.clone();
        let service = service_fn(move |request| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(http::handle(gateway, request, peer).await) }
        });
        match &self.tls {
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(self.handshake_timeout, handshake).await {
                    Ok(Ok(stream)) => drive(&self.builder, watcher, stream, service).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
            None => drive(&self.builder, watcher, stream, service).await,
        }
    }

    /// The client a trusted proxy's PROXY header names (the proxy itself for a health
    /// check); `None` closes the connection. The handshake timeout covers the header:
    /// a proxy that sends nothing is closed like a client that never finishes its
    /// handshake.
    async fn proxied_client(&self, stream: &mut TcpStream, peer: SocketAddr) -> Option<SocketAddr> {
        let header = proxy_protocol::read_header(stream);
        match tokio::time::timeout(self.handshake_timeout, header).await {
            Ok(Ok(client)) => Some(client.unwrap_or(peer)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "closed: no valid PROXY header");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "closed: no PROXY header in time");
                None
            }
        }
    }
}

/// Open connections, in total and per client address.
struct Connections {
    open: AtomicUsize,
    by_address: DashMap<IpAddr, usize>,
    max: usize,
    max_per_address: usize,
}

/// One admitted connection; counted until dropped.
struct Admitted {
    connections: Arc<Connections>,
    /// `None` for a trusted proxy, which the per-address cap does not apply to.
    address: Option<IpAddr>,
}

impl Connections {
    fn new(max: usize, max_per_address: usize) -> Self {
        Connections {
            open: AtomicUsize::new(0),
            by_address: DashMap::new(),
            max,
            max_per_address,
        }
    }

    /// Counts a new connection from `address`, or `None` past a cap.
    fn admit(self: &Arc<Self>, address: IpAddr, exempt: bool) -> Option<Admitted> {
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        // From here on, dropping `admitted` gives the place back.
        let mut admitted = Admitted {
            connections: self.clone(),
            address: None,
        };
        if exempt {
            return Some(admitted);
        }
        {
            let mut count = self.by_address.entry(address).or_insert(0);
            if *count >= self.max_per_address {
                return None;
            }
            *count += 1;
        }
        admitted.address = Some(address);
        Some(admitted)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(address) = self.address {
            self.connections
                .by_address
                .remove_if_mut(&address, |_, count| {
                    *count -= 1;
                    *count == 0
                });
        }
    }
}

async fn drive<I, S>(builder: &auto::Builder<TokioExecutor>, watcher: Watcher, io: I, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<http::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_total_and_per_address() {
        let connections = Arc::new(Connections::new(3, 2));
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = connections.admit(a, false).unwrap();
        let _second = connections.admit(a, false).unwrap();
        assert!(connections.admit(a, false).is_none(), "per address");
        let _third = connections.admit(b, false).unwrap();
        assert!(
            connections.admit(b, true).is_none(),
            "in total, proxies too"
        );
        drop(first);
        let _again = connections
            .admit(a, false)
            .expect("a closed one frees its place");
        assert_eq!(connections.open.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_trusted_proxy_is_not_capped_per_address() {
        let connections = Arc::new(Connections::new(10, 1));
        let proxy = IpAddr::from([10, 0, 0, 9]);
        let held: Vec<_> = (0..5)
            .map(|_| connections.admit(proxy, true).unwrap())
            .collect();
        assert_eq!(held.len(), 5);
        drop(held);
        assert!(connections.by_address.is_empty());
        assert_eq!(connections.open.load(Ordering::SeqCst), 0);
    }
}
