//! Inspection and control for tests, benchmarks and curious people: `/sim/*`, `/openapi.json`
//! and the index at `/`. No auth; `/sim/*` answers loopback peers only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{ApiResult, json_body};
use crate::app::App;
use crate::config::Knobs;
use crate::error::ApiError;
use crate::server::PeerAddr;

/// Refuses `/sim/*` to peers that are not on loopback.
pub async fn loopback_only(request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
    if peer.is_some_and(|addr| !addr.ip().is_loopback()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "LOOPBACK_ONLY",
            "/sim endpoints answer loopback clients only",
        )
        .into_response();
    }
    next.run(request).await
}

/// `GET /`: where to start.
pub async fn index() -> Response {
    axum::Json(json!({
        "name": "skillsync tenant simulator (CXone Admin API v2)",
        "api": "/api/v2",
        "cxone": crate::cxone::BASE_PATH,
        "token": "POST /api/v2/oauth/token (grant_type=client_credentials, client_id, client_secret, scope?)",
        "openapi": "/openapi.json",
        "inspect": ["/sim/stats", "/sim/state", "/sim/config", "/sim/other-writer", "/sim/clock"],
        "control": ["POST /sim/reset", "PATCH /sim/config", "POST /sim/clock/advance {\"by\":\"30s\"}"],
    }))
    .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI_JSON,
    )
        .into_response()
}

/// `GET /sim/stats`.
pub async fn stats(State(app): State<Arc<App>>) -> Response {
    let report = app.stats.lock().report();
    let settles_at = app.tenant.lock().cache.settles_at();
    let mut body = serde_json::to_value(report).unwrap_or_default();
    body["cacheSettledInSeconds"] =
        json!(settles_at.map_or(0.0, |t| t.since(app.clock.now()).as_secs_f64()));
    axum::Json(body).into_response()
}

/// `GET /sim/state`: the whole tenant, in the fixture format, with the CXone dialect's tenant
/// under `cxone` (a fixture's `cxone` is ignored: that tenant is always built from the rest).
pub async fn state(State(app): State<Arc<App>>) -> Response {
    let doc = app.tenant.lock().to_doc();
    let mut body = serde_json::to_value(doc).unwrap_or_default();
    body["cxone"] = app.cxone.lock().to_json();
    axum::Json(body).into_response()
}

/// `POST /sim/reset`: back to the initial tenant, counters cleared.
pub async fn reset(State(app): State<Arc<App>>) -> Response {
    app.reset();
    axum::Json(json!({ "reset": true })).into_response()
}

/// `GET /sim/other-writer`: per user, the assignments the other integration last wrote; under
/// `cxone`, per (agent, skill), what it last wrote in the CXone dialect.
pub async fn other_writer(State(app): State<Arc<App>>) -> Response {
    let _no_cycle_in_progress = app.other_writer_cycle.lock().await;
    let log = app.other_writer.lock().clone();
    let stats = app.stats.lock();
    axum::Json(json!({
        "writes": stats.other_writer_writes,
        "conflicts": stats.other_writer_conflicts,
        "users": log.users,
        "cxone": log.cxone.values().collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `GET /sim/config`: the knobs in force.
pub async fn config(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.knobs()).into_response()
}

/// `PATCH /sim/config`: changes some knobs, e.g. `{"faultRate": 0.1, "rateLimit": "off"}`.
pub async fn patch_config(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let changes = json_body(&body)?;
    let Some(changes) = changes.as_object() else {
        return Err(ApiError::invalid("body", "must be a JSON object of knobs"));
    };
    let mut merged = serde_json::to_value(app.knobs()).unwrap_or_default();
    for (key, value) in changes {
        let Some(slot) = merged.get_mut(key) else {
            let known: Vec<&String> = merged
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            return Err(ApiError::invalid(
                key.clone(),
                format!("unknown knob; known knobs: {known:?}"),
            ));
        };
        *slot = value.clone();
    }
    let knobs: Knobs =
        serde_json::from_value(merged).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    knobs
        .validate()
        .map_err(|why| ApiError::invalid("body", why.to_string()))?;
    app.knobs.send_replace(knobs.clone());
    Ok(axum::Json(knobs).into_response())
}

fn clock_body(app: &App) -> Value {
    json!({
        "now": app.clock.wall(),
        "offsetSeconds": app.clock.offset().as_secs_f64(),
    })
}

/// `GET /sim/clock`.
pub async fn clock(State(app): State<Arc<App>>) -> Response {
    axum::Json(clock_body(&app)).into_response()
}

/// `POST /sim/clock/advance {"by":"31s"}`: moves the simulator's clock forward, so tests see
/// token expiry and cache propagation without waiting.
pub async fn advance_clock(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let by = match body.get("by") {
        Some(Value::String(text)) => humantime::parse_duration(text)
            .map_err(|e| ApiError::invalid("by", format!("`{text}`: {e} (write e.g. 31s)")))?,
        Some(Value::Number(n)) => Duration::from_secs_f64(n.as_f64().unwrap_or(0.0).max(0.0)),
        _ => {
            return Err(ApiError::invalid(
                "by",
                "required: a duration such as \"31s\"",
            ));
        }
    };
    app.clock.advance(by);
    Ok(axum::Json(clock_body(&app)).into_response())
}
