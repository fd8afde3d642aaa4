//! The users dialect of the second source document (SPEC 1.5): `/users/{id}` with
//! `skills.proficiencies`, a view of the same data as `/routing/users`. Conflicts are 409 here.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde_json::{Value, json};

use super::routing_users::refusal;
use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::error::ApiError;
use crate::model::User;

/// A user as this dialect shows it: skill assignments under `skills.proficiencies`.
pub fn users_view(user: &User) -> Value {
    json!({
        "id": user.id,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "skills": {
            "proficiencies": user.skills.iter()
                .map(|a| json!({ "skill": a.id, "level": a.level }))
                .collect::<Vec<_>>(),
        },
        "version": user.version,
    })
}

/// `GET /users?page=&pageSize=`.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "admin:users:read")?;
    let page = Params::parse(query.as_deref())?.page()?;
    let tenant = app.tenant.lock();
    let result = page.cut(tenant.users.values());
    let body = json!({
        "entities": result.entities.iter().map(|u| users_view(u)).collect::<Vec<_>>(),
        "page": result.page,
        "pageSize": result.page_size,
        "total": result.total,
    });
    drop(tenant);
    Ok(axum::Json(body).into_response())
}

/// `GET /users/{userId}`.
pub async fn fetch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "admin:users:read")?;
    let tenant = app.tenant.lock();
    let user = tenant
        .users
        .get(&id)
        .ok_or_else(|| ApiError::not_found("user", &id))?;
    Ok(with_etag(StatusCode::OK, user.version, users_view(user)))
}

/// `PUT /users/{userId}`: partial update; `skills.proficiencies` replaces the skill list.
/// `If-Match` stale → 409.
pub async fn update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "admin:users:write")?;
    let expected = if_match(&headers)?;
    let body = json_body(&body)?;
    let knobs = app.knobs();
    let propagation = knobs.propagation.sample(&mut rand::rng());
    let (user, effects) = {
        let mut tenant = app.tenant.lock();
        let patch = tenant.parse_users_dialect_patch(&id, &body)?;
        tenant
            .apply_user_patch(
                &id,
                patch,
                expected,
                app.clock.wall(),
                app.clock.now(),
                propagation,
                knobs.write_faults(),
            )
            .map_err(|refused| refusal(&app, refused, &id, StatusCode::CONFLICT))?
    };
    app.stats.lock().count_write(effects);
    Ok(with_etag(StatusCode::OK, user.version, users_view(&user)))
}
