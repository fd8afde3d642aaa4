//! `/routing/profiles` (SPEC 1.3).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;

use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::error::ApiError;

/// `GET /routing/profiles?skillId=&proficiencyId=`.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:profiles:read")?;
    let params = Params::parse(query.as_deref())?;
    let page = params.page()?;
    let result =
        app.tenant
            .lock()
            .list_profiles(params.get("skillId"), params.get("proficiencyId"), page);
    Ok(axum::Json(result).into_response())
}

/// `GET /routing/profiles/{id}`.
pub async fn fetch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:profiles:read")?;
    let tenant = app.tenant.lock();
    let profile = tenant
        .profiles
        .get(&id)
        .ok_or_else(|| ApiError::not_found("routing profile", &id))?;
    Ok(with_etag(StatusCode::OK, profile.version, profile))
}

/// `PUT /routing/profiles/{id}`: replaces the lists present; `If-Match` honoured.
pub async fn update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:profiles:write")?;
    let expected = if_match(&headers)?;
    let body = json_body(&body)?;
    let profile = app.tenant.lock().update_profile(&id, &body, expected)?;
    Ok(with_etag(StatusCode::OK, profile.version, &profile))
}
