//! The CXone dialect (`/incontactapi/services/v31.0`, `docs/sim-cxone.md`): each handler checks
//! the token's scope first, so a caller without it learns nothing about ids or bodies, then
//! hands the request to the dialect's tenant in `crate::cxone` under its lock.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{ApiResult, Params, PathParam, json_body};
use crate::app::App;
use crate::cxone::{
    AssignOp, EntryCode, MAX_ASSIGNMENT_TOP, MAX_TOP, Paging, Side, agent_not_found, parse_path_id,
    parse_skill_list, result_set, skill_not_found,
};
use crate::error::ApiError;

const AGENTS_READ: &str = "cxone:agents:read";
const SKILLS_READ: &str = "cxone:skills:read";
const SKILLS_WRITE: &str = "cxone:skills:write";

fn require(app: &App, headers: &HeaderMap, scope: &str) -> Result<(), ApiError> {
    app.auth.require(headers, app.clock.now(), scope)
}

fn paging(query: Option<&str>, max_top: usize) -> Result<(Params, Paging), ApiError> {
    let params = Params::parse(query)?;
    let paging = Paging::parse(params.get("skip"), params.get("top"), max_top)?;
    Ok((params, paging))
}

fn answer(body: Value) -> ApiResult {
    Ok(axum::Json(body).into_response())
}

/// `GET /agents?skip=&top=`.
pub async fn list_agents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    require(&app, &headers, AGENTS_READ)?;
    let (_, paging) = paging(query.as_deref(), MAX_TOP)?;
    let tenant = app.cxone.lock();
    let (total, agents) = paging.cut(tenant.agents());
    answer(json!({ "totalRecords": total, "agents": agents }))
}

/// `GET /skills?skip=&top=&searchString=`.
pub async fn list_skills(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    require(&app, &headers, SKILLS_READ)?;
    let (params, paging) = paging(query.as_deref(), MAX_TOP)?;
    let tenant = app.cxone.lock();
    let (total, skills) = paging.cut(tenant.search_skills(params.get("searchString")));
    answer(json!({ "totalRecords": total, "skills": skills }))
}

/// `GET /skills/{skillId}`: `{"skills": [skill]}`.
pub async fn fetch_skill(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult {
    require(&app, &headers, SKILLS_READ)?;
    let id = parse_path_id(&id, "skillId")?;
    let tenant = app.cxone.lock();
    let skill = tenant.skill(id).ok_or_else(|| skill_not_found(id))?;
    answer(json!({ "skills": [skill] }))
}

/// `POST /skills`: per-item results, 200 whatever they are once the body is valid.
pub async fn create_skills(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    require(&app, &headers, SKILLS_WRITE)?;
    let body = json_body(&body)?;
    let results = app.cxone.lock().create_skills(&body)?;
    let results: Vec<Value> = results.iter().map(|r| r.to_json()).collect();
    answer(json!({ "skillResults": results }))
}

/// `PUT /skills/{skillId}`.
pub async fn update_skill(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Bytes,
) -> ApiResult {
    require(&app, &headers, SKILLS_WRITE)?;
    let id = parse_path_id(&id, "skillId")?;
    let body = json_body(&body)?;
    let skill = app.cxone.lock().update_skill(id, &body)?;
    answer(json!({ "skills": [skill] }))
}

/// `GET /skills/{skillId}/agents?skip=&top=`.
pub async fn skill_agents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    RawQuery(query): RawQuery,
) -> ApiResult {
    require(&app, &headers, SKILLS_READ)?;
    let id = parse_path_id(&id, "skillId")?;
    let (_, paging) = paging(query.as_deref(), MAX_ASSIGNMENT_TOP)?;
    let tenant = app.cxone.lock();
    if tenant.skill(id).is_none() {
        return Err(skill_not_found(id));
    }
    let (total, held) = paging.cut(tenant.holders_of(id));
    let agents: Vec<Value> = held
        .iter()
        .map(|a| json!({ "agentId": a.agent_id, "isActive": a.is_active, "proficiency": a.proficiency }))
        .collect();
    answer(json!({ "totalRecords": total, "skillId": id, "agents": agents }))
}

/// `GET /skills/agents?skills=1001,1002&skip=&top=`.
pub async fn skills_agents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult {
    require(&app, &headers, SKILLS_READ)?;
    let params = Params::parse(query.as_deref())?;
    let ids = parse_skill_list(params.get("skills"))?;
    let paging = Paging::parse(params.get("skip"), params.get("top"), MAX_ASSIGNMENT_TOP)?;
    let tenant = app.cxone.lock();
    let held = tenant.holders_of_all(&ids)?;
    let (total, page) = paging.cut(held.into_iter());
    answer(json!({ "totalRecords": total, "agentSkillAssignments": page }))
}

/// `GET /agents/{agentId}/skills?skip=&top=`.
pub async fn agent_skills(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    RawQuery(query): RawQuery,
) -> ApiResult {
    require(&app, &headers, SKILLS_READ)?;
    let id = parse_path_id(&id, "agentId")?;
    let (_, paging) = paging(query.as_deref(), MAX_ASSIGNMENT_TOP)?;
    let tenant = app.cxone.lock();
    if tenant.agent(id).is_none() {
        return Err(agent_not_found(id));
    }
    let (total, held) = paging.cut(tenant.held_by(id));
    let skills: Vec<Value> = held
        .iter()
        .map(|a| {
            let name = tenant.skill(a.skill_id).map(|s| s.skill_name.as_str());
            json!({
                "skillId": a.skill_id,
                "skillName": name.unwrap_or_default(),
                "isActive": a.is_active,
                "proficiency": a.proficiency,
            })
        })
        .collect();
    answer(json!({ "totalRecords": total, "agentId": id, "skills": skills }))
}

/// `POST`, `PUT` or `DELETE` on either side's assignments: the tenant's result set, with each
/// refused entry counted in `/sim/stats` as a rejected write.
fn write(app: &App, op: AssignOp, side: Side, raw: &Bytes) -> ApiResult {
    let body = json_body(raw)?;
    let reject_rate = app.knobs().reject_write_rate;
    let results = app
        .cxone
        .lock()
        .write_assignments(op, side, &body, reject_rate)?;
    let rejected = results
        .iter()
        .filter(|r| {
            r.outcome
                .as_ref()
                .is_err_and(|e| e.code == EntryCode::Rejected)
        })
        .count();
    if rejected > 0 {
        app.stats.lock().writes_rejected += rejected as u64;
    }
    answer(result_set(side, &results))
}

/// A write's skill, after the scope: a caller without the scope learns nothing about ids.
fn skill_side(app: &App, headers: &HeaderMap, raw_id: &str) -> Result<Side, ApiError> {
    require(app, headers, SKILLS_WRITE)?;
    Ok(Side::Skill(parse_path_id(raw_id, "skillId")?))
}

/// A write's agent, after the scope.
fn agent_side(app: &App, headers: &HeaderMap, raw_id: &str) -> Result<Side, ApiError> {
    require(app, headers, SKILLS_WRITE)?;
    Ok(Side::Agent(parse_path_id(raw_id, "agentId")?))
}

/// The six assignment writes differ only in the operation and the side the path names.
macro_rules! assignment_write {
    ($name:ident, $op:expr, $side:ident, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(app): State<Arc<App>>,
            headers: HeaderMap,
            PathParam(id): PathParam,
            body: Bytes,
        ) -> ApiResult {
            let side = $side(&app, &headers, &id)?;
            write(&app, $op, side, &body)
        }
    };
}

assignment_write!(
    assign_agents,
    AssignOp::Assign,
    skill_side,
    "`POST /skills/{skillId}/agents`: assign."
);
assignment_write!(
    update_agents,
    AssignOp::Update,
    skill_side,
    "`PUT /skills/{skillId}/agents`: update."
);
assignment_write!(
    unassign_agents,
    AssignOp::Unassign,
    skill_side,
    "`DELETE /skills/{skillId}/agents`: unassign."
);
assignment_write!(
    assign_skills,
    AssignOp::Assign,
    agent_side,
    "`POST /agents/{agentId}/skills`: assign."
);
assignment_write!(
    update_skills,
    AssignOp::Update,
    agent_side,
    "`PUT /agents/{agentId}/skills`: update."
);
assignment_write!(
    unassign_skills,
    AssignOp::Unassign,
    agent_side,
    "`DELETE /agents/{agentId}/skills`: unassign."
);
