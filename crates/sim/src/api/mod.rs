//! HTTP handlers: each translates a request into a call on the tenant model and back.
//! Request parsing is done by hand so that every malformed input gets the API's JSON error
//! body naming the field, never a framework's plain-text rejection.

pub mod admin;
pub mod cxone;
pub mod definitions;
pub mod oauth;
#[cfg(test)]
mod openapi_check;
pub mod profiles;
pub mod routing;
pub mod routing_users;
pub mod strategies;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::gateway::gateway;
use crate::model::{MAX_PAGE_SIZE, PageRequest};

/// Handler results: a response or the API's error body.
pub type ApiResult = Result<Response, ApiError>;

/// Every route the simulator serves, as (method, path template). `openapi.json` must list
/// exactly these; a unit test holds the two together.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    use definitions::{Proficiencies, Skills};
    vec![
        ("POST", "/api/v2/oauth/token", post(oauth::token)),
        (
            "GET",
            "/api/v2/routing/skills",
            get(definitions::list::<Skills>),
        ),
        (
            "POST",
            "/api/v2/routing/skills",
            post(definitions::create::<Skills>),
        ),
        (
            "GET",
            "/api/v2/routing/skills/{id}",
            get(definitions::fetch::<Skills>),
        ),
        (
            "PUT",
            "/api/v2/routing/skills/{id}",
            axum::routing::put(definitions::replace::<Skills>),
        ),
        (
            "DELETE",
            "/api/v2/routing/skills/{id}",
            axum::routing::delete(definitions::remove::<Skills>),
        ),
        (
            "GET",
            "/api/v2/routing/proficiencies",
            get(definitions::list::<Proficiencies>),
        ),
        (
            "POST",
            "/api/v2/routing/proficiencies",
            post(definitions::create::<Proficiencies>),
        ),
        (
            "GET",
            "/api/v2/routing/proficiencies/{id}",
            get(definitions::fetch::<Proficiencies>),
        ),
        (
            "PUT",
            "/api/v2/routing/proficiencies/{id}",
            axum::routing::put(definitions::replace::<Proficiencies>),
        ),
        (
            "DELETE",
            "/api/v2/routing/proficiencies/{id}",
            axum::routing::delete(definitions::remove::<Proficiencies>),
        ),
        ("GET", "/api/v2/routing/profiles", get(profiles::list)),
        ("GET", "/api/v2/routing/profiles/{id}", get(profiles::fetch)),
        (
            "PUT",
            "/api/v2/routing/profiles/{id}",
            axum::routing::put(profiles::update),
        ),
        ("GET", "/api/v2/routing/strategies", get(strategies::list)),
        (
            "GET",
            "/api/v2/routing/strategies/{id}",
            get(strategies::fetch),
        ),
        (
            "PUT",
            "/api/v2/routing/strategies/{id}",
            axum::routing::put(strategies::update),
        ),
        ("GET", "/api/v2/routing/users", get(routing_users::list)),
        (
            "POST",
            "/api/v2/routing/users/bulk",
            post(routing_users::bulk),
        ),
        (
            "GET",
            "/api/v2/routing/users/{userId}",
            get(routing_users::fetch),
        ),
        (
            "PUT",
            "/api/v2/routing/users/{userId}",
            axum::routing::put(routing_users::update),
        ),
        ("GET", "/api/v2/routing/queues", get(routing::queues)),
        (
            "POST",
            "/api/v2/interactions/test",
            post(routing::test_interaction),
        ),
        ("GET", "/api/v2/users", get(users::list)),
        ("GET", "/api/v2/users/{userId}", get(users::fetch)),
        (
            "PUT",
            "/api/v2/users/{userId}",
            axum::routing::put(users::update),
        ),
        ("GET", CX_AGENTS, get(cxone::list_agents)),
        ("GET", CX_AGENT_SKILLS, get(cxone::agent_skills)),
        ("POST", CX_AGENT_SKILLS, post(cxone::assign_skills)),
        ("PUT", CX_AGENT_SKILLS, put(cxone::update_skills)),
        ("DELETE", CX_AGENT_SKILLS, delete(cxone::unassign_skills)),
        ("GET", CX_SKILLS, get(cxone::list_skills)),
        ("POST", CX_SKILLS, post(cxone::create_skills)),
        ("GET", CX_SKILLS_AGENTS, get(cxone::skills_agents)),
        ("GET", CX_SKILL, get(cxone::fetch_skill)),
        ("PUT", CX_SKILL, put(cxone::update_skill)),
        ("GET", CX_SKILL_AGENTS, get(cxone::skill_agents)),
        ("POST", CX_SKILL_AGENTS, post(cxone::assign_agents)),
        ("PUT", CX_SKILL_AGENTS, put(cxone::update_agents)),
        ("DELETE", CX_SKILL_AGENTS, delete(cxone::unassign_agents)),
    ]
}

// The CXone dialect's routes; `routes()` needs `&'static str`, so the base path is spelled out
// here rather than joined to `crate::cxone::BASE_PATH` (a unit test holds the two together).
const CX_AGENTS: &str = "/incontactapi/services/v31.0/agents";
const CX_AGENT_SKILLS: &str = "/incontactapi/services/v31.0/agents/{agentId}/skills";
const CX_SKILLS: &str = "/incontactapi/services/v31.0/skills";
const CX_SKILLS_AGENTS: &str = "/incontactapi/services/v31.0/skills/agents";
const CX_SKILL: &str = "/incontactapi/services/v31.0/skills/{skillId}";
const CX_SKILL_AGENTS: &str = "/incontactapi/services/v31.0/skills/{skillId}/agents";

/// Inspection routes (no auth, loopback only), as (method, path template).
pub fn sim_routes() -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("GET", "/sim/stats", get(admin::stats)),
        ("GET", "/sim/state", get(admin::state)),
        ("POST", "/sim/reset", post(admin::reset)),
        ("GET", "/sim/other-writer", get(admin::other_writer)),
        ("GET", "/sim/config", get(admin::config)),
        (
            "PATCH",
            "/sim/config",
            axum::routing::patch(admin::patch_config),
        ),
        ("GET", "/sim/clock", get(admin::clock)),
        ("POST", "/sim/clock/advance", post(admin::advance_clock)),
    ]
}

/// The whole application: the API behind the gateway, the inspection routes, the OpenAPI
/// document and a small index for people exploring with curl.
pub fn router(app: Arc<App>) -> Router {
    let mut api = Router::new();
    for (_, path, handler) in merge_by_path(routes()) {
        api = api.route(path, handler);
    }
    let api = api
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(app.clone(), gateway));
    let mut sim = Router::new();
    for (_, path, handler) in merge_by_path(sim_routes()) {
        sim = sim.route(path, handler);
    }
    let sim = sim
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(admin::loopback_only));
    Router::new()
        .route("/", get(admin::index))
        .route("/openapi.json", get(admin::openapi))
        .merge(api)
        .merge(sim)
        .fallback(no_such_route)
        .with_state(app)
}

/// A method the path does not serve: the API's JSON error (axum adds `Allow`), not an empty body.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} does not take {method}; see /openapi.json", uri.path()),
    )
}

/// A route's one path parameter (an id), or 400 naming it: axum's own rejection is plain text.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(rejection) => {
                let field = match &rejection {
                    PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                        axum::extract::path::ErrorKind::InvalidUtf8InPathParam { key } => {
                            key.clone()
                        }
                        _ => "path".to_string(),
                    },
                    _ => "path".to_string(),
                };
                Err(ApiError::invalid(field, rejection.body_text()))
            }
        }
    }
}

/// Routes that share a path share one `MethodRouter`.
fn merge_by_path(
    routes: Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)>,
) -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    let mut merged: Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> = Vec::new();
    for (method, path, handler) in routes {
        match merged.iter_mut().find(|(_, p, _)| *p == path) {
            Some(slot) => slot.2 = std::mem::take(&mut slot.2).merge(handler),
            None => merged.push((method, path, handler)),
        }
    }
    merged
}

async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
        format!("no route {}; see /openapi.json", uri.path()),
    )
}

/// Query-string parameters.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .map_err(|e| ApiError::invalid("query", format!("malformed query string: {e}")))?;
        Ok(Params(pairs))
    }

    /// One parameter's value; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// `page` and `pageSize` (defaults 1 and 100; pageSize at most 500).
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let number = |name: &str, default: usize| -> Result<usize, ApiError> {
            match self.get(name) {
                None => Ok(default),
                Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::invalid(name, format!("must be a positive integer, got `{v}`"))
                }),
            }
        };
        let page = number("page", 1)?;
        let page_size = number("pageSize", 100)?;
        if page_size > MAX_PAGE_SIZE {
            return Err(ApiError::invalid(
                "pageSize",
                format!("must be at most {MAX_PAGE_SIZE}, got {page_size}"),
            ));
        }
        Ok(PageRequest { page, page_size })
    }

    /// A boolean parameter.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                name,
                format!("must be true or false, got `{other}`"),
            )),
        }
    }
}

/// Parses a JSON body.
pub fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("not valid JSON: {e}")))
}

/// The version an `If-Match` header asks for: `"7"`, `7` or `W/"7"`; `*` and absence mean any.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    // Exactly one of the forms this API documents; stripping quotes wherever they stand would
    // take a malformed tag such as `"7` as version 7 and write with it.
    let weak = text.strip_prefix("W/");
    let quoted = weak
        .unwrap_or(text)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'));
    let bare = match quoted {
        Some(inner) => inner,
        // A weak tag is always quoted.
        None if weak.is_some() => "",
        None => text,
    };
    let digits = !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit());
    digits
        .then(|| bare.parse().ok())
        .flatten()
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                "If-Match",
                format!("`{text}` is not an ETag this API issued (they look like \"7\")"),
            )
        })
}

/// The `ETag` value for a version.
pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

/// A JSON response carrying an ETag.
pub fn with_etag(status: StatusCode, version: u64, body: impl Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}
