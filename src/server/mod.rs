//! The network edge: TLS, the accept loop, limits and graceful shutdown.

pub mod listener;
pub mod tls;
