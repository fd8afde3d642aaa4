//! `/routing/users` (SPEC 1.3): single PUTs with `If-Match`, and bulk with per-entry versions.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{Assignment, MAX_BULK_ENTRIES, PageOf, PatchRefused, User};

/// A user's routing state as this dialect shows it, serialized straight from the user (its
/// fields in this order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingView<'a> {
    user_id: &'a str,
    routing_profile: IdOnly<'a>,
    skills: &'a [Assignment],
    proficiencies: &'a [Assignment],
    version: u64,
    date_modified: Timestamp,
}

/// `{"id": …}`.
#[derive(Serialize)]
struct IdOnly<'a> {
    id: &'a str,
}

/// A user's routing state as this dialect shows it.
pub fn routing_view(user: &User) -> RoutingView<'_> {
    RoutingView {
        user_id: &user.id,
        routing_profile: IdOnly {
            id: &user.routing_profile_id,
        },
        skills: &user.skills,
        proficiencies: &user.proficiencies,
        version: user.version,
        date_modified: user.date_modified,
    }
}

/// `GET /routing/users?skillId=&proficiencyId=&page=&pageSize=`.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), "users:read")?;
    let params = Params::parse(query.as_deref())?;
    let page = params.page()?;
    // The lock is held to copy the page's pointers; the page is rendered after.
    let result =
        app.tenant
            .lock()
            .list_users(params.get("skillId"), params.get("proficiencyId"), page);
    Ok(axum::Json(PageOf {
        entities: result.entities.iter().map(|u| routing_view(u)).collect(),
        page: result.page,
        page_size: result.page_size,
        total: result.total,
    })
    .into_response())
}

/// `GET /routing/users/{userId}`.
pub async fn fetch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), "users:read")?;
    let user = app.tenant.lock().users().get(&id).cloned();
    let user = user.ok_or_else(|| ApiError::not_found("user", &id))?;
    Ok(with_etag(StatusCode::OK, user.version, routing_view(&user)))
}

/// `PUT /routing/users/{userId}`: present lists replace, absent lists stay, an empty `skills`
/// list removes every skill. `If-Match` stale → 412.
pub async fn update(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), "users:write")?;
    let expected = if_match(&headers)?;
    let body = json_body(&body)?;
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let knobs = app.knobs();
    let propagation = knobs.propagation.sample(&mut rand::rng());
    let (user, effects) = {
        let mut tenant = app.tenant.lock();
        if !tenant.users().contains_key(&id) {
            return Err(ApiError::not_found("user", &id));
        }
        let patch = tenant
            .parse_user_patch(obj, "")
            .map_err(ApiError::validation)?;
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
            .map_err(|refused| refusal(&app, refused, &id, StatusCode::PRECONDITION_FAILED))?
    };
    app.stats.lock().count_write(effects);
    Ok(with_etag(StatusCode::OK, user.version, routing_view(&user)))
}

/// What a write refused by `--reject-write-rate` is told, after the field it is told about.
pub const REJECTED: &str = "rejected by the tenant (--reject-write-rate); nothing was changed";

/// Turns a refused single write into the dialect's error; `stale_status` is 412 here and 409 in
/// the users dialect. A rejected write is counted in `app`'s stats (`writesRejected`) and answered
/// 400 `VALIDATION_ERROR` naming the whole `body`, as the API refuses a write it will not take.
pub fn refusal(app: &App, refused: PatchRefused, id: &str, stale_status: StatusCode) -> ApiError {
    if matches!(refused, PatchRefused::Rejected) {
        app.stats.lock().writes_rejected += 1;
    }
    entry_refusal(refused, id, stale_status, "body")
}

/// Turns a refused patch into the dialect's error, counting nothing; `whole` is the field a
/// rejected write is refused as (`body` for a single write, `users[i]` for a bulk entry).
fn entry_refusal(
    refused: PatchRefused,
    id: &str,
    stale_status: StatusCode,
    whole: &str,
) -> ApiError {
    match refused {
        PatchRefused::NotFound => ApiError::not_found("user", id),
        PatchRefused::Invalid(details) => ApiError::validation(details),
        PatchRefused::Rejected => ApiError::invalid(whole, REJECTED),
        PatchRefused::Stale { expected, current } => {
            let mut error = ApiError::stale("user", id, expected, current);
            if stale_status == StatusCode::CONFLICT {
                error.status = StatusCode::CONFLICT;
                error.code = "CONFLICT";
            }
            error
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BulkResult {
    user_id: Value,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `POST /routing/users/bulk`: at most 100 entries, each applied atomically with PUT semantics;
/// an entry carrying `version` applies only if that version is still current (else 412).
pub async fn bulk(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), "users:write")?;
    let body = json_body(&body)?;
    let Some(entries) = body.get("users").and_then(Value::as_array) else {
        return Err(ApiError::invalid(
            "users",
            "required: a list of {userId, version?, skills?, proficiencies?}",
        ));
    };
    if entries.is_empty() {
        return Err(ApiError::invalid("users", "must hold at least one entry"));
    }
    if entries.len() > MAX_BULK_ENTRIES {
        return Err(ApiError::invalid(
            "users",
            format!(
                "holds {} entries; a bulk request takes at most {MAX_BULK_ENTRIES}",
                entries.len()
            ),
        ));
    }
    let knobs = app.knobs();
    let propagation = knobs.propagation.sample(&mut rand::rng());
    let (now, wall) = (app.clock.now(), app.clock.wall());
    let mut results = Vec::with_capacity(entries.len());
    let mut rebuild = false;
    let mut lost = 0;
    let mut rejected = 0;
    {
        let mut tenant = app.tenant.lock();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("users[{i}].");
            // Echoed only when it can be a user id: the answer's `userId` is a string or null.
            let user_id = match entry.get("userId") {
                Some(Value::String(id)) => Value::String(id.clone()),
                _ => Value::Null,
            };
            let outcome = (|| {
                let obj = entry
                    .as_object()
                    .ok_or_else(|| format!("users[{i}]: must be an object"))?;
                let id = match obj.get("userId") {
                    Some(Value::String(id)) => id.as_str(),
                    None | Some(Value::Null) => return Err(format!("{at}userId: required")),
                    Some(_) => return Err(format!("{at}userId: must be a string")),
                };
                let version =
                    match obj.get("version") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(v.as_u64().ok_or_else(|| {
                            format!("{at}version: must be a non-negative integer")
                        })?),
                    };
                if !tenant.users().contains_key(id) {
                    return Ok(Err(PatchRefused::NotFound));
                }
                let patch = match tenant.parse_user_patch(obj, &at) {
                    Ok(patch) => patch,
                    Err(problems) => return Ok(Err(PatchRefused::Invalid(problems))),
                };
                Ok(tenant.apply_user_patch(
                    id,
                    patch,
                    version,
                    wall,
                    now,
                    propagation,
                    knobs.write_faults(),
                ))
            })();
            let result = match outcome {
                Err(message) => BulkResult {
                    user_id,
                    status: 400,
                    version: None,
                    error: Some(message),
                },
                Ok(Ok((user, effects))) => {
                    rebuild |= effects.cache_rebuild;
                    lost += u64::from(effects.lost);
                    BulkResult {
                        user_id,
                        status: 200,
                        version: Some(user.version),
                        error: None,
                    }
                }
                Ok(Err(refused)) => {
                    rejected += u64::from(matches!(refused, PatchRefused::Rejected));
                    let id = user_id.as_str().unwrap_or_default().to_string();
                    let whole = format!("users[{i}]");
                    let error =
                        entry_refusal(refused, &id, StatusCode::PRECONDITION_FAILED, &whole);
                    let message = match error.details.as_slice() {
                        [] => error.message.clone(),
                        details => details
                            .iter()
                            .map(|d| format!("{}: {}", d.field, d.message))
                            .collect::<Vec<_>>()
                            .join("; "),
                    };
                    BulkResult {
                        user_id,
                        status: error.status.as_u16(),
                        version: None,
                        error: Some(message),
                    }
                }
            };
            results.push(result);
        }
    }
    {
        let mut stats = app.stats.lock();
        stats.cache_rebuilds += u64::from(rebuild);
        stats.writes_lost += lost;
        stats.writes_rejected += rejected;
    }
    let succeeded = results.iter().filter(|r| r.status == 200).count();
    let failed = results.len() - succeeded;
    Ok(
        axum::Json(json!({ "results": results, "succeeded": succeeded, "failed": failed }))
            .into_response(),
    )
}
