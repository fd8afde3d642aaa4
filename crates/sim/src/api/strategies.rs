//! `/routing/strategies` (docs/sim-strategies.md): routing strategies whose conditions
//! reference proficiency definitions, so a proficiency's delete is refused while one does.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;

use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::error::ApiError;

/// `GET /routing/strategies?proficiencyId=`.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:strategies:read")?;
    let params = Params::parse(query.as_deref())?;
    let page = params.page()?;
    let result = app
        .tenant
        .lock()
        .list_strategies(params.get("proficiencyId"), page);
    Ok(axum::Json(result).into_response())
}

/// `GET /routing/strategies/{id}`.
pub async fn fetch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:strategies:read")?;
    let tenant = app.tenant.lock();
    let strategy = tenant
        .strategies
        .get(&id)
        .ok_or_else(|| ApiError::not_found("routing strategy", &id))?;
    Ok(with_etag(StatusCode::OK, strategy.version, strategy))
}

/// `PUT /routing/strategies/{id}`: replaces its proficiency list when present; `If-Match`
/// honoured.
pub async fn update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "routing:strategies:write")?;
    let expected = if_match(&headers)?;
    let body = json_body(&body)?;
    let strategy = app.tenant.lock().update_strategy(&id, &body, expected)?;
    Ok(with_etag(StatusCode::OK, strategy.version, &strategy))
}
