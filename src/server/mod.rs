//! The network edge: TLS, the accept loop, limits and graceful shutdown.

pub mod listener;
pub mod metrics;
mod proxy_protocol;
pub mod tls;
