//! The CXone Admin API dialect (`docs/sim-cxone.md`): integer ids, `skip`/`top` paging,
//! assignments read and written per skill with result sets that fail some agents and not
//! others, a proficiency of 1–20 where 1 is best (mapped through
//! [`Settings::proficiency_scale`](crate::Settings)), no ETags and no locale field.
//!
//! Per-skill writes never replace an agent's whole list, so this client never sends what it did
//! not mean to change: a user write becomes the difference between the user as read and the new
//! list, one call per operation.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use skillsync_core::{
    Assignment, Definition, DefinitionId, Kind, Locale, ProficiencyScale, UserAssignments, UserId,
    Version,
};

use crate::api::{
    AgentAssignment, AssignmentOp, Capabilities, DefinitionQuery, DefinitionWrite, EntryOutcome,
    NewDefinition, Profile, Queue, Routed, Strategy, TenantApi, UserProfile, UserQuery, UserWrite,
};
use crate::error::{AnswerProblem, Error, Result};
use crate::http::{Call, Http};
use crate::metrics::CounterSnapshot;
use crate::settings::Dialect;

/// Most agents or skills one listing page holds.
pub const LIST_TOP: usize = 1000;
/// Most assignments one assignment listing page holds.
pub const ASSIGNMENT_TOP: usize = 10_000;
/// Most entries one assignment write or skill create carries.
pub const MAX_WRITE_ENTRIES: usize = 100;
/// Most skill ids one `GET /skills/agents` names.
const SKILLS_PER_READ: usize = 100;
/// Pages fetched at once after the first.
const PAGES_IN_PARALLEL: usize = 8;

/// What the CXone dialect does: skills only (no proficiency definitions), an active flag per
/// assignment, writes per skill of up to 100 agents, no profiles, strategies or deletes.
pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    dialect: Dialect::Cxone,
    max_bulk_entries: None,
    proficiencies: false,
    inactive_assignments: true,
    strategies: false,
    profiles: false,
    locale_in_name: true,
    per_definition_writes: Some(MAX_WRITE_ENTRIES),
    deletes_definitions: false,
    max_create_batch: Some(MAX_WRITE_ENTRIES),
};

/// The locale every definition read in this dialect carries until the engine matches its name
/// to a catalog variant: the tenant has no locale field.
fn unknown_locale() -> Locale {
    Locale::parse("und").expect("`und` is a locale tag")
}

/// The CXone dialect.
#[derive(Debug, Clone)]
pub struct CxoneApi {
    pub(crate) http: Arc<Http>,
    pub(crate) scale: ProficiencyScale,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSkill {
    skill_id: u64,
    skill_name: String,
    #[serde(default = "yes")]
    is_active: bool,
    #[serde(default)]
    description: Option<String>,
}

fn yes() -> bool {
    true
}

impl WireSkill {
    fn into_domain(self) -> Definition {
        Definition {
            id: DefinitionId(self.skill_id.to_string()),
            kind: Kind::Skill,
            name: self.skill_name,
            locale: unknown_locale(),
            active: self.is_active,
            description: self.description.unwrap_or_default(),
            routing_profile_id: String::new(),
            version: Version(0),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAgent {
    agent_id: u64,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAssignment {
    skill_id: u64,
    agent_id: u64,
    proficiency: u8,
    #[serde(default = "yes")]
    is_active: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAgentSkill {
    skill_id: u64,
    proficiency: u8,
    #[serde(default = "yes")]
    is_active: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntryError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntryResult {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<WireEntryError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResultSet {
    #[serde(default, alias = "skillResults")]
    agent_results: Vec<WireEntryResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWriteAnswer {
    result_set: WireResultSet,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSkillResult {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    skill_id: Option<u64>,
    #[serde(default)]
    error: Option<WireEntryError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCreateAnswer {
    skill_results: Vec<WireSkillResult>,
}

#[derive(Deserialize)]
struct WireSkills {
    skills: Vec<WireSkill>,
}

/// A listing page: its items under the key the endpoint uses, and the total.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireList<T> {
    total_records: usize,
    #[serde(
        alias = "agents",
        alias = "skills",
        alias = "agentSkillAssignments",
        default = "Vec::new"
    )]
    items: Vec<T>,
}

/// What one entry's error means to the engine.
fn entry_outcome(result: WireEntryResult) -> EntryOutcome {
    if result.success {
        return EntryOutcome::Applied(Version(0));
    }
    let error = result.error.unwrap_or(WireEntryError {
        code: "UNKNOWN".into(),
        message: "failed without a reason".into(),
    });
    match error.code.as_str() {
        // The assignment was not as the write assumed: someone (or our own lost answer) changed
        // it. Re-read and write the difference again.
        "ALREADY_ASSIGNED" | "NOT_ASSIGNED" => EntryOutcome::Conflict,
        "AGENT_NOT_FOUND" => EntryOutcome::NotFound,
        code => EntryOutcome::Rejected(format!("{code}: {}", error.message)),
    }
}

/// One page of a `skip`/`top` listing.
async fn fetch_list<W: DeserializeOwned>(
    http: &Http,
    route: &'static str,
    path: String,
    filters: Vec<(&'static str, String)>,
    skip: usize,
    top: usize,
) -> Result<(Vec<W>, usize)> {
    let mut call = Call::new(Method::GET, route, path);
    for (name, value) in filters {
        call = call.query(name, value);
    }
    let call = call.query("skip", skip).query("top", top);
    let reply = http.send(&call).await?;
    let body: WireList<W> = reply.json(&call)?;
    Ok((body.items, body.total_records))
}

/// Every item of a `skip`/`top` listing, in order: the first page tells the total, the rest
/// are fetched concurrently (the throttle still paces them).
async fn list_all<W: DeserializeOwned + Send>(
    http: &Http,
    route: &'static str,
    path: String,
    filters: Vec<(&'static str, String)>,
    top: usize,
) -> Result<Vec<W>> {
    let (mut items, total) =
        fetch_list::<W>(http, route, path.clone(), filters.clone(), 0, top).await?;
    let served = items.len();
    if served == 0 || served >= total {
        return Ok(items);
    }
    let pages: Vec<_> = (served..total)
        .step_by(served)
        .map(|skip| fetch_list::<W>(http, route, path.clone(), filters.clone(), skip, served))
        .collect();
    let rest: Vec<(Vec<W>, usize)> = stream::iter(pages)
        .buffered(PAGES_IN_PARALLEL)
        .try_collect()
        .await?;
    let rest = rest.into_iter().map(|(page, _)| page);
    items.extend(rest.into_iter().flatten());
    Ok(items)
}

fn parse_id(id: &str, what: &'static str) -> Result<u64> {
    id.parse().map_err(|_| Error::NotFound {
        what,
        id: id.to_string(),
    })
}

fn method_of(op: AssignmentOp) -> Method {
    match op {
        AssignmentOp::Assign => Method::POST,
        AssignmentOp::Update => Method::PUT,
        AssignmentOp::Unassign => Method::DELETE,
    }
}

impl CxoneApi {
    fn entry(
        &self,
        op: AssignmentOp,
        id_key: &str,
        id: u64,
        level: skillsync_core::Level,
        active: bool,
    ) -> serde_json::Value {
        match op {
            AssignmentOp::Unassign => json!({ id_key: id }),
            _ => json!({
                id_key: id,
                "isActive": active,
                "proficiency": self.scale.to_tenant(level),
            }),
        }
    }

    /// Builds a user's assignments from the tenant's rows, mapping each proficiency to a level.
    fn user_from(&self, user_id: UserId, rows: Vec<(u64, u8, bool)>) -> UserAssignments {
        let mut unmapped = BTreeMap::new();
        let skills = rows
            .into_iter()
            .map(|(skill, value, active)| {
                let definition = DefinitionId(skill.to_string());
                let level = match self.scale.to_level(value) {
                    Some(level) => level,
                    None => {
                        unmapped.insert(definition.clone(), value);
                        skillsync_core::Level::new(1).expect("1 is a level")
                    }
                };
                Assignment {
                    definition,
                    level,
                    active,
                }
            })
            .collect();
        UserAssignments {
            user_id,
            skills,
            proficiencies: None,
            version: Version(0),
            modified_at: None,
            unmapped,
        }
    }

    async fn skills_of_agent(&self, agent: u64) -> Result<Vec<(u64, u8, bool)>> {
        let path = format!("/agents/{agent}/skills");
        let rows: Vec<WireAgentSkill> = list_all(
            &self.http,
            "/agents/{agentId}/skills",
            path,
            Vec::new(),
            ASSIGNMENT_TOP,
        )
        .await
        .map_err(|error| match error {
            Error::NotFound { .. } => Error::NotFound {
                what: "user",
                id: agent.to_string(),
            },
            other => other,
        })?;
        Ok(rows
            .into_iter()
            .map(|r| (r.skill_id, r.proficiency, r.is_active))
            .collect())
    }

    async fn skill_ids(&self) -> Result<Vec<u64>> {
        let skills: Vec<WireSkill> = list_all(
            &self.http,
            "/skills",
            "/skills".into(),
            Vec::new(),
            LIST_TOP,
        )
        .await?;
        Ok(skills.into_iter().map(|s| s.skill_id).collect())
    }

    /// Every assignment of these skills, through listings naming up to 100 skills each.
    async fn assignment_rows(&self, skill_ids: &[u64]) -> Result<Vec<WireAssignment>> {
        let reads: Vec<_> = skill_ids
            .chunks(SKILLS_PER_READ)
            .map(|chunk| {
                let ids = chunk
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                list_all::<WireAssignment>(
                    &self.http,
                    "/skills/agents",
                    "/skills/agents".into(),
                    vec![("skills", ids)],
                    ASSIGNMENT_TOP,
                )
            })
            .collect();
        let pages: Vec<Vec<WireAssignment>> = stream::iter(reads)
            .buffered(PAGES_IN_PARALLEL)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn all_users(&self, query: UserQuery) -> Result<Vec<UserAssignments>> {
        if query.proficiency_id.is_some() {
            return Ok(Vec::new());
        }
        let mut by_agent: BTreeMap<u64, Vec<(u64, u8, bool)>> = BTreeMap::new();
        if let Some(id) = &query.skill_id {
            // The holders of one skill, each with every skill they hold (what a caller that
            // strips it checks the rest of the list against): their rows among all skills'.
            let skill = parse_id(id.as_str(), "skill")?;
            let holders: std::collections::BTreeSet<u64> = self
                .assignment_rows(&[skill])
                .await?
                .into_iter()
                .map(|row| row.agent_id)
                .collect();
            if holders.is_empty() {
                return Ok(Vec::new());
            }
            let all = self.skill_ids().await?;
            for row in self.assignment_rows(&all).await? {
                if holders.contains(&row.agent_id) {
                    by_agent.entry(row.agent_id).or_default().push((
                        row.skill_id,
                        row.proficiency,
                        row.is_active,
                    ));
                }
            }
        } else {
            let skill_ids: Vec<u64> = match &query.definitions {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| id.as_str().parse().ok())
                    .collect(),
                None => self.skill_ids().await?,
            };
            let agents = async {
                if query.holders_only && query.definitions.is_some() {
                    return Ok(None);
                }
                let agents: Vec<WireAgent> = list_all(
                    &self.http,
                    "/agents",
                    "/agents".into(),
                    Vec::new(),
                    LIST_TOP,
                )
                .await?;
                Ok::<_, Error>(Some(agents))
            };
            let rows = async {
                if skill_ids.is_empty() {
                    Ok(Vec::new())
                } else {
                    self.assignment_rows(&skill_ids).await
                }
            };
            let (agents, rows) = tokio::try_join!(agents, rows)?;
            for agent in agents.iter().flatten() {
                by_agent.entry(agent.agent_id).or_default();
            }
            for row in rows {
                // An assignment of an agent the listing did not have (created meanwhile) is
                // kept: the agent exists.
                by_agent.entry(row.agent_id).or_default().push((
                    row.skill_id,
                    row.proficiency,
                    row.is_active,
                ));
            }
        }
        Ok(by_agent
            .into_iter()
            .map(|(agent, rows)| self.user_from(UserId(agent.to_string()), rows))
            .collect())
    }

    /// Sends one operation for one agent through the per-agent mirror.
    async fn write_agent_op(
        &self,
        agent: u64,
        op: AssignmentOp,
        entries: &[Assignment],
    ) -> Result<Vec<EntryOutcome>> {
        let body: Vec<serde_json::Value> = entries
            .iter()
            .map(|a| {
                let id = a.definition.as_str().parse::<u64>().unwrap_or_default();
                self.entry(op, "skillId", id, a.level, a.active)
            })
            .collect();
        let call = Call::new(
            method_of(op),
            "/agents/{agentId}/skills",
            format!("/agents/{agent}/skills"),
        )
        .json(json!({ "skills": body }))
        .about("user", agent);
        let reply = self.http.send(&call).await?;
        let answer: WireWriteAnswer = reply.json(&call)?;
        if answer.result_set.agent_results.len() != entries.len() {
            return Err(call.protocol_error(AnswerProblem::BulkResults {
                results: answer.result_set.agent_results.len(),
                entries: entries.len(),
            }));
        }
        Ok(answer
            .result_set
            .agent_results
            .into_iter()
            .map(entry_outcome)
            .collect())
    }
}

#[async_trait]
impl TenantApi for CxoneApi {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn counters(&self) -> CounterSnapshot {
        self.http.counters.snapshot()
    }

    async fn token_ready(&self) -> Result<()> {
        self.http.token_ready().await
    }

    fn definitions(&self, kind: Kind, query: DefinitionQuery) -> BoxStream<'_, Result<Definition>> {
        if kind == Kind::Proficiency {
            // CXone has skills only; a proficiency is a value on an assignment.
            return stream::empty().boxed();
        }
        let mut filters = Vec::new();
        if let Some(name) = &query.name {
            filters.push(("searchString", name.clone()));
        }
        let wanted_name = query.name.clone();
        let active = query.active;
        stream::once(async move {
            list_all::<WireSkill>(&self.http, "/skills", "/skills".into(), filters, LIST_TOP).await
        })
        .map_ok(move |skills| {
            let wanted_name = wanted_name.clone();
            stream::iter(
                skills
                    .into_iter()
                    .map(WireSkill::into_domain)
                    .filter(move |d| {
                        wanted_name
                            .as_ref()
                            .is_none_or(|n| d.name.eq_ignore_ascii_case(n))
                            && active.is_none_or(|a| d.active == a)
                    })
                    .map(Ok),
            )
        })
        .try_flatten()
        .boxed()
    }

    async fn find_definitions(
        &self,
        kind: Kind,
        name: &str,
        locale: &Locale,
    ) -> Result<Vec<Definition>> {
        // Names are unique (ignoring case) and carry the locale: the one with this name is the
        // variant asked for.
        let query = DefinitionQuery {
            name: Some(name.to_string()),
            locale: None,
            active: None,
        };
        let found: Vec<Definition> = self.definitions(kind, query).try_collect().await?;
        Ok(found
            .into_iter()
            .map(|mut d| {
                d.locale = locale.clone();
                d
            })
            .collect())
    }

    async fn create_definition(&self, new: &NewDefinition) -> Result<Definition> {
        let mut outcomes = self.create_definitions(std::slice::from_ref(new)).await?;
        match outcomes.pop() {
            Some(Err(Error::Rejected { code, .. })) if code == "DUPLICATE_NAME" => {
                // Made by an earlier attempt whose answer was lost, or by someone else since
                // the look-up: the name is unique, so the one that has it is the one.
                let mut found = self
                    .find_definitions(new.kind, &new.name, &new.locale)
                    .await?;
                found.pop().ok_or(Error::NotFound {
                    what: "skill",
                    id: new.name.clone(),
                })
            }
            Some(outcome) => outcome,
            None => Err(Error::NotFound {
                what: "skill",
                id: new.name.clone(),
            }),
        }
    }

    async fn create_definitions(&self, news: &[NewDefinition]) -> Result<Vec<Result<Definition>>> {
        if news.iter().any(|n| n.kind == Kind::Proficiency) {
            return Err(Error::Unsupported {
                dialect: "cxone",
                operation: "proficiency definitions",
            });
        }
        let items: Vec<serde_json::Value> = news
            .iter()
            .map(|new| {
                json!({
                    "skillName": new.name,
                    "isActive": true,
                    "description": new.description,
                })
            })
            .collect();
        let call = Call::new(Method::POST, "/skills", "/skills".to_string())
            .json(json!({ "skills": items }))
            .no_blind_retry()
            .about(
                "skill",
                news.first().map(|n| n.name.as_str()).unwrap_or_default(),
            );
        let reply = self.http.send(&call).await?;
        let answer: WireCreateAnswer = reply.json(&call)?;
        if answer.skill_results.len() != news.len() {
            return Err(call.protocol_error(AnswerProblem::BulkResults {
                results: answer.skill_results.len(),
                entries: news.len(),
            }));
        }
        Ok(news
            .iter()
            .zip(answer.skill_results)
            .map(
                |(new, result)| match (result.success, result.skill_id, result.error) {
                    (true, Some(id), _) => Ok(Definition {
                        id: DefinitionId(id.to_string()),
                        kind: Kind::Skill,
                        name: new.name.clone(),
                        locale: new.locale.clone(),
                        active: true,
                        description: new.description.clone(),
                        routing_profile_id: String::new(),
                        version: Version(0),
                    }),
                    (_, _, error) => {
                        let error = error.unwrap_or(WireEntryError {
                            code: "UNKNOWN".into(),
                            message: "failed without a reason".into(),
                        });
                        Err(Error::Rejected {
                            method: "POST".into(),
                            route: "/skills",
                            status: 200,
                            code: error.code,
                            message: format!("{}: {}", new.name, error.message),
                            details: Vec::new(),
                        })
                    }
                },
            )
            .collect())
    }

    async fn update_definition(&self, d: &Definition) -> Result<Definition> {
        let id = parse_id(d.id.as_str(), "skill")?;
        let call = Call::new(Method::PUT, "/skills/{skillId}", format!("/skills/{id}"))
            .json(json!({
                "skillName": d.name,
                "isActive": d.active,
                "description": d.description,
            }))
            .about("skill", id);
        let reply = self.http.send(&call).await?;
        let answer: WireSkills = reply.json(&call)?;
        let mut updated = answer
            .skills
            .into_iter()
            .next()
            .map(WireSkill::into_domain)
            .ok_or_else(|| {
                call.protocol_error(AnswerProblem::BulkResults {
                    results: 0,
                    entries: 1,
                })
            })?;
        updated.locale = d.locale.clone();
        Ok(updated)
    }

    async fn delete_definition(&self, _kind: Kind, _id: &DefinitionId) -> Result<()> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "deleting a skill (deactivate it instead)",
        })
    }

    fn users(&self, query: UserQuery) -> BoxStream<'_, Result<UserAssignments>> {
        stream::once(self.all_users(query))
            .map_ok(|users| stream::iter(users.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn users_page(&self, _page: usize) -> Result<Vec<UserAssignments>> {
        // Agents are listed without their skills here: a page of them cannot be re-read.
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "reading a page of users with their assignments",
        })
    }

    async fn user(&self, id: &UserId) -> Result<UserAssignments> {
        let agent = parse_id(id.as_str(), "user")?;
        let rows = self.skills_of_agent(agent).await?;
        Ok(self.user_from(id.clone(), rows))
    }

    fn user_profiles(&self) -> BoxStream<'_, Result<UserProfile>> {
        stream::once(async move {
            list_all::<WireAgent>(
                &self.http,
                "/agents",
                "/agents".into(),
                Vec::new(),
                LIST_TOP,
            )
            .await
        })
        .map_ok(|agents| {
            stream::iter(agents.into_iter().map(|a| {
                Ok(UserProfile {
                    user_id: UserId(a.agent_id.to_string()),
                    email: a.email_address.unwrap_or_default(),
                    first_name: a.first_name.unwrap_or_default(),
                    last_name: a.last_name.unwrap_or_default(),
                })
            }))
        })
        .try_flatten()
        .boxed()
    }

    async fn write_user(&self, write: &UserWrite) -> Result<Version> {
        if write.proficiencies.is_some() {
            return Err(Error::Unsupported {
                dialect: "cxone",
                operation: "proficiency assignments",
            });
        }
        let Some(skills) = &write.skills else {
            return Ok(write.version);
        };
        let agent = parse_id(write.user_id.as_str(), "user")?;
        let read;
        let as_read = match &write.as_read {
            Some(user) => user,
            None => {
                read = self.user(&write.user_id).await?;
                &read
            }
        };
        let ops = skillsync_core::assignment_difference(&as_read.skills, &as_read.unmapped, skills);
        let mut by_op: BTreeMap<AssignmentOp, Vec<Assignment>> = BTreeMap::new();
        for (op, assignment) in ops {
            by_op.entry(op).or_default().push(assignment);
        }
        // Unassign first, so an agent never holds more than either list says while the calls go
        // out; then updates, then assigns.
        for op in [
            AssignmentOp::Unassign,
            AssignmentOp::Update,
            AssignmentOp::Assign,
        ] {
            let Some(entries) = by_op.get(&op) else {
                continue;
            };
            for chunk in entries.chunks(MAX_WRITE_ENTRIES) {
                let outcomes = self.write_agent_op(agent, op, chunk).await?;
                for (entry, outcome) in chunk.iter().zip(outcomes) {
                    match outcome {
                        EntryOutcome::Applied(_) => {}
                        EntryOutcome::Conflict => {
                            return Err(Error::Conflict {
                                what: "user",
                                id: write.user_id.to_string(),
                                expected: None,
                            });
                        }
                        EntryOutcome::NotFound => {
                            return Err(Error::NotFound {
                                what: "user",
                                id: write.user_id.to_string(),
                            });
                        }
                        EntryOutcome::Rejected(why) => {
                            return Err(Error::Rejected {
                                method: method_of(op).to_string(),
                                route: "/agents/{agentId}/skills",
                                status: 200,
                                code: why.split(':').next().unwrap_or_default().to_string(),
                                message: format!("skill {}: {why}", entry.definition),
                                details: Vec::new(),
                            });
                        }
                    }
                }
            }
        }
        Ok(Version(0))
    }

    async fn write_users(&self, _writes: &[UserWrite]) -> Result<Vec<EntryOutcome>> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "bulk user writes (it writes per skill)",
        })
    }

    async fn write_definition(&self, write: &DefinitionWrite) -> Result<Vec<EntryOutcome>> {
        let skill = parse_id(write.definition.as_str(), "skill")?;
        let mut body = Vec::with_capacity(write.agents.len());
        for AgentAssignment {
            user_id,
            level,
            active,
        } in &write.agents
        {
            let Ok(agent) = user_id.as_str().parse::<u64>() else {
                // Not an agent id this tenant could have.
                body.push(None);
                continue;
            };
            body.push(Some(
                self.entry(write.op, "agentId", agent, *level, *active),
            ));
        }
        let sent: Vec<serde_json::Value> = body.iter().flatten().cloned().collect();
        let mut outcomes = Vec::with_capacity(body.len());
        let mut answered = if sent.is_empty() {
            Vec::new().into_iter()
        } else {
            let call = Call::new(
                method_of(write.op),
                "/skills/{skillId}/agents",
                format!("/skills/{skill}/agents"),
            )
            .json(json!({ "agents": sent }))
            .about("skill", skill);
            let reply = self.http.send(&call).await?;
            let answer: WireWriteAnswer = reply.json(&call)?;
            if answer.result_set.agent_results.len() != sent.len() {
                return Err(call.protocol_error(AnswerProblem::BulkResults {
                    results: answer.result_set.agent_results.len(),
                    entries: sent.len(),
                }));
            }
            answer.result_set.agent_results.into_iter()
        };
        for entry in &body {
            outcomes.push(match entry {
                None => EntryOutcome::NotFound,
                Some(_) => answered
                    .next()
                    .map_or(EntryOutcome::NotFound, entry_outcome),
            });
        }
        Ok(outcomes)
    }

    fn profiles(&self, _kind: Option<(Kind, DefinitionId)>) -> BoxStream<'_, Result<Profile>> {
        // No routing profiles in this dialect: nothing references a skill but its agents.
        stream::empty().boxed()
    }

    async fn write_profile(&self, _profile: &Profile) -> Result<Version> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "routing profiles",
        })
    }

    fn strategies(&self, _proficiency: Option<DefinitionId>) -> BoxStream<'_, Result<Strategy>> {
        stream::once(async {
            Err(Error::Unsupported {
                dialect: "cxone",
                operation: "routing strategies",
            })
        })
        .boxed()
    }

    async fn write_strategy(&self, _strategy: &Strategy) -> Result<Version> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "routing strategies",
        })
    }

    async fn queues(&self) -> Result<Vec<Queue>> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "queues and test interactions",
        })
    }

    async fn test_interaction(&self, _queue_id: &str) -> Result<Routed> {
        Err(Error::Unsupported {
            dialect: "cxone",
            operation: "queues and test interactions",
        })
    }
}
