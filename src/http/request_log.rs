//! The request log line, and the request's span: what a request was, filled in as it
//! is handled. Every handler may name its caller; only the router writes the line.

use crate::domain::tenant::Tenant;
use crate::service::Origin;
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;

/// What the request log line says about a request. What it learns is recorded in the
/// request's span too, so every line logged while the request is handled names its
/// tenant, endpoint and caller.
#[derive(Debug)]
pub(super) struct RequestLog {
    /// The tenant addressed, once known.
    tenant: Option<Arc<Tenant>>,
    endpoint: &'static str,
    /// Who authenticated: a client id or `user@tenant`; never a secret.
    caller: String,
    /// Where the request came from, for the log and the audit log.
    pub(super) origin: Origin,
    /// The request's span, which learns what this learns.
    span: tracing::Span,
}

impl RequestLog {
    pub(super) fn new(origin: Origin) -> Self {
        let span = tracing::info_span!(
            "request",
            tenant = tracing::field::Empty,
            endpoint = tracing::field::Empty,
            caller = tracing::field::Empty,
            client = %origin.ip,
        );
        RequestLog {
            tenant: None,
            endpoint: "unknown",
            caller: String::new(),
            origin,
            span,
        }
    }

    pub(super) fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    pub(super) fn endpoint(&self) -> &'static str {
        self.endpoint
    }

    pub(super) fn name_endpoint(&mut self, endpoint: &'static str) {
        self.endpoint = endpoint;
        self.span.record("endpoint", endpoint);
    }

    pub(super) fn name_tenant(&mut self, tenant: &Arc<Tenant>) {
        self.span.record("tenant", tenant.domain.as_str());
        self.tenant = Some(tenant.clone());
    }

    /// The addressed tenant's domain; empty before it is known.
    pub(super) fn tenant_domain(&self) -> &str {
        self.tenant.as_ref().map_or("", |t| t.domain.as_str())
    }

    /// Names who authenticated: a client id or `user@tenant`, never a secret.
    pub(super) fn identify(&mut self, caller: &str) {
        self.caller = caller.to_owned();
        self.span.record("caller", caller);
    }

    /// Writes the line. It names everything the span does; outside the span, each is
    /// formatted once.
    pub(super) fn write(mut self, method: &Method, status: u16, took: Duration) {
        self.span = tracing::Span::none();
        tracing::info!(
            tenant = %self.tenant_domain(),
            endpoint = self.endpoint,
            method = %method,
            status,
            latency_us = took.as_micros() as u64,
            caller = %self.caller,
            client = %self.origin.ip,
            "request"
        );
    }
}
