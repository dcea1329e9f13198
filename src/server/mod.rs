//! The network edge: TLS, the accept loop, limits and graceful shutdown.

pub mod listener;
mod proxy_protocol;
pub mod tls;
