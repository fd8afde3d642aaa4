//! `/routing/skills` and `/routing/proficiencies` (SPEC 1.2): one set of handlers, two classes.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;

use super::{ApiResult, Params, PathParam, if_match, json_body, with_etag};
use crate::app::App;
use crate::model::{DefinitionFilter, Kind, check_locale};

/// Which class of definition a route serves, with the scopes it needs.
pub trait DefinitionClass: Send + Sync + 'static {
    /// The class.
    const KIND: Kind;
    /// The collection's path.
    const PATH: &'static str;
    /// Scope for reads.
    const READ: &'static str;
    /// Scope for writes.
    const WRITE: &'static str;
}

/// `/routing/skills`.
pub struct Skills;
/// `/routing/proficiencies`.
pub struct Proficiencies;

impl DefinitionClass for Skills {
    const KIND: Kind = Kind::Skill;
    const PATH: &'static str = "/api/v2/routing/skills";
    const READ: &'static str = "routing:skills:read";
    const WRITE: &'static str = "routing:skills:write";
}

impl DefinitionClass for Proficiencies {
    const KIND: Kind = Kind::Proficiency;
    const PATH: &'static str = "/api/v2/routing/proficiencies";
    const READ: &'static str = "routing:proficiencies:read";
    const WRITE: &'static str = "routing:proficiencies:write";
}

/// `GET /routing/{class}?name=&locale=&active=&page=&pageSize=`.
pub async fn list<C: DefinitionClass>(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), C::READ)?;
    let params = Params::parse(query.as_deref())?;
    let filter = DefinitionFilter {
        name: params.get("name").map(str::to_string),
        locale: params.get("locale").map(str::to_string),
        active: params.flag("active")?,
    };
    if let Some(locale) = &filter.locale {
        check_locale(locale)
            .map_err(|why| crate::error::ApiError::invalid("locale", why.to_string()))?;
    }
    let page = params.page()?;
    let result = app.tenant.lock().list_definitions(C::KIND, &filter, page);
    Ok(axum::Json(result).into_response())
}

/// `POST /routing/{class}`: creates, even when the name+locale already exists.
pub async fn create<C: DefinitionClass>(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), C::WRITE)?;
    let body = json_body(&body)?;
    let (definition, duplicate) = {
        let mut tenant = app.tenant.lock();
        let input = tenant.parse_definition(&body)?;
        let id = uuid::Uuid::new_v4().to_string();
        tenant.create_definition(C::KIND, input, id, app.clock.wall())
    };
    if duplicate {
        app.stats.lock().duplicates_created += 1;
    }
    let mut response = with_etag(StatusCode::CREATED, definition.version, &definition);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{}", C::PATH, definition.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /routing/{class}/{id}`.
pub async fn fetch<C: DefinitionClass>(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), C::READ)?;
    let tenant = app.tenant.lock();
    let definition = tenant.definition(C::KIND, &id)?;
    Ok(with_etag(StatusCode::OK, definition.version, definition))
}

/// `PUT /routing/{class}/{id}`: full replace; `If-Match` optional, stale → 412.
pub async fn replace<C: DefinitionClass>(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), C::WRITE)?;
    let expected = if_match(&headers)?;
    let body = json_body(&body)?;
    let mut tenant = app.tenant.lock();
    tenant.definition(C::KIND, &id)?;
    let input = tenant.parse_definition(&body)?;
    let definition = tenant.replace_definition(C::KIND, &id, input, expected, app.clock.wall())?;
    Ok(with_etag(StatusCode::OK, definition.version, &definition))
}

/// `DELETE /routing/{class}/{id}`: 204, or 409 with reference counts.
pub async fn remove<C: DefinitionClass>(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    app.auth.require(&headers, app.clock.now(), C::WRITE)?;
    app.tenant.lock().delete_definition(C::KIND, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
