//! `POST /oauth/token` (SPEC 1.1).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use bytes::Bytes;

use super::ApiResult;
use crate::app::App;
use crate::error::ApiError;

/// Client credentials grant from a form body.
pub async fn token(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).map_err(|e| {
        ApiError::invalid(
            "body",
            format!("expected an application/x-www-form-urlencoded body: {e}"),
        )
    })?;
    let ttl = app.knobs().token_ttl;
    let issued = app.auth.issue(&form, app.clock.now(), ttl)?;
    app.stats.lock().tokens_issued += 1;
    let mut response = axum::Json(issued).into_response();
    // Tokens must never be cached by intermediaries (RFC 6749 5.1).
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
