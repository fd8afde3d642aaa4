//! Queues and test interactions (SPEC 1.4), answered from the routing cache.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{ApiResult, Params, json_body};
use crate::app::App;
use crate::error::ApiError;

/// `GET /routing/queues`.
pub async fn queues(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:skills:read")?;
    let page = Params::parse(query.as_deref())?.page()?;
    let result = page.cut(app.tenant.lock().queues.values().cloned());
    Ok(axum::Json(result).into_response())
}

/// `POST /interactions/test {"queueId"}`: routed from the cache, not the database.
pub async fn test_interaction(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "interactions:write")?;
    let body = json_body(&body)?;
    let Some(queue_id) = body.get("queueId").and_then(Value::as_str) else {
        return Err(ApiError::invalid("queueId", "required"));
    };
    let routed = app
        .tenant
        .lock()
        .route_test_interaction(queue_id, app.clock.now())?;
    let mut answer = serde_json::to_value(&routed).unwrap_or_default();
    answer["interactionId"] = json!(uuid::Uuid::new_v4().to_string());
    Ok(axum::Json(answer).into_response())
}
