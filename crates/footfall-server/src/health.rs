//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use footfall::store::Store;
use serde_json::json;

use crate::state::AppState;

/// `GET /livez`: the process answers. Never touches the store, so a store outage does
/// not get the process restarted.
pub async fn livez() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store answers within the store timeout, and the write buffer is
/// keeping up (under half full). An instance whose store cannot take its hits says so
/// here long before it has to drop any, so a load balancer moves traffic to others.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(state.options.store_timeout, state.store.ping()).await;
    let (mut status, store) = match ping {
        Ok(Ok(())) => (StatusCode::OK, "ok".to_owned()),
        Ok(Err(error)) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timed out".to_owned()),
    };
    let backed_up = state.buffer.is_backed_up();
    if backed_up {
        status = StatusCode::SERVICE_UNAVAILABLE;
    }
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
        "store": store,
        "buffer": {
            "hits": state.buffer.depth(),
            "capacity": state.buffer.capacity(),
            "backed_up": backed_up,
            "lag_seconds": state.buffer.lag(state.clock.now()).as_secs_f64(),
        },
        "sites": state.sites.len(),
    });
    (status, Json(body)).into_response()
}
