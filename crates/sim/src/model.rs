//! The tenant's data and the Admin API's rules for changing it (SPEC 1.2–1.5).
//!
//! Everything here is synchronous and lock-free; the server holds the whole `Tenant` under one
//! mutex, which keeps every write atomic and every rule easy to read. Handlers translate HTTP
//! into these calls and back.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::RoutingCache;
use crate::clock::SimInstant;
use crate::config::ClientSpec;
use crate::error::{ApiError, FieldError, SimError};
use crate::holders::{Holders, intersect};

/// Definitions come in two classes that never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Drives routing.
    Skill,
    /// Metadata for reporting and strategies; never routes.
    Proficiency,
}

impl Kind {
    /// Singular noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Skill => "skill",
            Kind::Proficiency => "proficiency",
        }
    }
}

/// A skill or proficiency definition, exactly as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// UUID.
    pub id: String,
    /// Name; not unique (duplicates are the trap).
    pub name: String,
    /// Lowercase BCP-47 tag.
    pub locale: String,
    /// Inactive definitions are soft-deleted: kept for history, never routed.
    pub active: bool,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The routing profile the definition is scoped to.
    pub routing_profile_id: String,
    /// Optimistic-concurrency version.
    #[serde(default = "first_version")]
    pub version: u64,
    /// Last change.
    #[serde(default = "epoch")]
    pub date_modified: Timestamp,
}

/// One assignment of a definition to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Definition id.
    pub id: String,
    /// 1–10.
    pub level: u8,
    /// Inactive assignments are kept but do not route.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A routing profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Skill ids it references.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Proficiency ids it references.
    #[serde(default)]
    pub proficiencies: Vec<String>,
    /// Optimistic-concurrency version.
    #[serde(default = "first_version")]
    pub version: u64,
}

/// A routing strategy: advanced routing conditions over proficiencies (the source document's
/// third kind of reference that blocks a proficiency's delete). Only the routing dialect shows
/// strategies; they reference proficiency definitions, never skills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Proficiency ids its conditions reference.
    #[serde(default)]
    pub proficiencies: Vec<String>,
    /// Optimistic-concurrency version.
    #[serde(default = "first_version")]
    pub version: u64,
}

/// A user (agent) with everything both dialects show of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The tenant's user id.
    pub id: String,
    /// Given name.
    #[serde(default)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    pub last_name: String,
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// The agent's working locale (not shown by the API; the HRIS knows it).
    #[serde(default)]
    pub locale: String,
    /// Routing profile.
    pub routing_profile_id: String,
    /// Skill assignments.
    #[serde(default)]
    pub skills: Vec<Assignment>,
    /// Proficiency assignments.
    #[serde(default)]
    pub proficiencies: Vec<Assignment>,
    /// Optimistic-concurrency version; the ETag.
    #[serde(default = "first_version")]
    pub version: u64,
    /// Last change.
    #[serde(default = "epoch")]
    pub date_modified: Timestamp,
}

/// A queue that requires one locale-specific skill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// The skill an agent needs to take its interactions.
    pub skill_id: String,
    /// The lowest level that qualifies.
    #[serde(default = "one")]
    pub min_level: u8,
    /// Production queues refuse test interactions.
    pub production: bool,
}

/// The whole tenant as a document: the fixture file format and the body of `GET /sim/state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantDoc {
    /// Routing profiles.
    #[serde(default)]
    pub profiles: Vec<Profile>,
    /// Skill definitions.
    #[serde(default)]
    pub skills: Vec<Definition>,
    /// Proficiency definitions.
    #[serde(default)]
    pub proficiencies: Vec<Definition>,
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Queues.
    #[serde(default)]
    pub queues: Vec<Queue>,
    /// Routing strategies (absent from documents of tenants that have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strategies: Vec<Strategy>,
    /// Extra OAuth clients (fixtures only; never shown by `/sim/state`).
    #[serde(default, skip_serializing)]
    pub clients: Vec<ClientSpec>,
}

fn first_version() -> u64 {
    1
}
fn epoch() -> Timestamp {
    Timestamp::UNIX_EPOCH
}
fn yes() -> bool {
    true
}
fn one() -> u8 {
    1
}

/// A page of results, as every list endpoint returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageOf<T> {
    /// This page's items.
    pub entities: Vec<T>,
    /// 1-based page number.
    pub page: usize,
    /// Requested page size.
    pub page_size: usize,
    /// Items across all pages.
    pub total: usize,
}

/// Which page of a list to return.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// 1-based.
    pub page: usize,
    /// At most `MAX_PAGE_SIZE`.
    pub page_size: usize,
}

/// Largest `pageSize` any list accepts.
pub const MAX_PAGE_SIZE: usize = 500;
/// Most entries one bulk request may carry.
pub const MAX_BULK_ENTRIES: usize = 100;

impl PageRequest {
    /// Where this page lies among `total` matches held in order: the same items
    /// [`PageRequest::cut`] would keep, found without walking the others.
    pub fn range(self, total: usize) -> Range<usize> {
        let start = (self.page - 1).saturating_mul(self.page_size).min(total);
        let end = start.saturating_add(self.page_size).min(total);
        start..end
    }

    /// Cuts one page out of an iterator of matches, counting them all for `total`.
    pub fn cut<T>(self, matches: impl Iterator<Item = T>) -> PageOf<T> {
        let skip = (self.page - 1).saturating_mul(self.page_size);
        let mut entities = Vec::new();
        let mut total = 0;
        for item in matches {
            if total >= skip && entities.len() < self.page_size {
                entities.push(item);
            }
            total += 1;
        }
        PageOf {
            entities,
            page: self.page,
            page_size: self.page_size,
            total,
        }
    }
}

/// Filters of `GET /routing/{skills|proficiencies}`.
#[derive(Debug, Default)]
pub struct DefinitionFilter {
    /// Exact name.
    pub name: Option<String>,
    /// Exact locale.
    pub locale: Option<String>,
    /// Active flag.
    pub active: Option<bool>,
}

/// A validated body of `POST`/`PUT` on a definition.
#[derive(Debug)]
pub struct DefinitionInput {
    name: String,
    locale: String,
    active: bool,
    description: String,
    routing_profile_id: String,
}

/// A change to one user, with PUT semantics: a list that is present replaces that list; a list
/// or field that is absent is left as it is.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    /// New routing profile.
    pub routing_profile_id: Option<String>,
    /// Replacement skill list (empty removes every skill).
    pub skills: Option<Vec<Assignment>>,
    /// Replacement proficiency list.
    pub proficiencies: Option<Vec<Assignment>>,
    /// Users-dialect fields other than skills (`firstName`, `lastName`, `email`) and their new
    /// values; part of the same write, so a lost write loses them too.
    pub profile_fields: Vec<(ProfileField, String)>,
}

/// A users-dialect field other than skills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    /// `firstName`.
    FirstName,
    /// `lastName`.
    LastName,
    /// `email`.
    Email,
}

/// Why a user patch was refused.
#[derive(Debug)]
pub enum PatchRefused {
    /// No such user.
    NotFound,
    /// The body breaks a rule.
    Invalid(Vec<FieldError>),
    /// The expected version is no longer current.
    Stale {
        /// What the writer expected.
        expected: u64,
        /// What is current.
        current: u64,
    },
    /// The write passed every check and the tenant refused it anyway (`--reject-write-rate`);
    /// nothing was changed.
    Rejected,
}

/// The write faults a client's user write is exposed to; the other integration's writes get
/// [`WriteFaults::NONE`], because its log must record only what the tenant really holds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct WriteFaults {
    /// Probability that a write which passed every check is answered as applied but not kept
    /// (`--lose-write-rate`).
    pub lose_rate: f64,
    /// Probability that a write which passed every check is refused with 400 and not applied
    /// (`--reject-write-rate`).
    pub reject_rate: f64,
}

impl WriteFaults {
    /// Every write that passes its checks is applied and kept.
    pub const NONE: WriteFaults = WriteFaults {
        lose_rate: 0.0,
        reject_rate: 0.0,
    };
}

/// What a write did, for the gateway's bookkeeping.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteEffects {
    /// The routing cache has to rebuild for this write.
    pub cache_rebuild: bool,
    /// The write was answered as applied but not kept (`--lose-write-rate`).
    pub lost: bool,
}

/// What references one definition (the counts of a 409 `REFERENCED`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    /// Users holding it.
    pub users: usize,
    /// Routing profiles listing it.
    pub profiles: usize,
    /// Routing strategies referencing it (proficiencies only).
    pub strategies: usize,
    /// Those strategies' names, for the message.
    pub strategy_names: Vec<String>,
}

/// The live tenant.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    /// Skill definitions by id, in creation order.
    pub skills: IndexMap<String, Definition>,
    /// Proficiency definitions by id, in creation order.
    pub proficiencies: IndexMap<String, Definition>,
    /// Routing profiles by id.
    pub profiles: IndexMap<String, Profile>,
    /// Users by id, in the order they were loaded, which is the order of every listing of
    /// them. Private, like `holders`: a user is never added or removed after loading, and
    /// changes only through [`Tenant::apply_user_patch`], which keeps `holders` in step.
    /// Shared (`Arc`), so that a reader copies a page under the tenant's lock and renders it
    /// after releasing it, and a reset copies pointers.
    users: IndexMap<String, Arc<User>>,
    /// Which users hold each definition, by their position in `users`.
    holders: Holders,
    /// Queues by id.
    pub queues: IndexMap<String, Queue>,
    /// Routing strategies by id.
    pub strategies: IndexMap<String, Strategy>,
    /// What the routing engine currently believes.
    pub cache: RoutingCache,
    /// Per user, how many client writes that passed every check met a non-zero
    /// `--lose-write-rate`: the input, with the user id, of each keep-or-lose decision.
    lose_write_draws: HashMap<String, u64>,
    /// Per user, how many client writes that passed every check met a non-zero
    /// `--reject-write-rate`: the input, with the user id, of each take-or-refuse decision.
    /// Kept apart from `lose_write_draws`, so that turning one knob never moves the other's
    /// pattern.
    reject_write_draws: HashMap<String, u64>,
}

impl Tenant {
    /// Loads a document, checking that every reference in it resolves.
    pub fn from_doc(doc: TenantDoc) -> Result<Tenant, SimError> {
        let mut tenant = Tenant::default();
        for p in doc.profiles {
            if tenant.profiles.insert(p.id.clone(), p.clone()).is_some() {
                return Err(SimError::DuplicateId {
                    class: "profile",
                    id: p.id,
                });
            }
        }
        for (kind, defs) in [
            (Kind::Skill, doc.skills),
            (Kind::Proficiency, doc.proficiencies),
        ] {
            for d in defs {
                if !tenant.profiles.contains_key(&d.routing_profile_id) {
                    return Err(SimError::UnknownProfile {
                        owner: format!("{} {}", kind.noun(), d.id),
                        profile: d.routing_profile_id,
                    });
                }
                if tenant.kind_of(&d.id).is_some() {
                    return Err(SimError::DuplicateId {
                        class: "definition",
                        id: d.id,
                    });
                }
                tenant.definitions_mut(kind).insert(d.id.clone(), d);
            }
        }
        for p in tenant.profiles.values() {
            for id in &p.skills {
                tenant.expect_kind(id, Kind::Skill, &format!("profile {}", p.id))?;
            }
            for id in &p.proficiencies {
                tenant.expect_kind(id, Kind::Proficiency, &format!("profile {}", p.id))?;
            }
        }
        for u in doc.users {
            if !tenant.profiles.contains_key(&u.routing_profile_id) {
                return Err(SimError::UnknownProfile {
                    owner: format!("user {}", u.id),
                    profile: u.routing_profile_id,
                });
            }
            let owner = format!("user {}", u.id);
            for a in &u.skills {
                tenant.expect_kind(&a.id, Kind::Skill, &owner)?;
            }
            for a in &u.proficiencies {
                tenant.expect_kind(&a.id, Kind::Proficiency, &owner)?;
            }
            if tenant.users.contains_key(&u.id) {
                return Err(SimError::DuplicateId {
                    class: "user",
                    id: u.id,
                });
            }
            tenant.cache.load(&u.id, &u.skills);
            tenant.holders.push(position(tenant.users.len()), &u);
            tenant.users.insert(u.id.clone(), Arc::new(u));
        }
        for q in doc.queues {
            tenant.expect_kind(&q.skill_id, Kind::Skill, &format!("queue {}", q.id))?;
            tenant.queues.insert(q.id.clone(), q);
        }
        for s in doc.strategies {
            for id in &s.proficiencies {
                tenant.expect_kind(id, Kind::Proficiency, &format!("strategy {}", s.id))?;
            }
            if tenant.strategies.insert(s.id.clone(), s.clone()).is_some() {
                return Err(SimError::DuplicateId {
                    class: "strategy",
                    id: s.id,
                });
            }
        }
        Ok(tenant)
    }

    fn expect_kind(&self, id: &str, kind: Kind, owner: &str) -> Result<(), SimError> {
        match self.kind_of(id) {
            Some(k) if k == kind => Ok(()),
            _ => Err(SimError::UnknownDefinition {
                owner: owner.to_string(),
                class: kind.noun(),
                id: id.to_string(),
            }),
        }
    }

    /// The tenant as a document (for `/sim/state` and fixtures).
    pub fn to_doc(&self) -> TenantDoc {
        TenantDoc {
            profiles: self.profiles.values().cloned().collect(),
            skills: self.skills.values().cloned().collect(),
            proficiencies: self.proficiencies.values().cloned().collect(),
            users: self.users.values().map(|u| User::clone(u)).collect(),
            queues: self.queues.values().cloned().collect(),
            strategies: self.strategies.values().cloned().collect(),
            clients: Vec::new(),
        }
    }

    /// Every user, in listing order.
    pub fn users(&self) -> &IndexMap<String, Arc<User>> {
        &self.users
    }

    /// Definitions of one class.
    pub fn definitions(&self, kind: Kind) -> &IndexMap<String, Definition> {
        match kind {
            Kind::Skill => &self.skills,
            Kind::Proficiency => &self.proficiencies,
        }
    }

    fn definitions_mut(&mut self, kind: Kind) -> &mut IndexMap<String, Definition> {
        match kind {
            Kind::Skill => &mut self.skills,
            Kind::Proficiency => &mut self.proficiencies,
        }
    }

    /// Which class an id belongs to, if any.
    pub fn kind_of(&self, id: &str) -> Option<Kind> {
        if self.skills.contains_key(id) {
            Some(Kind::Skill)
        } else if self.proficiencies.contains_key(id) {
            Some(Kind::Proficiency)
        } else {
            None
        }
    }

    // ----- definitions (SPEC 1.2) -----

    /// `GET /routing/{kind}` with filters.
    pub fn list_definitions(
        &self,
        kind: Kind,
        filter: &DefinitionFilter,
        page: PageRequest,
    ) -> PageOf<Definition> {
        let matches = self.definitions(kind).values().filter(|d| {
            filter.name.as_ref().is_none_or(|n| &d.name == n)
                && filter.locale.as_ref().is_none_or(|l| &d.locale == l)
                && filter.active.is_none_or(|a| d.active == a)
        });
        page.cut(matches.cloned())
    }

    /// Parses and validates a definition body; every problem is reported at once.
    pub fn parse_definition(&self, body: &Value) -> Result<DefinitionInput, ApiError> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let mut problems = Vec::new();
        let mut text = |field: &str, required: bool| -> String {
            match obj.get(field) {
                // An empty required field names nothing (no profile, no locale, no name).
                Some(Value::String(s)) if required && s.trim().is_empty() => {
                    problems.push(FieldError::new(field, "must not be empty"));
                    String::new()
                }
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) if !required => String::new(),
                None | Some(Value::Null) => {
                    problems.push(FieldError::new(field, "required"));
                    String::new()
                }
                Some(_) => {
                    problems.push(FieldError::new(field, "must be a string"));
                    String::new()
                }
            }
        };
        let name = text("name", true);
        let locale = text("locale", true);
        let description = text("description", false);
        let routing_profile_id = text("routingProfileId", true);
        let active = match obj.get("active") {
            Some(Value::Bool(b)) => Some(*b),
            None | Some(Value::Null) => {
                problems.push(FieldError::new("active", "required"));
                None
            }
            Some(_) => {
                problems.push(FieldError::new("active", "must be true or false"));
                None
            }
        };
        if obj.contains_key("locale")
            && !locale.is_empty()
            && let Err(why) = check_locale(&locale)
        {
            problems.push(FieldError::new("locale", why.to_string()));
        }
        if !routing_profile_id.is_empty() && !self.profiles.contains_key(&routing_profile_id) {
            problems.push(FieldError::new(
                "routingProfileId",
                format!("routing profile {routing_profile_id} does not exist"),
            ));
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        Ok(DefinitionInput {
            name,
            locale,
            active: active.unwrap_or(true),
            description,
            routing_profile_id,
        })
    }

    /// `POST /routing/{kind}`. Returns the new definition and whether it duplicated an existing
    /// name+locale (which the API accepts: that is the trap).
    pub fn create_definition(
        &mut self,
        kind: Kind,
        input: DefinitionInput,
        id: String,
        now: Timestamp,
    ) -> (Definition, bool) {
        let duplicate = self
            .definitions(kind)
            .values()
            .any(|d| d.name == input.name && d.locale == input.locale);
        let definition = Definition {
            id: id.clone(),
            name: input.name,
            locale: input.locale,
            active: input.active,
            description: input.description,
            routing_profile_id: input.routing_profile_id,
            version: 1,
            date_modified: now,
        };
        self.definitions_mut(kind).insert(id, definition.clone());
        (definition, duplicate)
    }

    /// `GET /routing/{kind}/{id}`.
    pub fn definition(&self, kind: Kind, id: &str) -> Result<&Definition, ApiError> {
        self.definitions(kind)
            .get(id)
            .ok_or_else(|| ApiError::not_found(kind.noun(), id))
    }

    /// `PUT /routing/{kind}/{id}`: full replace, honouring `If-Match`.
    pub fn replace_definition(
        &mut self,
        kind: Kind,
        id: &str,
        input: DefinitionInput,
        if_match: Option<u64>,
        now: Timestamp,
    ) -> Result<Definition, ApiError> {
        let current = self.definition(kind, id)?.version;
        if let Some(expected) = if_match
            && expected != current
        {
            return Err(ApiError::stale(kind.noun(), id, expected, current));
        }
        let definition = self
            .definitions_mut(kind)
            .get_mut(id)
            .expect("checked above");
        definition.name = input.name;
        definition.locale = input.locale;
        definition.active = input.active;
        definition.description = input.description;
        definition.routing_profile_id = input.routing_profile_id;
        definition.version += 1;
        definition.date_modified = now;
        Ok(definition.clone())
    }

    /// How many users, profiles and strategies reference a definition.
    pub fn references(&self, kind: Kind, id: &str) -> References {
        let users = self.holders.of(kind, id).len();
        let profiles = self
            .profiles
            .values()
            .filter(|p| profile_refs(p, kind).iter().any(|r| r == id))
            .count();
        let strategies: Vec<&Strategy> = match kind {
            Kind::Skill => Vec::new(),
            Kind::Proficiency => self
                .strategies
                .values()
                .filter(|s| s.proficiencies.iter().any(|r| r == id))
                .collect(),
        };
        References {
            users,
            profiles,
            strategies: strategies.len(),
            strategy_names: strategies.iter().map(|s| s.name.clone()).collect(),
        }
    }

    /// `DELETE /routing/{kind}/{id}`: refused with 409 while anything references it.
    pub fn delete_definition(&mut self, kind: Kind, id: &str) -> Result<(), ApiError> {
        self.definition(kind, id)?;
        let refs = self.references(kind, id);
        if refs.users + refs.profiles + refs.strategies > 0 {
            let strategies = if refs.strategies == 0 {
                String::new()
            } else {
                format!(
                    ", {} routing strategy(ies) ({})",
                    refs.strategies,
                    refs.strategy_names.join(", ")
                )
            };
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "REFERENCED",
                format!(
                    "{} {id} is still referenced by {} user(s) and {} routing profile(s){strategies}; \
                     remove those references first, or set active:false to retire it softly",
                    kind.noun(),
                    refs.users,
                    refs.profiles,
                ),
            )
            .with("references", {
                let mut counts = serde_json::json!({
                    "users": refs.users,
                    "profiles": refs.profiles,
                });
                // Only when a strategy references it: tenants without strategies answer
                // exactly as they always have.
                if refs.strategies > 0 {
                    counts["strategies"] = refs.strategies.into();
                }
                counts
            }));
        }
        self.definitions_mut(kind).shift_remove(id);
        Ok(())
    }

    // ----- routing profiles (SPEC 1.3) -----

    /// `GET /routing/profiles?skillId=&proficiencyId=`.
    pub fn list_profiles(
        &self,
        skill_id: Option<&str>,
        proficiency_id: Option<&str>,
        page: PageRequest,
    ) -> PageOf<Profile> {
        let matches = self.profiles.values().filter(|p| {
            skill_id.is_none_or(|s| p.skills.iter().any(|x| x == s))
                && proficiency_id.is_none_or(|s| p.proficiencies.iter().any(|x| x == s))
        });
        page.cut(matches.cloned())
    }

    /// `PUT /routing/profiles/{id}`: replaces the lists that are present.
    pub fn update_profile(
        &mut self,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
    ) -> Result<Profile, ApiError> {
        let current = self
            .profiles
            .get(id)
            .ok_or_else(|| ApiError::not_found("routing profile", id))?
            .version;
        let Some(obj) = body.as_object() else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let mut problems = Vec::new();
        let mut lists: [Option<Vec<String>>; 2] = [None, None];
        for (slot, (field, kind)) in [
            ("skills", Kind::Skill),
            ("proficiencies", Kind::Proficiency),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(value) = obj.get(field) else {
                continue;
            };
            let Some(items) = value.as_array() else {
                problems.push(FieldError::new(field, "must be a list of ids"));
                continue;
            };
            let mut ids = Vec::new();
            let mut seen = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("{field}[{i}]");
                match item.as_str() {
                    None => problems.push(FieldError::new(path, "must be an id string")),
                    Some(ref_id) => {
                        if let Err(why) = self.check_class(ref_id, kind) {
                            problems.push(FieldError::new(path, why));
                        } else if !seen.insert(ref_id) {
                            problems.push(FieldError::new(path, format!("repeats id {ref_id}")));
                        } else {
                            ids.push(ref_id.to_string());
                        }
                    }
                }
            }
            lists[slot] = Some(ids);
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        if let Some(expected) = if_match
            && expected != current
        {
            return Err(ApiError::stale("routing profile", id, expected, current));
        }
        let profile = self.profiles.get_mut(id).expect("checked above");
        let [skills, proficiencies] = lists;
        if let Some(skills) = skills {
            profile.skills = skills;
        }
        if let Some(proficiencies) = proficiencies {
            profile.proficiencies = proficiencies;
        }
        profile.version += 1;
        Ok(profile.clone())
    }

    // ----- routing strategies (docs/sim-strategies.md) -----

    /// `GET /routing/strategies?proficiencyId=`.
    pub fn list_strategies(
        &self,
        proficiency_id: Option<&str>,
        page: PageRequest,
    ) -> PageOf<Strategy> {
        let matches = self
            .strategies
            .values()
            .filter(|s| proficiency_id.is_none_or(|p| s.proficiencies.iter().any(|x| x == p)));
        page.cut(matches.cloned())
    }

    /// `PUT /routing/strategies/{id}`: replaces its proficiency list when present.
    pub fn update_strategy(
        &mut self,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
    ) -> Result<Strategy, ApiError> {
        let current = self
            .strategies
            .get(id)
            .ok_or_else(|| ApiError::not_found("routing strategy", id))?
            .version;
        let Some(obj) = body.as_object() else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let mut problems = Vec::new();
        let mut list = None;
        if let Some(value) = obj.get("proficiencies") {
            match value.as_array() {
                None => problems.push(FieldError::new("proficiencies", "must be a list of ids")),
                Some(items) => {
                    let mut ids = Vec::new();
                    let mut seen = HashSet::new();
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("proficiencies[{i}]");
                        match item.as_str() {
                            None => problems.push(FieldError::new(path, "must be an id string")),
                            Some(ref_id) => {
                                if let Err(why) = self.check_class(ref_id, Kind::Proficiency) {
                                    problems.push(FieldError::new(path, why));
                                } else if !seen.insert(ref_id) {
                                    problems.push(FieldError::new(
                                        path,
                                        format!("repeats id {ref_id}"),
                                    ));
                                } else {
                                    ids.push(ref_id.to_string());
                                }
                            }
                        }
                    }
                    list = Some(ids);
                }
            }
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        if let Some(expected) = if_match
            && expected != current
        {
            return Err(ApiError::stale("routing strategy", id, expected, current));
        }
        let strategy = self.strategies.get_mut(id).expect("checked above");
        if let Some(list) = list {
            strategy.proficiencies = list;
        }
        strategy.version += 1;
        Ok(strategy.clone())
    }

    fn check_class(&self, id: &str, wanted: Kind) -> Result<(), String> {
        match self.kind_of(id) {
            Some(k) if k == wanted => Ok(()),
            Some(k) => Err(format!("{id} is a {}, not a {}", k.noun(), wanted.noun())),
            None => Err(format!("unknown {} id {id}", wanted.noun())),
        }
    }

    // ----- routing users (SPEC 1.3) -----

    /// `GET /routing/users?skillId=&proficiencyId=` (and, without filters, `GET /users`): the
    /// users in listing order that hold the skill and the proficiency asked for. A page costs
    /// its own size, not the tenant's: unfiltered it is a slice of the users, filtered a slice
    /// of the definition's holders (both filters: the shorter holder list, each looked up in
    /// the other). The users are shared, not copied: render them after releasing the lock.
    pub fn list_users(
        &self,
        skill_id: Option<&str>,
        proficiency_id: Option<&str>,
        page: PageRequest,
    ) -> PageOf<Arc<User>> {
        let at = |position: &u32| Arc::clone(&self.users[*position as usize]);
        let (entities, total) = match (skill_id, proficiency_id) {
            (None, None) => {
                let range = page.range(self.users.len());
                let users = self.users.get_range(range).into_iter().flatten();
                (
                    users.map(|(_, u)| Arc::clone(u)).collect(),
                    self.users.len(),
                )
            }
            (Some(id), None) | (None, Some(id)) => {
                let kind = if skill_id.is_some() {
                    Kind::Skill
                } else {
                    Kind::Proficiency
                };
                let holders = self.holders.of(kind, id);
                let range = page.range(holders.len());
                (holders[range].iter().map(at).collect(), holders.len())
            }
            (Some(skill), Some(proficiency)) => {
                let holders = intersect(
                    self.holders.of(Kind::Skill, skill),
                    self.holders.of(Kind::Proficiency, proficiency),
                );
                let range = page.range(holders.len());
                (holders[range].iter().map(at).collect(), holders.len())
            }
        };
        PageOf {
            entities,
            page: page.page,
            page_size: page.page_size,
            total,
        }
    }

    /// Parses a routing-dialect user body (`PUT /routing/users/{id}` or one bulk entry).
    /// `at` prefixes field paths, e.g. `users[3].`.
    pub fn parse_user_patch(
        &self,
        obj: &serde_json::Map<String, Value>,
        at: &str,
    ) -> Result<UserPatch, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut patch = UserPatch::default();
        if let Some(profile) = obj.get("routingProfile") {
            match profile.get("id").and_then(Value::as_str) {
                Some(id) if self.profiles.contains_key(id) => {
                    patch.routing_profile_id = Some(id.to_string())
                }
                Some(id) => problems.push(FieldError::new(
                    format!("{at}routingProfile.id"),
                    format!("routing profile {id} does not exist"),
                )),
                None => problems.push(FieldError::new(
                    format!("{at}routingProfile"),
                    "must be an object with an id",
                )),
            }
        }
        for (field, kind) in [
            ("skills", Kind::Skill),
            ("proficiencies", Kind::Proficiency),
        ] {
            let Some(value) = obj.get(field) else {
                continue;
            };
            let path = format!("{at}{field}");
            match self.parse_assignments(value, kind, &path) {
                Ok(list) => match kind {
                    Kind::Skill => patch.skills = Some(list),
                    Kind::Proficiency => patch.proficiencies = Some(list),
                },
                Err(mut more) => problems.append(&mut more),
            }
        }
        if problems.is_empty() {
            Ok(patch)
        } else {
            Err(problems)
        }
    }

    fn parse_assignments(
        &self,
        value: &Value,
        kind: Kind,
        path: &str,
    ) -> Result<Vec<Assignment>, Vec<FieldError>> {
        let Some(items) = value.as_array() else {
            return Err(vec![FieldError::new(path, "must be a list")]);
        };
        let mut problems = Vec::new();
        let mut list = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Some(entry) = item.as_object() else {
                problems.push(FieldError::new(at, "must be an object {id, level, active}"));
                continue;
            };
            let id = match entry.get("id").and_then(Value::as_str) {
                Some(id) => match self.check_class(id, kind) {
                    Ok(()) if !seen.insert(id.to_string()) => {
                        problems.push(FieldError::new(
                            format!("{at}.id"),
                            format!("repeats id {id}"),
                        ));
                        None
                    }
                    Ok(()) => Some(id.to_string()),
                    Err(why) => {
                        problems.push(FieldError::new(format!("{at}.id"), why));
                        None
                    }
                },
                None => {
                    problems.push(FieldError::new(format!("{at}.id"), "required"));
                    None
                }
            };
            let level = match entry.get("level") {
                Some(level) => match level.as_u64() {
                    Some(l @ 1..=10) => Some(l as u8),
                    _ => {
                        problems.push(FieldError::new(
                            format!("{at}.level"),
                            format!("must be an integer from 1 to 10, got {level}"),
                        ));
                        None
                    }
                },
                None => {
                    problems.push(FieldError::new(format!("{at}.level"), "required"));
                    None
                }
            };
            let active = match entry.get("active") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    problems.push(FieldError::new(
                        format!("{at}.active"),
                        "must be true or false",
                    ));
                    true
                }
            };
            if let (Some(id), Some(level)) = (id, level) {
                list.push(Assignment { id, level, active });
            }
        }
        if problems.is_empty() {
            Ok(list)
        } else {
            Err(problems)
        }
    }

    /// Applies a patch atomically if the user exists and `expected` (when given) is current.
    ///
    /// `faults` are the knobs a write that passed every check meets; clients' writes pass the
    /// knobs in force, the other integration passes [`WriteFaults::NONE`] because its log must
    /// record only what the tenant really holds.
    ///
    /// A rejected write (`faults.reject_rate`, `--reject-write-rate`) is refused with
    /// [`PatchRefused::Rejected`] and changes nothing: not the user, not the routing cache, not
    /// the lost-write draws. It is decided only after every check passed, so a bad or stale
    /// write still gets its own error.
    ///
    /// A lost write (`faults.lose_rate`, `--lose-write-rate`) is answered as applied but not
    /// kept: it returns the user exactly as a kept write would have left it — new lists,
    /// version + 1, new `dateModified` — while the stored user and the routing cache stay as
    /// they were. That is what an eventually inconsistent backend shows: the front end merges
    /// the request into what it read, numbers the result and answers, and the commit behind it
    /// is what goes missing. The version it answered was never stored, so a client that trusts
    /// it gets 412 (409 in the users dialect) on its next `If-Match`, and only a read-back
    /// shows that the write is not there.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_user_patch(
        &mut self,
        user_id: &str,
        patch: UserPatch,
        expected: Option<u64>,
        now: Timestamp,
        at: SimInstant,
        propagation: std::time::Duration,
        faults: WriteFaults,
    ) -> Result<(Arc<User>, WriteEffects), PatchRefused> {
        let stored = self.users.get(user_id).ok_or(PatchRefused::NotFound)?;
        if let Some(expected) = expected
            && expected != stored.version
        {
            return Err(PatchRefused::Stale {
                expected,
                current: stored.version,
            });
        }
        if self.rejects_write(user_id, faults.reject_rate) {
            return Err(PatchRefused::Rejected);
        }
        let mut user = User::clone(&self.users[user_id]);
        if let Some(profile) = patch.routing_profile_id {
            user.routing_profile_id = profile;
        }
        let touches_skills = patch.skills.is_some();
        if let Some(skills) = patch.skills {
            user.skills = skills;
        }
        if let Some(proficiencies) = patch.proficiencies {
            user.proficiencies = proficiencies;
        }
        for (field, value) in patch.profile_fields {
            match field {
                ProfileField::FirstName => user.first_name = value,
                ProfileField::LastName => user.last_name = value,
                ProfileField::Email => user.email = value,
            }
        }
        user.version += 1;
        user.date_modified = now;
        if self.loses_write(user_id, faults.lose_rate) {
            let effects = WriteEffects {
                cache_rebuild: false,
                lost: true,
            };
            return Ok((Arc::new(user), effects));
        }
        if touches_skills {
            self.cache.schedule(user_id, &user.skills, at + propagation);
        }
        let user = Arc::new(user);
        if let Some((index, _, slot)) = self.users.get_full_mut(user_id) {
            let before = std::mem::replace(slot, Arc::clone(&user));
            self.holders.replace(position(index), &before, &user);
        }
        let effects = WriteEffects {
            cache_rebuild: touches_skills,
            lost: false,
        };
        Ok((user, effects))
    }

    /// Decides whether this write to `user_id` is lost at `rate`.
    ///
    /// The decision is a pure function of the user id and how many writes to that user have
    /// been decided before (since start or `POST /sim/reset`): the same requests against the
    /// same tenant lose the same writes, whatever the order in which concurrent requests to
    /// different users arrive. Generated tenants' user ids come from `--seed`, so the seed
    /// picks the pattern. Rate 0 decides nothing (and counts nothing); rate 1 loses every write.
    fn loses_write(&mut self, user_id: &str, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let draws = self
            .lose_write_draws
            .entry(user_id.to_string())
            .or_default();
        *draws += 1;
        write_draw_rng(LOSE_WRITE_STREAM, user_id, *draws).random_bool(rate.min(1.0))
    }

    /// Decides whether this write to `user_id` is refused at `rate`, in the same way as
    /// [`Tenant::loses_write`] decides losses (a pure function of the user id and how many
    /// refuse-or-take decisions that user has had since start or `POST /sim/reset`), from its own
    /// counter and its own random stream. Rate 0 decides nothing; rate 1 refuses every write.
    fn rejects_write(&mut self, user_id: &str, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let draws = self
            .reject_write_draws
            .entry(user_id.to_string())
            .or_default();
        *draws += 1;
        write_draw_rng(REJECT_WRITE_STREAM, user_id, *draws).random_bool(rate.min(1.0))
    }

    // ----- the users dialect (SPEC 1.5) -----

    /// Parses `PUT /users/{id}`: `skills.proficiencies` replaces the user's skill list.
    /// Entries keep the `active` flag of an existing assignment to the same skill.
    pub fn parse_users_dialect_patch(
        &self,
        user_id: &str,
        body: &Value,
    ) -> Result<UserPatch, ApiError> {
        let Some(obj) = body.as_object() else {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        };
        let user = self
            .users
            .get(user_id)
            .ok_or_else(|| ApiError::not_found("user", user_id))?;
        let mut problems = Vec::new();
        let mut patch = UserPatch::default();
        for (name, field) in [
            ("firstName", ProfileField::FirstName),
            ("lastName", ProfileField::LastName),
            ("email", ProfileField::Email),
        ] {
            match obj.get(name) {
                None => {}
                Some(Value::String(s)) => patch.profile_fields.push((field, s.clone())),
                Some(_) => problems.push(FieldError::new(name, "must be a string")),
            }
        }
        match obj.get("skills") {
            None => {}
            Some(Value::Object(skills)) => {
                if let Some(list) = skills.get("proficiencies") {
                    let converted = match list.as_array() {
                        Some(items) => Value::Array(
                            items
                                .iter()
                                .map(|item| {
                                    let id = item.get("skill").cloned().unwrap_or(Value::Null);
                                    let active = user
                                        .skills
                                        .iter()
                                        .find(|a| Some(a.id.as_str()) == id.as_str())
                                        .is_none_or(|a| a.active);
                                    serde_json::json!({
                                        "id": id,
                                        "level": item.get("level").cloned().unwrap_or(Value::Null),
                                        "active": active,
                                    })
                                })
                                .collect(),
                        ),
                        None => list.clone(),
                    };
                    match self.parse_assignments(&converted, Kind::Skill, "skills.proficiencies") {
                        Ok(list) => patch.skills = Some(list),
                        Err(more) => problems.extend(more.into_iter().map(|mut p| {
                            p.field = p.field.replace(".id", ".skill");
                            p
                        })),
                    }
                }
            }
            Some(_) => problems.push(FieldError::new(
                "skills",
                "must be an object {proficiencies: [...]}",
            )),
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        Ok(patch)
    }

    // ----- the routing engine (SPEC 1.4) -----

    /// `POST /interactions/test`: routes one interaction from the cache, highest level first.
    pub fn route_test_interaction(
        &mut self,
        queue_id: &str,
        now: SimInstant,
    ) -> Result<Routed, ApiError> {
        let queue = self
            .queues
            .get(queue_id)
            .ok_or_else(|| ApiError::not_found("queue", queue_id))?
            .clone();
        if queue.production {
            return Err(ApiError::invalid(
                "queueId",
                format!(
                    "queue {} is a production queue; test interactions go to non-production queues only",
                    queue.name
                ),
            ));
        }
        let skill = self.skills.get(&queue.skill_id);
        let skill_routes = skill.is_some_and(|s| s.active);
        let mut best: Option<(u8, &str)> = None;
        if skill_routes {
            for user_id in self.users.keys() {
                let cached = self.cache.skills_at(user_id, now);
                let level = cached
                    .iter()
                    .find(|a| a.id == queue.skill_id && a.active && a.level >= queue.min_level)
                    .map(|a| a.level);
                if let Some(level) = level
                    && best.is_none_or(|(l, _)| level > l)
                {
                    best = Some((level, user_id));
                }
            }
        }
        Ok(match best {
            Some((level, user_id)) => Routed {
                routed: true,
                user_id: Some(user_id.to_string()),
                level: Some(level),
                reason: None,
            },
            None => Routed {
                routed: false,
                user_id: None,
                level: None,
                reason: Some(match skill {
                    None => format!(
                        "queue {} requires skill {}, which no longer exists",
                        queue.name, queue.skill_id
                    ),
                    Some(s) if !s.active => format!(
                        "skill {} ({}) is inactive and does not route",
                        s.name, s.locale
                    ),
                    Some(s) => format!(
                        "no agent in the routing cache has skill {} ({}) at level {} or above",
                        s.name, s.locale, queue.min_level
                    ),
                }),
            },
        })
    }
}

/// The answer to a test interaction.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Routed {
    /// Whether an agent was found.
    pub routed: bool,
    /// The agent chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The level it had in the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Why nobody was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A user's position in the tenant's user map, as the holder index keeps it.
fn position(index: usize) -> u32 {
    u32::try_from(index).expect("a tenant holds fewer than 2^32 users")
}

/// A user's assignments of one class.
pub fn assignments(user: &User, kind: Kind) -> &[Assignment] {
    match kind {
        Kind::Skill => &user.skills,
        Kind::Proficiency => &user.proficiencies,
    }
}

fn profile_refs(profile: &Profile, kind: Kind) -> &[String] {
    match kind {
        Kind::Skill => &profile.skills,
        Kind::Proficiency => &profile.proficiencies,
    }
}

/// The lost-write decisions' stream name (empty, which keeps the seeds they always had).
const LOSE_WRITE_STREAM: &str = "";
/// The rejected-write decisions' stream name: the same user and draw number seed another stream.
const REJECT_WRITE_STREAM: &str = "reject-write\0";

/// The random stream that decides the `n`th draw of one kind (`stream`) for `user_id`: ChaCha8,
/// as the generated tenants use, seeded from an FNV-1a hash of the stream name and the id
/// (stable across Rust releases, unlike `std`'s hasher) and the draw's number. The CXone
/// dialect's per-entry draws (`cxone.rs`) use it too, with a stream of their own.
pub(crate) fn write_draw_rng(stream: &str, user_id: &str, n: u64) -> ChaCha8Rng {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in stream.bytes().chain(user_id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(hash ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Checks a lowercase BCP-47 tag such as `en-us` or `zh-hant-tw`.
pub fn check_locale(tag: &str) -> Result<(), SimError> {
    if tag != tag.to_ascii_lowercase() {
        return Err(SimError::LocaleNotLowercase {
            tag: tag.to_string(),
        });
    }
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    let language_ok =
        (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase());
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if language_ok && rest_ok {
        Ok(())
    } else {
        Err(SimError::LocaleNotBcp47 {
            tag: tag.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_must_be_lowercase_bcp47() {
        assert!(check_locale("en-us").is_ok());
        assert!(check_locale("de-de").is_ok());
        assert!(check_locale("zh-hant-tw").is_ok());
        assert!(matches!(
            check_locale("en-US"),
            Err(SimError::LocaleNotLowercase { .. })
        ));
        assert!(matches!(
            check_locale("english"),
            Err(SimError::LocaleNotBcp47 { .. })
        ));
        assert!(matches!(
            check_locale("e"),
            Err(SimError::LocaleNotBcp47 { .. })
        ));
    }

    #[test]
    fn page_cut_counts_every_match_and_returns_one_page() {
        let page = PageRequest {
            page: 2,
            page_size: 3,
        }
        .cut(1..=10);
        assert_eq!(page.entities, vec![4, 5, 6]);
        assert_eq!(page.total, 10);
        let past_end = PageRequest {
            page: 5,
            page_size: 3,
        }
        .cut(1..=10);
        assert!(past_end.entities.is_empty());
    }

    #[test]
    fn page_range_keeps_what_cut_keeps() {
        for total in [0, 1, 2, 7, 10, 500, 501] {
            for page_size in [1, 3, 7, 500] {
                for page in [1, 2, 3, 4, 72, 73, 1000, usize::MAX] {
                    let request = PageRequest { page, page_size };
                    let cut = request.cut(0..total);
                    let range = request.range(total);
                    assert_eq!(
                        range.clone().collect::<Vec<_>>(),
                        cut.entities,
                        "page {page} of {page_size} among {total}"
                    );
                    assert_eq!(cut.total, total);
                }
            }
        }
    }
}
