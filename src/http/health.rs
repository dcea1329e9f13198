//! Liveness and readiness for load balancers and orchestrators.

use super::{json, Body};
use crate::service::Gateway;
use hyper::{Response, StatusCode};
use serde_json::json;

pub(super) fn healthz() -> Response<Body> {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Ready while the database answers and the process is not draining.
pub(super) async fn readyz(gateway: &Gateway) -> Response<Body> {
    if gateway.is_draining() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "draining"}),
        );
    }
    match gateway.database_answers().await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ready"})),
        Err(_) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "database unavailable"}),
        ),
    }
}
