//! The users dialect of the second source document (SPEC 1.5): `/users/{id}` with
//! `skills.proficiencies`, a view of the same data as `/routing/users`. Conflicts are 409 here.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::{Serialize, Serializer};

use super::routing_users::refusal;
use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::error::ApiError;
use crate::model::{Assignment, PageOf, User};

/// A user as this dialect shows it, serialized straight from the user (its fields in this
/// order): skill assignments under `skills.proficiencies`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersView<'a> {
    id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    skills: SkillsView<'a>,
    version: u64,
}

/// `{"proficiencies": [{"skill": …, "level": …}, …]}`.
#[derive(Serialize)]
struct SkillsView<'a> {
    proficiencies: SkillLevels<'a>,
}

/// The skill list as `{skill, level}` entries.
struct SkillLevels<'a>(&'a [Assignment]);

#[derive(Serialize)]
struct SkillLevel<'a> {
    skill: &'a str,
    level: u8,
}

impl Serialize for SkillLevels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|a| SkillLevel {
            skill: &a.id,
            level: a.level,
        }))
    }
}

/// A user as this dialect shows it: skill assignments under `skills.proficiencies`.
pub fn users_view(user: &User) -> UsersView<'_> {
    UsersView {
        id: &user.id,
        first_name: &user.first_name,
        last_name: &user.last_name,
        email: &user.email,
        skills: SkillsView {
            proficiencies: SkillLevels(&user.skills),
        },
        version: user.version,
    }
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
    // The lock is held to copy the page's pointers; the page is rendered after.
    let result = app.tenant.lock().list_users(None, None, page);
    Ok(axum::Json(PageOf {
        entities: result.entities.iter().map(|u| users_view(u)).collect(),
        page: result.page,
        page_size: result.page_size,
        total: result.total,
    })
    .into_response())
}

/// `GET /users/{userId}`.
pub async fn fetch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth
        .require(&headers, app.clock.now(), "admin:users:read")?;
    let user = app.tenant.lock().users().get(&id).cloned();
    let user = user.ok_or_else(|| ApiError::not_found("user", &id))?;
    Ok(with_etag(StatusCode::OK, user.version, users_view(&user)))
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
