//! The CXone Admin API dialect's own tenant (`docs/sim-cxone.md`): integer ids, skills whose
//! names are unique ignoring case, and assignments keyed by (skill, agent) with a proficiency
//! from 1 (best) to 20.
//!
//! It is built from the same [`TenantDoc`] as the other dialects but lives apart from them:
//! CXone has no proficiency definitions, no locales and no versions, so sharing the routing
//! model's data would either leak those into this dialect or force every rule here to translate.
//! Everything is synchronous; the server keeps the tenant under one mutex, so each entry of a
//! result set is applied atomically and a whole call never interleaves with another.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, FieldError};
use crate::model::{TenantDoc, write_draw_rng};

/// Where every route of this dialect lives.
pub const BASE_PATH: &str = "/incontactapi/services/v31.0";
/// The id of the tenant document's first skill definition; the others follow in order.
pub const FIRST_SKILL_ID: u64 = 1001;
/// The id of the tenant document's first user; the others follow in order.
pub const FIRST_AGENT_ID: u64 = 100_001;
/// The media type of every skill made from the tenant document, and of a create that names none.
pub const DEFAULT_MEDIA_TYPE_ID: i64 = 4;
/// Most entries one assignment write or skill create carries.
pub const MAX_BATCH: usize = 100;
/// Longest skill name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Largest id any request may name: ids are JSON integers, and clients commonly hold them as i64.
pub const MAX_ID: u64 = i64::MAX as u64;

/// Largest `top` of the agent and skill listings.
pub(crate) const MAX_TOP: usize = 1000;
/// Largest `top` of the assignment listings.
pub(crate) const MAX_ASSIGNMENT_TOP: usize = 10_000;
const DEFAULT_TOP: usize = 100;
/// The rejected-entry decisions' stream: kept apart from the user writes' streams, so that
/// traffic in one dialect never moves which writes the other refuses.
const REJECT_ENTRY_STREAM: &str = "cxone-reject-entry\0";

/// The proficiency this dialect shows for a level of the other dialects: `21 - 2 × level`, so
/// level 10 (the best) is 1 (the best) and level 1 is 19; anything outside 1..=10 is clamped
/// into 1..=20.
pub fn proficiency_for_level(level: u8) -> u8 {
    let proficiency = (21 - 2 * i16::from(level)).clamp(1, 20);
    u8::try_from(proficiency).unwrap_or(20)
}

/// A skill, exactly as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CxoneSkill {
    /// 1001, 1002, … for the tenant document's skills, then one more for each create.
    pub skill_id: u64,
    /// Unique ignoring case; `{name}_{locale}` for the tenant document's skills.
    pub skill_name: String,
    /// 4 unless a create said otherwise.
    pub media_type_id: i64,
    /// A skill is retired with `false`; there is no delete.
    pub is_active: bool,
    /// Free text.
    pub description: String,
    /// The tenant document's definition this skill was made from; `None` for one created
    /// through the API. Not shown by the API.
    #[serde(skip)]
    pub definition_id: Option<String>,
}

/// An agent, exactly as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CxoneAgent {
    /// 100001, 100002, … in the tenant document's order.
    pub agent_id: u64,
    /// The user's email.
    pub user_name: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The user's email.
    pub email_address: String,
    /// Always `true`: agents are not changed through this dialect.
    pub is_active: bool,
    /// The tenant document's user this agent was made from. Not shown by the API.
    #[serde(skip)]
    pub user_id: String,
}

/// One skill held by one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CxoneAssignment {
    /// The skill.
    pub skill_id: u64,
    /// The agent holding it.
    pub agent_id: u64,
    /// 1 (the best) to 20.
    pub proficiency: u8,
    /// An inactive assignment is kept but does not route.
    pub is_active: bool,
}

/// The dialect's tenant: skills, agents and assignments, with the rules for changing them.
/// `Default` is an empty tenant whose first created skill gets [`FIRST_SKILL_ID`].
#[derive(Debug, Clone)]
pub struct CxoneTenant {
    skills: BTreeMap<u64, CxoneSkill>,
    agents: BTreeMap<u64, CxoneAgent>,
    /// By (skill id, agent id): the order every assignment listing answers in.
    assignments: BTreeMap<(u64, u64), CxoneAssignment>,
    next_skill_id: u64,
    /// Per (skill, agent), how many entries that passed every check met a non-zero
    /// `--reject-write-rate`: with the pair, the input of each refuse-or-take decision, so the
    /// same calls refuse the same entries whatever the order concurrent calls arrive in.
    reject_draws: HashMap<(u64, u64), u64>,
}

impl Default for CxoneTenant {
    fn default() -> Self {
        CxoneTenant {
            skills: BTreeMap::new(),
            agents: BTreeMap::new(),
            assignments: BTreeMap::new(),
            next_skill_id: FIRST_SKILL_ID,
            reject_draws: HashMap::new(),
        }
    }
}

impl CxoneTenant {
    /// Builds the dialect's tenant from a tenant document: every skill definition in order
    /// (ids from [`FIRST_SKILL_ID`], named `{name}_{locale}`, media type 4), every user in order
    /// (ids from [`FIRST_AGENT_ID`], active), and each user's skill assignments with
    /// [`proficiency_for_level`]. Proficiency definitions and their assignments have no
    /// counterpart and are dropped, as is an assignment naming no skill of the document.
    pub fn from_doc(doc: &TenantDoc) -> CxoneTenant {
        let mut tenant = CxoneTenant::default();
        let mut by_definition: HashMap<&str, u64> = HashMap::new();
        let mut next = FIRST_SKILL_ID;
        for definition in &doc.skills {
            by_definition.entry(&definition.id).or_insert(next);
            tenant.skills.insert(
                next,
                CxoneSkill {
                    skill_id: next,
                    skill_name: format!("{}_{}", definition.name, definition.locale),
                    media_type_id: DEFAULT_MEDIA_TYPE_ID,
                    is_active: definition.active,
                    description: definition.description.clone(),
                    definition_id: Some(definition.id.clone()),
                },
            );
            next += 1;
        }
        tenant.next_skill_id = next;
        for (agent_id, user) in (FIRST_AGENT_ID..).zip(&doc.users) {
            tenant.agents.insert(
                agent_id,
                CxoneAgent {
                    agent_id,
                    user_name: user.email.clone(),
                    first_name: user.first_name.clone(),
                    last_name: user.last_name.clone(),
                    email_address: user.email.clone(),
                    is_active: true,
                    user_id: user.id.clone(),
                },
            );
            for assignment in &user.skills {
                let Some(&skill_id) = by_definition.get(assignment.id.as_str()) else {
                    continue;
                };
                tenant
                    .assignments
                    .entry((skill_id, agent_id))
                    .or_insert(CxoneAssignment {
                        skill_id,
                        agent_id,
                        proficiency: proficiency_for_level(assignment.level),
                        is_active: assignment.active,
                    });
            }
        }
        tenant
    }

    /// Every skill, by ascending id.
    pub fn skills(&self) -> impl ExactSizeIterator<Item = &CxoneSkill> {
        self.skills.values()
    }

    /// Every agent, by ascending id.
    pub fn agents(&self) -> impl ExactSizeIterator<Item = &CxoneAgent> {
        self.agents.values()
    }

    /// Every assignment, by skill id and then agent id.
    pub fn assignments(&self) -> impl ExactSizeIterator<Item = &CxoneAssignment> {
        self.assignments.values()
    }

    /// One skill.
    pub fn skill(&self, skill_id: u64) -> Option<&CxoneSkill> {
        self.skills.get(&skill_id)
    }

    /// One agent.
    pub fn agent(&self, agent_id: u64) -> Option<&CxoneAgent> {
        self.agents.get(&agent_id)
    }

    /// One agent's assignment of one skill.
    pub fn assignment(&self, skill_id: u64, agent_id: u64) -> Option<&CxoneAssignment> {
        self.assignments.get(&(skill_id, agent_id))
    }

    /// The tenant as `GET /sim/state` shows it under `cxone`:
    /// `{"skills": [...], "agents": [...], "assignments": [...]}`, each in the order above.
    pub fn to_json(&self) -> Value {
        json!({
            "skills": self.skills.values().collect::<Vec<_>>(),
            "agents": self.agents.values().collect::<Vec<_>>(),
            "assignments": self.assignments.values().collect::<Vec<_>>(),
        })
    }

    // ----- reads -----

    /// `GET /skills?searchString=`: skills whose name contains `search`, ignoring case.
    pub(crate) fn search_skills<'a>(
        &'a self,
        search: Option<&str>,
    ) -> impl Iterator<Item = &'a CxoneSkill> {
        let needle = search.map(str::to_lowercase);
        self.skills.values().filter(move |s| {
            needle
                .as_deref()
                .is_none_or(|n| s.skill_name.to_lowercase().contains(n))
        })
    }

    /// One skill's assignments, by agent id.
    pub(crate) fn holders_of(&self, skill_id: u64) -> impl Iterator<Item = &CxoneAssignment> {
        self.assignments
            .range((skill_id, 0)..=(skill_id, u64::MAX))
            .map(|(_, a)| a)
    }

    /// One agent's assignments, by skill id.
    pub(crate) fn held_by(&self, agent_id: u64) -> impl Iterator<Item = &CxoneAssignment> {
        self.assignments
            .values()
            .filter(move |a| a.agent_id == agent_id)
    }

    /// `GET /skills/agents?skills=`: the assignments of these skills (each listed once,
    /// however often it was named), by skill id and then agent id; the first unknown id, in
    /// the order named, is a 404 naming it.
    pub(crate) fn holders_of_all(
        &self,
        skill_ids: &[u64],
    ) -> Result<Vec<&CxoneAssignment>, ApiError> {
        if let Some(unknown) = skill_ids.iter().find(|id| !self.skills.contains_key(id)) {
            let error = skill_not_found(*unknown);
            return Err(ApiError {
                details: vec![FieldError::new("skills", error.message.clone())],
                ..error
            });
        }
        let mut ids = skill_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids.into_iter().flat_map(|id| self.holders_of(id)).collect())
    }

    // ----- skills -----

    /// The skill other than `except` whose name is `name` ignoring case, if any.
    fn name_taken(&self, name: &str, except: Option<u64>) -> Option<&CxoneSkill> {
        let wanted = name.to_lowercase();
        self.skills
            .values()
            .find(|s| Some(s.skill_id) != except && s.skill_name.to_lowercase() == wanted)
    }

    /// `POST /skills`: the whole body is checked first (400, nothing created); then each item is
    /// created on its own, in order, so a later item that repeats an earlier one's name fails
    /// with `DUPLICATE_NAME` like any other taken name.
    pub(crate) fn create_skills(&mut self, body: &Value) -> Result<Vec<SkillResult>, ApiError> {
        let inputs = parse_skill_creates(body)?;
        Ok(inputs
            .into_iter()
            .map(|input| {
                let outcome = self.create_skill(&input);
                SkillResult {
                    skill_name: input.name,
                    outcome,
                }
            })
            .collect())
    }

    fn create_skill(&mut self, input: &SkillInput) -> Result<u64, EntryError> {
        if let Some(why) = name_problem(&input.name) {
            return Err(EntryError::new(EntryCode::InvalidName, why));
        }
        if let Some(taken) = self.name_taken(&input.name, None) {
            return Err(duplicate_name(&input.name, taken));
        }
        let skill_id = self.next_skill_id;
        self.next_skill_id += 1;
        self.skills.insert(
            skill_id,
            CxoneSkill {
                skill_id,
                skill_name: input.name.clone(),
                media_type_id: input.media_type_id,
                is_active: input.is_active,
                description: input.description.clone(),
                definition_id: None,
            },
        );
        Ok(skill_id)
    }

    /// `PUT /skills/{skillId}`: 404 for an unknown skill, then 400 for a bad body, then 409 for
    /// a name another skill has (ignoring case); the fields present replace the skill's.
    pub(crate) fn update_skill(
        &mut self,
        skill_id: u64,
        body: &Value,
    ) -> Result<CxoneSkill, ApiError> {
        if !self.skills.contains_key(&skill_id) {
            return Err(skill_not_found(skill_id));
        }
        let Some(obj) = body.as_object() else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let name = optional_string(obj, "skillName")?;
        let is_active = optional_bool(obj, "isActive")?;
        let description = optional_string(obj, "description")?;
        if let Some(name) = &name {
            if let Some(why) = name_problem(name) {
                return Err(ApiError::invalid("skillName", why));
            }
            if let Some(taken) = self.name_taken(name, Some(skill_id)) {
                let error = duplicate_name(name, taken);
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "DUPLICATE_NAME",
                    error.message,
                ));
            }
        }
        let skill = self
            .skills
            .get_mut(&skill_id)
            .ok_or_else(|| skill_not_found(skill_id))?;
        if let Some(name) = name {
            skill.skill_name = name;
        }
        if let Some(is_active) = is_active {
            skill.is_active = is_active;
        }
        if let Some(description) = description {
            skill.description = description;
        }
        Ok(skill.clone())
    }

    // ----- assignments -----

    /// An assignment write through either side (`/skills/{id}/agents` or
    /// `/agents/{id}/skills`): 404 when the path's object does not exist, then 400 for a body
    /// that breaks a rule of the whole call (nothing changed), then each entry applied on its
    /// own, in order. `reject_rate` is `--reject-write-rate`, drawn for each entry that passed
    /// every check.
    pub(crate) fn write_assignments(
        &mut self,
        op: AssignOp,
        side: Side,
        body: &Value,
        reject_rate: f64,
    ) -> Result<Vec<EntryResult>, ApiError> {
        match side {
            Side::Skill(id) if !self.skills.contains_key(&id) => return Err(skill_not_found(id)),
            Side::Agent(id) if !self.agents.contains_key(&id) => return Err(agent_not_found(id)),
            _ => {}
        }
        let entries = parse_entries(body, op, side)?;
        Ok(self.apply_entries(op, side, &entries, reject_rate))
    }

    /// Applies entries already checked as a whole, each on its own.
    pub(crate) fn apply_entries(
        &mut self,
        op: AssignOp,
        side: Side,
        entries: &[EntryInput],
        reject_rate: f64,
    ) -> Vec<EntryResult> {
        entries
            .iter()
            .map(|entry| {
                let (skill_id, agent_id) = match side {
                    Side::Skill(skill) => (skill, entry.id),
                    Side::Agent(agent) => (entry.id, agent),
                };
                EntryResult {
                    id: entry.id,
                    outcome: self.apply_entry(op, skill_id, agent_id, entry, reject_rate),
                }
            })
            .collect()
    }

    /// One entry: the first code of the doc's table that applies, else the change.
    fn apply_entry(
        &mut self,
        op: AssignOp,
        skill_id: u64,
        agent_id: u64,
        entry: &EntryInput,
        reject_rate: f64,
    ) -> Result<(), EntryError> {
        if !self.agents.contains_key(&agent_id) {
            return Err(EntryError::new(
                EntryCode::AgentNotFound,
                format!("agent {agent_id} does not exist"),
            ));
        }
        if !self.skills.contains_key(&skill_id) {
            return Err(EntryError::new(
                EntryCode::SkillNotFound,
                format!("skill {skill_id} does not exist"),
            ));
        }
        let held = self.assignments.contains_key(&(skill_id, agent_id));
        match op {
            AssignOp::Assign if held => {
                return Err(EntryError::new(
                    EntryCode::AlreadyAssigned,
                    format!("agent {agent_id} already has skill {skill_id}; nothing was changed"),
                ));
            }
            AssignOp::Update | AssignOp::Unassign if !held => {
                return Err(EntryError::new(
                    EntryCode::NotAssigned,
                    format!("agent {agent_id} does not have skill {skill_id}"),
                ));
            }
            _ => {}
        }
        let proficiency = match entry.proficiency {
            Some(p) => Some(
                u8::try_from(p)
                    .ok()
                    .filter(|p| (1..=20).contains(p))
                    .ok_or_else(|| {
                        EntryError::new(
                            EntryCode::InvalidProficiency,
                            format!("proficiency must be from 1 (the best) to 20, got {p}"),
                        )
                    })?,
            ),
            None => None,
        };
        if self.rejects_entry(skill_id, agent_id, reject_rate) {
            return Err(EntryError::new(
                EntryCode::Rejected,
                "rejected by the tenant (--reject-write-rate); nothing was changed",
            ));
        }
        match op {
            AssignOp::Assign => {
                self.assignments.insert(
                    (skill_id, agent_id),
                    CxoneAssignment {
                        skill_id,
                        agent_id,
                        proficiency: proficiency.unwrap_or(1),
                        is_active: entry.is_active.unwrap_or(true),
                    },
                );
            }
            AssignOp::Update => {
                if let Some(held) = self.assignments.get_mut(&(skill_id, agent_id)) {
                    if let Some(p) = proficiency {
                        held.proficiency = p;
                    }
                    if let Some(active) = entry.is_active {
                        held.is_active = active;
                    }
                }
            }
            AssignOp::Unassign => {
                self.assignments.remove(&(skill_id, agent_id));
            }
        }
        Ok(())
    }

    /// Decides whether this entry is refused at `rate`: a pure function of the pair and how many
    /// such decisions it has had since start or `POST /sim/reset`, as the other dialects decide
    /// per user. Rate 0 decides nothing (and counts nothing); rate 1 refuses every entry.
    fn rejects_entry(&mut self, skill_id: u64, agent_id: u64, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let draws = self.reject_draws.entry((skill_id, agent_id)).or_default();
        *draws += 1;
        write_draw_rng(
            REJECT_ENTRY_STREAM,
            &format!("{skill_id}/{agent_id}"),
            *draws,
        )
        .random_bool(rate.min(1.0))
    }
}

// ----- paging -----

/// `skip` and `top` of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub skip: usize,
    pub top: usize,
}

impl Paging {
    /// Parses `skip` (≥ 0, default 0) and `top` (1..=`max_top`, default 100); absent and empty
    /// are the same. A bad value is a 400 naming its parameter.
    pub(crate) fn parse(
        skip: Option<&str>,
        top: Option<&str>,
        max_top: usize,
    ) -> Result<Paging, ApiError> {
        let skip = match skip {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::invalid("skip", format!("must be a non-negative integer, got `{v}`"))
            })?,
        };
        let top = match top {
            None => DEFAULT_TOP,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max_top).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "top",
                        format!("must be an integer from 1 to {max_top}, got `{v}`"),
                    )
                })?,
        };
        Ok(Paging { skip, top })
    }

    /// Counts every item and keeps those of this page.
    pub(crate) fn cut<T>(self, items: impl Iterator<Item = T>) -> (usize, Vec<T>) {
        let mut total = 0;
        let mut page = Vec::new();
        for item in items {
            if total >= self.skip && page.len() < self.top {
                page.push(item);
            }
            total += 1;
        }
        (total, page)
    }
}

/// `skills=1001,1002` of `GET /skills/agents`: 1 to 100 ids, digits only, comma separated.
pub(crate) fn parse_skill_list(value: Option<&str>) -> Result<Vec<u64>, ApiError> {
    let malformed = |why: String| ApiError::invalid("skills", why);
    let Some(value) = value else {
        return Err(malformed(
            "required: 1 to 100 skill ids, comma separated".into(),
        ));
    };
    let ids = value
        .split(',')
        .map(|part| {
            let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| part.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| malformed(format!("`{part}` is not a skill id")))
        })
        .collect::<Result<Vec<u64>, ApiError>>()?;
    if ids.len() > MAX_BATCH {
        return Err(malformed(format!(
            "names {} skills; at most {MAX_BATCH}",
            ids.len()
        )));
    }
    Ok(ids)
}

/// An id in a path (`{skillId}`, `{agentId}`): a positive integer, or a 400 naming `field`.
pub(crate) fn parse_path_id(value: &str, field: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|id| (1..=MAX_ID).contains(id) && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("must be a positive integer (an id), got `{value}`"),
            )
        })
}

// ----- bodies -----

/// A validated item of `POST /skills`.
#[derive(Debug)]
struct SkillInput {
    name: String,
    media_type_id: i64,
    is_active: bool,
    description: String,
}

/// One item's answer to `POST /skills`.
#[derive(Debug)]
pub(crate) struct SkillResult {
    pub skill_name: String,
    pub outcome: Result<u64, EntryError>,
}

impl SkillResult {
    /// `{"skillName", "success", "skillId"?, "error"?}`.
    pub(crate) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("skillName".into(), json!(self.skill_name));
        out.insert("success".into(), json!(self.outcome.is_ok()));
        match &self.outcome {
            Ok(id) => out.insert("skillId".into(), json!(id)),
            Err(error) => out.insert("error".into(), error.to_json()),
        };
        Value::Object(out)
    }
}

fn parse_skill_creates(body: &Value) -> Result<Vec<SkillInput>, ApiError> {
    let items = batch(
        body,
        "skills",
        "a list of {skillName, mediaTypeId?, isActive?, description?}",
    )?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("skills[{i}]");
            let Some(obj) = item.as_object() else {
                return Err(ApiError::invalid(at, "must be an object"));
            };
            let field = |name: &str| format!("{at}.{name}");
            let name = match obj.get("skillName") {
                Some(Value::String(s)) => s.clone(),
                None => return Err(ApiError::invalid(field("skillName"), "required")),
                Some(_) => return Err(ApiError::invalid(field("skillName"), "must be a string")),
            };
            let media_type_id = match obj.get("mediaTypeId") {
                None => DEFAULT_MEDIA_TYPE_ID,
                Some(v) => json_integer(v)
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or_else(|| ApiError::invalid(field("mediaTypeId"), "must be an integer"))?,
            };
            let is_active = optional_bool(obj, "isActive")
                .map_err(|e| renamed(e, &at))?
                .unwrap_or(true);
            let description = optional_string(obj, "description")
                .map_err(|e| renamed(e, &at))?
                .unwrap_or_default();
            Ok(SkillInput {
                name,
                media_type_id,
                is_active,
                description,
            })
        })
        .collect()
}

/// A JSON number that is an integer, as JSON Schema counts them: `7` and `7.0` alike, since
/// clients (and schema-driven tests) may write either. Anything else is `None`.
fn json_integer(value: &Value) -> Option<i128> {
    if let Some(n) = value.as_i64() {
        return Some(i128::from(n));
    }
    if let Some(n) = value.as_u64() {
        return Some(i128::from(n));
    }
    // Only where a float holds every integer exactly: beyond 2^53, `-9223372036854775809`
    // would round to i64::MIN and pass for a number it is not.
    let f = value.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 2f64.powi(53)).then_some(f as i128)
}

/// Puts an item's path in front of the field a helper named.
fn renamed(mut error: ApiError, at: &str) -> ApiError {
    for detail in &mut error.details {
        detail.field = format!("{at}.{}", detail.field);
    }
    error.message = format!("{at}.{}", error.message);
    error
}

fn optional_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(name, "must be a string")),
    }
}

fn optional_bool(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(name, "must be true or false")),
    }
}

/// Why a skill name cannot be used, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if chars == 0 {
        Some("skillName must not be empty".into())
    } else if chars > MAX_NAME_CHARS {
        Some(format!(
            "skillName has {chars} characters; at most {MAX_NAME_CHARS}"
        ))
    } else {
        None
    }
}

fn duplicate_name(name: &str, taken: &CxoneSkill) -> EntryError {
    EntryError::new(
        EntryCode::DuplicateName,
        format!(
            "skill {} is already named `{}` (names are unique, ignoring case): `{name}` was not used",
            taken.skill_id, taken.skill_name
        ),
    )
}

/// The list member of a batch body: an array of at most [`MAX_BATCH`] entries, or a 400
/// naming `list`.
fn batch<'a>(body: &'a Value, list: &str, shape: &str) -> Result<&'a Vec<Value>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    let items = match obj.get(list) {
        Some(Value::Array(items)) => items,
        None => return Err(ApiError::invalid(list, format!("required: {shape}"))),
        Some(_) => return Err(ApiError::invalid(list, format!("must be {shape}"))),
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            list,
            format!(
                "holds {} entries; one call takes at most {MAX_BATCH}",
                items.len()
            ),
        ));
    }
    Ok(items)
}

/// Which assignment write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssignOp {
    /// `POST`: add.
    Assign,
    /// `PUT`: replace the fields present.
    Update,
    /// `DELETE`: remove.
    Unassign,
}

/// The object a write's path names; its entries name objects of the other kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `/skills/{skillId}/agents`: entries are agents.
    Skill(u64),
    /// `/agents/{agentId}/skills`: entries are skills.
    Agent(u64),
}

impl Side {
    /// The body's list and its entries' id member.
    pub(crate) fn entry_names(self) -> (&'static str, &'static str) {
        match self {
            Side::Skill(_) => ("agents", "agentId"),
            Side::Agent(_) => ("skills", "skillId"),
        }
    }
}

/// One entry of an assignment write, checked as part of the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryInput {
    /// The agent (per skill) or skill (per agent) it names.
    pub id: u64,
    pub is_active: Option<bool>,
    /// As sent; an integer outside 1..=20 fails this entry alone. One past i64 is kept as
    /// i64::MAX, which fails the same way.
    pub proficiency: Option<i64>,
}

/// Checks an assignment write's body as a whole: an object with the list, at most 100 entries,
/// each an object with a positive integer id, `isActive` a boolean and `proficiency` an integer
/// where present (an unassign entry carries its id only), no id twice. Any breach is a 400
/// naming the field, for the whole call.
fn parse_entries(body: &Value, op: AssignOp, side: Side) -> Result<Vec<EntryInput>, ApiError> {
    let (list, id_field) = side.entry_names();
    let shape = match op {
        AssignOp::Unassign => format!("a list of {{{id_field}}}"),
        _ => format!("a list of {{{id_field}, isActive?, proficiency?}}"),
    };
    let items = batch(body, list, &shape)?;
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{list}[{i}]");
        let Some(obj) = item.as_object() else {
            return Err(ApiError::invalid(at, "must be an object"));
        };
        let field = |name: &str| format!("{at}.{name}");
        let id = match obj.get(id_field) {
            None => return Err(ApiError::invalid(field(id_field), "required")),
            Some(v) => json_integer(v)
                .and_then(|id| u64::try_from(id).ok())
                .filter(|id| (1..=MAX_ID).contains(id))
                .ok_or_else(|| {
                    ApiError::invalid(
                        field(id_field),
                        format!("must be a positive integer up to {MAX_ID}"),
                    )
                })?,
        };
        if op == AssignOp::Unassign
            && let Some(other) = obj.keys().find(|k| k.as_str() != id_field)
        {
            return Err(ApiError::invalid(
                field(other),
                format!("an unassign entry carries only {id_field}"),
            ));
        }
        let is_active = optional_bool(obj, "isActive").map_err(|e| renamed(e, &at))?;
        let proficiency = match obj.get("proficiency") {
            None => None,
            Some(v) => match json_integer(v) {
                Some(p) => Some(i64::try_from(p).unwrap_or(i64::MAX)),
                None => {
                    return Err(ApiError::invalid(
                        field("proficiency"),
                        "must be an integer (1, the best, to 20)",
                    ));
                }
            },
        };
        if let Some(first) = seen.insert(id, i) {
            return Err(ApiError::invalid(
                field(id_field),
                format!("{id} is also at {list}[{first}]; name each once per call"),
            ));
        }
        entries.push(EntryInput {
            id,
            is_active,
            proficiency,
        });
    }
    Ok(entries)
}

// ----- results -----

/// Why one entry failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryCode {
    AgentNotFound,
    SkillNotFound,
    AlreadyAssigned,
    NotAssigned,
    InvalidProficiency,
    Rejected,
    DuplicateName,
    InvalidName,
}

impl EntryCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EntryCode::AgentNotFound => "AGENT_NOT_FOUND",
            EntryCode::SkillNotFound => "SKILL_NOT_FOUND",
            EntryCode::AlreadyAssigned => "ALREADY_ASSIGNED",
            EntryCode::NotAssigned => "NOT_ASSIGNED",
            EntryCode::InvalidProficiency => "INVALID_PROFICIENCY",
            EntryCode::Rejected => "REJECTED",
            EntryCode::DuplicateName => "DUPLICATE_NAME",
            EntryCode::InvalidName => "INVALID_NAME",
        }
    }
}

/// An entry's `error`: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryError {
    pub code: EntryCode,
    pub message: String,
}

impl EntryError {
    fn new(code: EntryCode, message: impl Into<String>) -> Self {
        EntryError {
            code,
            message: message.into(),
        }
    }

    fn to_json(&self) -> Value {
        json!({ "code": self.code.as_str(), "message": self.message })
    }
}

/// One entry's answer in a result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryResult {
    /// The id the entry named.
    pub id: u64,
    pub outcome: Result<(), EntryError>,
}

/// `{"resultSet": {"errorCount", "<agentResults|skillResults>": [...]}}`, entries in the order
/// sent.
pub(crate) fn result_set(side: Side, results: &[EntryResult]) -> Value {
    let (key, id_field) = match side {
        Side::Skill(_) => ("agentResults", "agentId"),
        Side::Agent(_) => ("skillResults", "skillId"),
    };
    let errors = results.iter().filter(|r| r.outcome.is_err()).count();
    let entries: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut out = Map::new();
            out.insert(id_field.into(), json!(r.id));
            out.insert("success".into(), json!(r.outcome.is_ok()));
            if let Err(error) = &r.outcome {
                out.insert("error".into(), error.to_json());
            }
            Value::Object(out)
        })
        .collect();
    json!({ "resultSet": { "errorCount": errors, key: entries } })
}

pub(crate) fn skill_not_found(skill_id: u64) -> ApiError {
    ApiError::not_found("skill", &skill_id.to_string())
}

pub(crate) fn agent_not_found(agent_id: u64) -> ApiError {
    ApiError::not_found("agent", &agent_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenerateOptions, generate};

    fn tenant() -> (TenantDoc, CxoneTenant) {
        let doc = generate(&GenerateOptions {
            agents: 12,
            skills: 3,
            proficiencies: 2,
            ..GenerateOptions::default()
        });
        let tenant = CxoneTenant::from_doc(&doc);
        (doc, tenant)
    }

    /// A skill the agent holds and one it does not.
    fn held_and_not(tenant: &CxoneTenant, agent: u64) -> (u64, u64) {
        let held = tenant.held_by(agent).next().expect("a held skill").skill_id;
        let not = tenant
            .skills()
            .map(|s| s.skill_id)
            .find(|id| tenant.assignment(*id, agent).is_none())
            .expect("a skill not held");
        (held, not)
    }

    fn an_agent_with_skills(tenant: &CxoneTenant) -> u64 {
        tenant.assignments().next().expect("assignments").agent_id
    }

    fn codes(results: &[EntryResult]) -> Vec<Option<&'static str>> {
        results
            .iter()
            .map(|r| r.outcome.as_ref().err().map(|e| e.code.as_str()))
            .collect()
    }

    #[test]
    fn from_doc_numbers_names_and_converts_in_the_documents_order() {
        let (doc, tenant) = tenant();
        assert_eq!(tenant.skills().len(), doc.skills.len());
        for ((skill, definition), id) in tenant.skills().zip(&doc.skills).zip(FIRST_SKILL_ID..) {
            assert_eq!(skill.skill_id, id);
            assert_eq!(
                skill.skill_name,
                format!("{}_{}", definition.name, definition.locale)
            );
            assert_eq!(skill.is_active, definition.active);
            assert_eq!(skill.description, definition.description);
            assert_eq!(skill.media_type_id, 4);
        }
        let mut expected = 0;
        for ((agent, user), id) in tenant.agents().zip(&doc.users).zip(FIRST_AGENT_ID..) {
            assert_eq!(agent.agent_id, id);
            assert_eq!(agent.user_name, user.email);
            assert_eq!(agent.email_address, user.email);
            assert_eq!(agent.first_name, user.first_name);
            assert!(agent.is_active);
            for a in &user.skills {
                let position = doc.skills.iter().position(|d| d.id == a.id).unwrap();
                let held = tenant
                    .assignment(FIRST_SKILL_ID + position as u64, id)
                    .expect("carried over");
                assert_eq!(u16::from(held.proficiency), 21 - 2 * u16::from(a.level));
                expected += 1;
            }
        }
        assert_eq!(tenant.assignments().len(), expected);
        assert!(expected > 0);
    }

    #[test]
    fn proficiency_is_twenty_one_minus_twice_the_level() {
        assert_eq!(proficiency_for_level(10), 1);
        assert_eq!(proficiency_for_level(1), 19);
        assert_eq!(proficiency_for_level(5), 11);
        assert_eq!(proficiency_for_level(0), 20);
        assert_eq!(proficiency_for_level(200), 1);
    }

    #[test]
    fn paging_checks_skip_and_top_and_cuts_a_page() {
        assert_eq!(
            Paging::parse(None, None, MAX_TOP).unwrap(),
            Paging { skip: 0, top: 100 }
        );
        for (skip, top, field) in [
            (Some("-1"), None, "skip"),
            (Some("x"), None, "skip"),
            (None, Some("0"), "top"),
            (None, Some("1001"), "top"),
            (None, Some("2.5"), "top"),
        ] {
            let error = Paging::parse(skip, top, MAX_TOP).unwrap_err();
            assert_eq!(error.details[0].field, field);
        }
        assert!(Paging::parse(None, Some("10000"), MAX_ASSIGNMENT_TOP).is_ok());
        let paging = Paging::parse(Some("2"), Some("3"), MAX_TOP).unwrap();
        assert_eq!(paging.cut(1..=10), (10, vec![3, 4, 5]));
        assert_eq!(paging.cut(1..=2), (2, vec![]));
    }

    #[test]
    fn skill_lists_take_one_to_a_hundred_ids() {
        assert_eq!(parse_skill_list(Some("1001,7")).unwrap(), vec![1001, 7]);
        for bad in [None, Some("1001,"), Some("a"), Some("1 ,2"), Some("-1")] {
            assert_eq!(
                parse_skill_list(bad).unwrap_err().details[0].field,
                "skills"
            );
        }
        let many = vec!["1"; 101].join(",");
        assert!(parse_skill_list(Some(&many)).is_err());
    }

    #[test]
    fn names_are_unique_ignoring_case_across_and_within_creates() {
        let (_, mut tenant) = tenant();
        let existing = tenant.skills().next().unwrap().skill_name.to_uppercase();
        let results = tenant
            .create_skills(&json!({ "skills": [
                { "skillName": existing },
                { "skillName": "Fresh" },
                { "skillName": "fresh" },
                { "skillName": "" },
                { "skillName": "x".repeat(101) },
            ] }))
            .unwrap();
        let outcomes: Vec<Result<u64, &'static str>> = results
            .iter()
            .map(|r| r.outcome.clone().map_err(|e| e.code.as_str()))
            .collect();
        let next = FIRST_SKILL_ID + tenant.skills().len() as u64 - 1;
        assert_eq!(
            outcomes,
            vec![
                Err("DUPLICATE_NAME"),
                Ok(next),
                Err("DUPLICATE_NAME"),
                Err("INVALID_NAME"),
                Err("INVALID_NAME"),
            ]
        );
        let renamed = tenant.update_skill(next, &json!({ "skillName": "FRESH" }));
        assert_eq!(
            renamed.unwrap().skill_name,
            "FRESH",
            "its own name is no clash"
        );
        let clash = tenant
            .update_skill(next, &json!({ "skillName": existing.to_lowercase() }))
            .unwrap_err();
        assert_eq!((clash.status.as_u16(), clash.code), (409, "DUPLICATE_NAME"));
    }

    #[test]
    fn each_entry_gets_its_own_result_in_the_order_sent() {
        let (_, mut tenant) = tenant();
        let agent = an_agent_with_skills(&tenant);
        let (held, not) = held_and_not(&tenant, agent);
        let other = tenant
            .agents()
            .map(|a| a.agent_id)
            .find(|id| tenant.assignment(not, *id).is_none() && *id != agent)
            .unwrap();
        let body = json!({ "agents": [
            { "agentId": agent, "proficiency": 3 },
            { "agentId": 999 },
            { "agentId": other, "proficiency": 21 },
        ] });
        let results = tenant
            .write_assignments(AssignOp::Assign, Side::Skill(not), &body, 0.0)
            .unwrap();
        assert_eq!(
            codes(&results),
            vec![None, Some("AGENT_NOT_FOUND"), Some("INVALID_PROFICIENCY")]
        );
        assert_eq!(tenant.assignment(not, agent).unwrap().proficiency, 3);
        assert!(tenant.assignment(not, other).is_none());

        let again = tenant
            .write_assignments(
                AssignOp::Assign,
                Side::Agent(agent),
                &json!({ "skills": [{ "skillId": held, "proficiency": 99 }, { "skillId": 5 }] }),
                0.0,
            )
            .unwrap();
        assert_eq!(
            codes(&again),
            vec![Some("ALREADY_ASSIGNED"), Some("SKILL_NOT_FOUND")],
            "the table's first code that applies"
        );
        let missing = tenant
            .write_assignments(
                AssignOp::Update,
                Side::Skill(not),
                &json!({ "agents": [{ "agentId": other, "proficiency": 0 }] }),
                0.0,
            )
            .unwrap();
        assert_eq!(codes(&missing), vec![Some("NOT_ASSIGNED")]);
    }

    #[test]
    fn a_body_that_breaks_a_rule_of_the_call_changes_nothing() {
        let (_, tenant) = tenant();
        let agent = an_agent_with_skills(&tenant);
        let (_, not) = held_and_not(&tenant, agent);
        let many: Vec<Value> = (0..101).map(|i| json!({ "agentId": 1 + i })).collect();
        for (body, op, field) in [
            (json!({ "agents": many }), AssignOp::Assign, "agents"),
            (json!({}), AssignOp::Assign, "agents"),
            (json!([]), AssignOp::Assign, "body"),
            (
                json!({ "agents": [{ "agentId": agent }, { "agentId": agent }] }),
                AssignOp::Assign,
                "agents[1].agentId",
            ),
            (
                json!({ "agents": [{ "proficiency": 2 }] }),
                AssignOp::Assign,
                "agents[0].agentId",
            ),
            (
                json!({ "agents": [{ "agentId": 0 }] }),
                AssignOp::Assign,
                "agents[0].agentId",
            ),
            (
                json!({ "agents": [{ "agentId": "1" }] }),
                AssignOp::Assign,
                "agents[0].agentId",
            ),
            (
                json!({ "agents": [{ "agentId": agent, "isActive": null }] }),
                AssignOp::Update,
                "agents[0].isActive",
            ),
            (
                json!({ "agents": [{ "agentId": agent, "proficiency": 1.5 }] }),
                AssignOp::Update,
                "agents[0].proficiency",
            ),
            (
                json!({ "agents": [{ "agentId": 1.5 }] }),
                AssignOp::Assign,
                "agents[0].agentId",
            ),
            (
                json!({ "agents": [{ "agentId": agent, "isActive": true }] }),
                AssignOp::Unassign,
                "agents[0].isActive",
            ),
        ] {
            let mut copy = tenant.clone();
            let error = copy
                .write_assignments(op, Side::Skill(not), &body, 0.0)
                .unwrap_err();
            assert_eq!(error.status.as_u16(), 400, "{body}");
            assert_eq!(error.details[0].field, field, "{body}");
            assert_eq!(copy.to_json(), tenant.to_json(), "{body}");
        }
        let mut copy = tenant.clone();
        let unknown = copy
            .write_assignments(AssignOp::Assign, Side::Skill(1), &json!({}), 0.0)
            .unwrap_err();
        assert_eq!(
            unknown.status.as_u16(),
            404,
            "an unknown skill before the body"
        );
    }

    #[test]
    fn rejected_entries_change_nothing_and_repeat_for_the_same_pairs() {
        let (_, mut tenant) = tenant();
        let created = tenant
            .create_skills(&json!({ "skills": [{ "skillName": "Nobody_Has_It" }] }))
            .unwrap();
        let skill = created[0].outcome.clone().unwrap();
        let fresh = tenant.clone();
        let agents: Vec<u64> = tenant.agents().map(|a| a.agent_id).collect();
        let body = json!({ "agents": agents.iter().map(|id| json!({ "agentId": id })).collect::<Vec<_>>() });
        let outcome = |tenant: &mut CxoneTenant| {
            codes(
                &tenant
                    .write_assignments(AssignOp::Assign, Side::Skill(skill), &body, 0.5)
                    .unwrap(),
            )
        };
        let first = outcome(&mut tenant);
        assert!(first.contains(&Some("REJECTED")), "{first:?}");
        assert!(first.contains(&None), "{first:?}");
        for (id, code) in agents.iter().zip(&first) {
            let held = tenant.assignment(skill, *id).is_some();
            assert_eq!(held, code.is_none(), "agent {id}: {code:?}");
        }
        let mut again = fresh.clone();
        assert_eq!(
            outcome(&mut again),
            first,
            "the same calls refuse the same entries"
        );
    }
}
