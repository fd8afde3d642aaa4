//! `plan(desired, live)`: the smallest set of changes that brings what skillsync owns in the
//! tenant to what the HRIS says, and nothing else.
//!
//! Ownership is by name and locale: a tenant definition is ours when the catalog lists a
//! variant with that kind, name and locale. Assignments to anything else belong to someone
//! else and are carried through every write exactly as they were. Within what we own, the plan
//! also mends what naive syncs leave behind: an agent holding another locale's variant of a
//! code, or an assignment to a duplicate definition, is moved to the one right definition.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;
use serde::Serialize;

use crate::desired::{
    Agent, CatalogEntry, Code, Desired, EmployeeId, Retired, SourceFiles, Wanted,
};
use crate::domain::{
    Assignment, Definition, DefinitionId, Kind, Level, Locale, UserAssignments, UserId, Version,
};
use crate::problem::Problem;

/// What the tenant holds now, as far as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Every skill and proficiency definition, in the tenant's (creation) order.
    pub definitions: Vec<Definition>,
    /// Users with their assignments and versions.
    pub users: Vec<UserAssignments>,
    /// Ids of routing profiles the tenant listed: those a plan must check
    /// ([`Live::profiles_to_check`]), read only when there are any; empty otherwise.
    pub profile_ids: BTreeSet<String>,
    /// False in the users dialect, which cannot see proficiency assignments.
    pub sees_proficiencies: bool,
    /// The dialect has no routing profiles (CXone): a catalog's `routing_profile_id` is not
    /// checked against `profile_ids`.
    pub without_profiles: bool,
}

impl Live {
    /// The routing profiles the tenant must be asked about before a plan against `catalog` can
    /// be trusted: the `routing_profile_id` of each variant whose definition would be created,
    /// reactivated or updated (each such write names its profile), less those a definition of
    /// the tenant already names (the tenant refuses a definition whose profile it does not have,
    /// and has no way to delete a profile: SPEC 1.2, 1.3). Empty in a dialect without profiles,
    /// and for a run that writes no definition: such a run need not list the profiles at all.
    /// Retirements are not known here, so a retired variant may add an id needlessly, never
    /// leave one out.
    pub fn profiles_to_check(&self, catalog: &crate::desired::Catalog) -> BTreeSet<String> {
        if self.without_profiles {
            return BTreeSet::new();
        }
        let by_name = by_name(&self.definitions);
        let named = named_profiles(&self.definitions);
        catalog
            .entries
            .values()
            .filter(|entry| definition_work(entry, &by_name, false).writes())
            .map(|entry| &entry.routing_profile_id)
            .filter(|id| !named.contains(id.as_str()))
            .cloned()
            .collect()
    }
}

/// The tenant's definitions by kind, name and locale, each list in the tenant's order.
fn by_name(definitions: &[Definition]) -> HashMap<(Kind, &str, &Locale), Vec<&Definition>> {
    let mut by_name: HashMap<(Kind, &str, &Locale), Vec<&Definition>> = HashMap::new();
    for d in definitions {
        by_name
            .entry((d.kind, d.name.as_str(), &d.locale))
            .or_default()
            .push(d);
    }
    by_name
}

/// The routing profiles the tenant's definitions name: each exists (see
/// [`Live::profiles_to_check`]).
fn named_profiles(definitions: &[Definition]) -> std::collections::HashSet<&str> {
    definitions
        .iter()
        .map(|d| d.routing_profile_id.as_str())
        .collect()
}

/// What a catalog variant's definition needs.
enum DefinitionWork<'a> {
    /// No tenant definition has its kind, name and locale: it is created.
    Create,
    /// The canonical one (the oldest active, else the oldest) and the fields to rewrite
    /// (none: left as it is).
    Existing {
        candidates: Vec<&'a Definition>,
        canonical: &'a Definition,
        fields: Vec<&'static str>,
    },
}

impl DefinitionWork<'_> {
    /// Whether the definition is written (created, reactivated or updated), naming the
    /// catalog's routing profile.
    fn writes(&self) -> bool {
        match self {
            DefinitionWork::Create => true,
            DefinitionWork::Existing { fields, .. } => !fields.is_empty(),
        }
    }
}

fn definition_work<'a>(
    entry: &CatalogEntry,
    by_name: &HashMap<(Kind, &str, &Locale), Vec<&'a Definition>>,
    without_profiles: bool,
) -> DefinitionWork<'a> {
    let candidates = by_name
        .get(&(entry.kind, entry.name.as_str(), &entry.locale))
        .cloned()
        .unwrap_or_default();
    let Some(canonical) = candidates
        .iter()
        .find(|d| d.active)
        .or(candidates.first())
        .copied()
    else {
        return DefinitionWork::Create;
    };
    let mut fields = Vec::new();
    if !canonical.active {
        fields.push("active");
    }
    if canonical.description != entry.description {
        fields.push("description");
    }
    if !without_profiles && canonical.routing_profile_id != entry.routing_profile_id {
        fields.push("routingProfileId");
    }
    DefinitionWork::Existing {
        candidates,
        canonical,
        fields,
    }
}

/// For a dialect whose definitions have no locale field (CXone): gives each definition the
/// locale of the catalog variant whose name it has (names compared ignoring case, as that
/// tenant does; the catalog's spelling is kept), so `resolve` matches it like any other. Definitions no variant names keep the
/// locale they were read with; they are nobody's, and no plan touches them.
pub fn locate_by_name(definitions: &mut [Definition], catalog: &crate::desired::Catalog) {
    let by_name: HashMap<(Kind, String), (&Locale, &str)> = catalog
        .entries
        .iter()
        .map(|((_, locale), entry)| {
            (
                (entry.kind, entry.name.to_lowercase()),
                (locale, entry.name.as_str()),
            )
        })
        .collect();
    for definition in definitions {
        if let Some((locale, name)) =
            by_name.get(&(definition.kind, definition.name.to_lowercase()))
        {
            definition.locale = (*locale).clone();
            definition.name = (*name).to_string();
        }
    }
}

/// Knobs of the plan (SPEC section 3, `[sync]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// More users than this changing → bulk writes.
    pub bulk_threshold: usize,
    /// Users per bulk request.
    pub bulk_batch_size: usize,
    /// Whether the dialect has a bulk endpoint.
    pub bulk_available: bool,
    /// What becomes of the owned assignments of tenant users not in `agents.csv`.
    pub absent_agents: AbsentAgents,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            bulk_threshold: 50,
            bulk_batch_size: 100,
            bulk_available: true,
            absent_agents: AbsentAgents::Keep,
        }
    }
}

/// What becomes of the assignments skillsync owns held by tenant users who are not in
/// `agents.csv` (`[sync] absent_agents`). Someone else's assignments are never touched either
/// way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AbsentAgents {
    /// Left as they are: the HRIS speaks only for the agents it lists.
    #[default]
    Keep,
    /// Removed: an agent gone from the HRIS (left, moved to another system) keeps no skill
    /// skillsync gave it, through the same guards as any other removal.
    Strip,
}

impl AbsentAgents {
    /// Every setting, as `skillsync.toml` spells it.
    pub const NAMES: [&'static str; 2] = ["keep", "strip"];

    /// As `skillsync.toml` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AbsentAgents::Keep => "keep",
            AbsentAgents::Strip => "strip",
        }
    }

    /// Parses the spelling of `skillsync.toml`; `None` for anything else.
    pub fn parse(text: &str) -> Option<AbsentAgents> {
        match text {
            "keep" => Some(AbsentAgents::Keep),
            "strip" => Some(AbsentAgents::Strip),
            _ => None,
        }
    }
}

/// A definition as the plan refers to it: one that exists, or one the plan creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DefinitionRef {
    /// An existing definition.
    Existing(DefinitionId),
    /// The catalog variant the plan creates first.
    New {
        /// Its code.
        code: Code,
        /// Its locale.
        locale: Locale,
    },
}

/// What to do to a catalog definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DefinitionActionKind {
    /// It does not exist: create it.
    Create,
    /// It exists but is inactive: make it active again (and fix its fields).
    Reactivate,
    /// It exists and is active, but its description or routing profile differ.
    Update,
}

/// One change to a catalog definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionAction {
    /// Create, reactivate or update.
    pub action: DefinitionActionKind,
    /// Skill or proficiency.
    pub kind: Kind,
    /// HRIS code.
    pub code: Code,
    /// Locale.
    pub locale: Locale,
    /// Name in the tenant.
    pub name: String,
    /// Description wanted.
    pub description: String,
    /// Routing profile wanted.
    pub routing_profile_id: String,
    /// The existing definition, for reactivate and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<Definition>,
    /// Fields that change (`active`, `description`, `routingProfileId`).
    pub fields: Vec<&'static str>,
    /// Line in `catalog.csv`.
    pub catalog_line: u64,
}

impl DefinitionAction {
    /// An action that brings the tenant's definition to what a catalog row says.
    fn for_entry(
        action: DefinitionActionKind,
        entry: &CatalogEntry,
        existing: Option<Definition>,
        fields: Vec<&'static str>,
    ) -> DefinitionAction {
        DefinitionAction {
            action,
            kind: entry.kind,
            code: entry.code.clone(),
            locale: entry.locale.clone(),
            name: entry.name.clone(),
            description: entry.description.clone(),
            routing_profile_id: entry.routing_profile_id.clone(),
            existing,
            fields,
            catalog_line: entry.line,
        }
    }
}

/// A level and active flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Level.
    pub level: Level,
    /// Active flag.
    pub active: bool,
    /// The tenant's own value when no HRIS level maps to it (`level` is then not the truth):
    /// shown as such and always rewritten, never rounded to a level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_value: Option<u8>,
}

/// Why an assignment changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Why {
    /// The HRIS wants it (added or changed).
    Desired,
    /// The HRIS does not list it for this agent.
    NotDesired,
    /// It is the variant of a desired code in another locale than the agent's.
    WrongLocale,
    /// It points at a duplicate of the right definition.
    Duplicate,
}

/// One assignment that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentChange {
    /// Skill or proficiency.
    pub kind: Kind,
    /// HRIS code of the definition.
    pub code: Code,
    /// Definition name.
    pub name: String,
    /// Definition locale.
    pub locale: Locale,
    /// The definition.
    pub definition: DefinitionRef,
    /// Before (`None`: added).
    pub before: Option<Slot>,
    /// After (`None`: removed).
    pub after: Option<Slot>,
    /// Why.
    pub why: Why,
}

impl AssignmentChange {
    /// Added.
    pub fn is_add(&self) -> bool {
        self.before.is_none()
    }
    /// Removed.
    pub fn is_remove(&self) -> bool {
        self.after.is_none()
    }
    /// Level differs (a tenant value no level maps to always differs).
    pub fn changes_level(&self) -> bool {
        matches!((self.before, self.after), (Some(b), Some(a)) if b.level != a.level || b.tenant_value.is_some())
    }
    /// Turned active.
    pub fn activates(&self) -> bool {
        matches!((self.before, self.after), (Some(b), Some(a)) if !b.active && a.active)
    }
    /// Turned inactive.
    pub fn deactivates(&self) -> bool {
        matches!((self.before, self.after), (Some(b), Some(a)) if b.active && !a.active)
    }
}

/// One entry of a list as it will be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAssignment {
    /// The definition.
    pub definition: DefinitionRef,
    /// Level.
    pub level: Level,
    /// Active flag.
    pub active: bool,
}

/// One entry of a list after planning, still borrowed from the live list or the resolution.
enum AfterEntry<'a> {
    /// Carried through as held (another integration's).
    Held(&'a DefinitionId),
    /// As planned.
    Planned(&'a DefinitionRef),
}

/// A change to one of a user's lists: the changes, and the complete list to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListChange {
    /// What changes.
    pub changes: Vec<AssignmentChange>,
    /// The whole list after the change, other integrations' entries included, in order.
    pub after: Vec<PlannedAssignment>,
}

/// The changes to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPlan {
    /// HRIS id.
    pub employee_id: EmployeeId,
    /// Tenant id.
    pub user_id: UserId,
    /// The agent's locale.
    pub locale: Locale,
    /// The version the plan was computed from; the write carries it.
    pub version: Version,
    /// Skill list change (strict path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skills: Option<ListChange>,
    /// Proficiency list change (eventual path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proficiencies: Option<ListChange>,
    /// The user had skills and will have none: out of every queue.
    pub left_without_skills: bool,
    /// The user is not in `agents.csv` (`[sync] absent_agents = "strip"`): every owned
    /// assignment is removed, and `employee_id` and `locale` mean nothing. Rendered in a
    /// section of its own, never among the agents' changes.
    #[serde(skip)]
    pub absent_from_hris: bool,
}

impl UserPlan {
    /// Every change, skills first.
    pub fn changes(&self) -> impl Iterator<Item = &AssignmentChange> {
        self.skills
            .iter()
            .chain(self.proficiencies.iter())
            .flat_map(|l| l.changes.iter())
    }
}

/// How user writes go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteMode {
    /// Bulk requests of up to `bulk_batch_size` users, each entry carrying its version.
    Bulk,
    /// One merge update per user with `If-Match`.
    Single,
}

/// Counts for the summary and the safety guards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Definitions to create.
    pub definitions_to_create: usize,
    /// Definitions to reactivate.
    pub definitions_to_reactivate: usize,
    /// Definitions to update.
    pub definitions_to_update: usize,
    /// Agents in `agents.csv`.
    pub agents: usize,
    /// Users with at least one change.
    pub users_changed: usize,
    /// Users already as desired.
    pub users_unchanged: usize,
    /// Agents whose user does not exist in the tenant.
    pub users_skipped: usize,
    /// Assignments added.
    pub assignments_added: usize,
    /// Assignments removed.
    pub assignments_removed: usize,
    /// Assignments whose level changes.
    pub levels_changed: usize,
    /// Assignments turned active.
    pub activated: usize,
    /// Assignments turned inactive.
    pub deactivated: usize,
    /// Assignments to catalog definitions that managed users hold now (the base of a
    /// removal percentage).
    pub owned_assignments_before: usize,
    /// Users who had skills and would have none.
    pub users_left_without_skills: usize,
    /// User writes the plan needs: bulk requests, or single updates.
    pub user_writes: usize,
    /// Tenant users not in `agents.csv` whose owned assignments are removed
    /// (`absent_agents = "strip"`; not counted in `users_changed`).
    pub absent_users: usize,
    /// Owned assignments those users lose (not counted in `assignments_removed`).
    pub absent_assignments_removed: usize,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Definition actions, done first.
    pub definitions: Vec<DefinitionAction>,
    /// Users that change, by employee id.
    pub users: Vec<UserPlan>,
    /// Bulk or single.
    pub write_mode: WriteMode,
    /// Counts.
    pub totals: Totals,
    /// Problems worth reading that do not block the run.
    pub warnings: Vec<Problem>,
    /// The HRIS files the plan was made from (`catalogLine` refers to `sources.catalog`).
    pub sources: SourceFiles,
    /// The catalog resolved against the tenant the plan was made from: the engine binds the
    /// ids of created definitions into it and re-plans a user from it after a conflict.
    #[serde(skip)]
    pub resolution: Resolution,
}

impl Plan {
    /// True when applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty() && self.users.is_empty()
    }
}

/// Who owns a definition id in the tenant, as far as the catalog is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    code: Code,
    kind: Kind,
    name: String,
    locale: Locale,
    canonical: bool,
}

/// The catalog resolved against the tenant: which definition each (code, locale) means, and
/// which tenant ids the catalog owns. The engine keeps it to re-plan a user after a conflict
/// and binds new ids into it once definitions are created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// By code, then locale: looked up once per desired assignment, so without building a key.
    refs: HashMap<Code, HashMap<Locale, DefinitionRef>>,
    /// Looked up for every assignment of every user: a fast hash (seeded per process, so a
    /// tenant's ids cannot be chosen to collide).
    owners: foldhash::HashMap<DefinitionId, Owner>,
    names: BTreeMap<(Code, Locale), (Kind, String)>,
    sees_proficiencies: bool,
}

impl Resolution {
    /// The definition the catalog's variant resolves to.
    pub fn definition(&self, code: &Code, locale: &Locale) -> Option<&DefinitionRef> {
        self.refs.get(code)?.get(locale)
    }

    /// Records the id of a definition the plan created, so that later planning (a re-merge
    /// after a conflict) refers to it.
    pub fn bind(&mut self, code: &Code, locale: &Locale, id: DefinitionId) {
        let key = (code.clone(), locale.clone());
        if let Some((kind, name)) = self.names.get(&key) {
            self.owners.insert(
                id.clone(),
                Owner {
                    code: code.clone(),
                    kind: *kind,
                    name: name.clone(),
                    locale: locale.clone(),
                    canonical: true,
                },
            );
        }
        self.refs
            .entry(key.0)
            .or_default()
            .insert(key.1, DefinitionRef::Existing(id));
    }

    /// True when the catalog owns this tenant definition.
    pub fn owns(&self, id: &DefinitionId) -> bool {
        self.owners.contains_key(id)
    }

    /// Every tenant definition of the catalog's variant: the one it resolves to first, then
    /// any duplicates (same kind, name and locale). Empty when the tenant has none, or the
    /// variant is retired.
    pub fn definitions_of(&self, code: &Code, locale: &Locale) -> Vec<DefinitionId> {
        let Some(DefinitionRef::Existing(canonical)) = self.definition(code, locale) else {
            return Vec::new();
        };
        let mut ids = vec![canonical.clone()];
        let mut duplicates: Vec<DefinitionId> = self
            .owners
            .iter()
            .filter(|(id, o)| &o.code == code && &o.locale == locale && *id != canonical)
            .map(|(id, _)| id.clone())
            .collect();
        duplicates.sort();
        ids.extend(duplicates);
        ids
    }

    /// Plans one user: merges the desired assignments into the live lists, touching only
    /// catalog definitions. `None` when nothing changes.
    pub fn plan_user(
        &self,
        agent: &Agent,
        wanted: &BTreeMap<Code, Wanted>,
        catalog_kinds: &BTreeMap<Code, Kind>,
        live: &UserAssignments,
    ) -> Option<UserPlan> {
        let mut by_kind: [BTreeMap<&Code, (&DefinitionRef, Slot)>; 2] =
            [BTreeMap::new(), BTreeMap::new()];
        for (code, want) in wanted {
            let Some(kind) = catalog_kinds.get(code) else {
                continue;
            };
            let Some(reference) = self.definition(code, &agent.locale) else {
                continue;
            };
            let slot = Slot {
                level: want.level,
                active: want.active,
                tenant_value: None,
            };
            by_kind[kind_index(*kind)].insert(code, (reference, slot));
        }
        let [wanted_skills, wanted_proficiencies] = by_kind;
        let skills = self.plan_list(
            Kind::Skill,
            &agent.locale,
            (&live.skills, &live.unmapped),
            &wanted_skills,
        );
        let proficiencies = match &live.proficiencies {
            Some(list) if self.sees_proficiencies => self.plan_list(
                Kind::Proficiency,
                &agent.locale,
                (list, &BTreeMap::new()),
                &wanted_proficiencies,
            ),
            _ => None,
        };
        if skills.is_none() && proficiencies.is_none() {
            return None;
        }
        let left_without_skills =
            skills.as_ref().is_some_and(|s| s.after.is_empty()) && !live.skills.is_empty();
        Some(UserPlan {
            employee_id: agent.employee_id.clone(),
            user_id: agent.user_id.clone(),
            locale: agent.locale.clone(),
            version: live.version,
            skills,
            proficiencies,
            left_without_skills,
            absent_from_hris: false,
        })
    }

    /// Plans a tenant user who is not in `agents.csv`, for `absent_agents = "strip"`: every
    /// assignment the catalog owns is removed (duplicates and other locales' variants alike:
    /// all count as real removals), everyone else's is carried through. Only the lists the
    /// dialect reads are planned, as for an agent. `None` when the user holds nothing owned.
    pub fn plan_absent_user(&self, live: &UserAssignments) -> Option<UserPlan> {
        let nobody = Agent {
            employee_id: EmployeeId(String::new()),
            user_id: live.user_id.clone(),
            // Undetermined (BCP-47 `und`): with nothing wanted, the locale decides nothing.
            locale: Locale::parse("und").expect("`und` is a locale tag"),
            line: 0,
        };
        let mut user = self.plan_user(&nobody, &BTreeMap::new(), &BTreeMap::new(), live)?;
        for list in [&mut user.skills, &mut user.proficiencies]
            .into_iter()
            .flatten()
        {
            for change in &mut list.changes {
                change.why = Why::NotDesired;
            }
        }
        user.absent_from_hris = true;
        Some(user)
    }

    fn plan_list(
        &self,
        kind: Kind,
        agent_locale: &Locale,
        (live, unmapped): (&[Assignment], &BTreeMap<DefinitionId, u8>),
        wanted: &BTreeMap<&Code, (&DefinitionRef, Slot)>,
    ) -> Option<ListChange> {
        // Most users do not change: the list after is kept borrowed and only made owned when
        // there is a change to carry it.
        let mut after: Vec<(AfterEntry<'_>, Slot)> = Vec::with_capacity(live.len() + wanted.len());
        let mut changes = Vec::new();
        let mut placed: BTreeSet<&Code> = BTreeSet::new();
        for held in live {
            let Some(owner) = self.owners.get(&held.definition).filter(|o| o.kind == kind) else {
                // Someone else's: carried through exactly as it is.
                after.push((
                    AfterEntry::Held(&held.definition),
                    Slot {
                        level: held.level,
                        active: held.active,
                        tenant_value: unmapped.get(&held.definition).copied(),
                    },
                ));
                continue;
            };
            let before = Slot {
                level: held.level,
                active: held.active,
                tenant_value: unmapped.get(&held.definition).copied(),
            };
            let desired_here = wanted.get(&owner.code).filter(
                |(r, _)| matches!(r, DefinitionRef::Existing(id) if *id == held.definition),
            );
            match desired_here {
                Some((reference, slot)) if placed.insert(&owner.code) => {
                    after.push((AfterEntry::Planned(reference), *slot));
                    if before != *slot {
                        changes.push(change(
                            owner,
                            (*reference).clone(),
                            Some(before),
                            Some(*slot),
                            Why::Desired,
                        ));
                    }
                }
                _ => {
                    let why = if !owner.canonical {
                        Why::Duplicate
                    } else if wanted.contains_key(&owner.code) && &owner.locale != agent_locale {
                        Why::WrongLocale
                    } else {
                        Why::NotDesired
                    };
                    let reference = DefinitionRef::Existing(held.definition.clone());
                    changes.push(change(owner, reference, Some(before), None, why));
                }
            }
        }
        for (&code, &(reference, slot)) in wanted {
            if placed.contains(code) {
                continue;
            }
            after.push((AfterEntry::Planned(reference), slot));
            let (name, locale) = self.name_of(code, agent_locale, reference);
            changes.push(AssignmentChange {
                kind,
                code: code.clone(),
                name,
                locale,
                definition: reference.clone(),
                before: None,
                after: Some(slot),
                why: Why::Desired,
            });
        }
        if changes.is_empty() {
            return None;
        }
        let after = after
            .into_iter()
            .map(|(entry, slot)| PlannedAssignment {
                definition: match entry {
                    AfterEntry::Held(id) => DefinitionRef::Existing(id.clone()),
                    AfterEntry::Planned(reference) => reference.clone(),
                },
                level: slot.level,
                active: slot.active,
            })
            .collect();
        Some(ListChange { changes, after })
    }

    fn name_of(&self, code: &Code, locale: &Locale, reference: &DefinitionRef) -> (String, Locale) {
        if let DefinitionRef::Existing(id) = reference
            && let Some(owner) = self.owners.get(id)
        {
            return (owner.name.clone(), owner.locale.clone());
        }
        let name = self
            .names
            .get(&(code.clone(), locale.clone()))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| code.to_string());
        (name, locale.clone())
    }
}

fn change(
    owner: &Owner,
    definition: DefinitionRef,
    before: Option<Slot>,
    after: Option<Slot>,
    why: Why,
) -> AssignmentChange {
    AssignmentChange {
        kind: owner.kind,
        code: owner.code.clone(),
        name: owner.name.clone(),
        locale: owner.locale.clone(),
        definition,
        before,
        after,
        why,
    }
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Skill => 0,
        Kind::Proficiency => 1,
    }
}

/// Resolves the catalog against the tenant: definition actions, the resolution, and problems
/// (a definition to create or rewrite naming a routing profile that does not exist blocks the
/// run before any write; `live.profile_ids` must hold [`Live::profiles_to_check`]).
pub fn resolve(
    desired: &Desired,
    live: &Live,
) -> (Resolution, Vec<DefinitionAction>, Vec<Problem>) {
    let by_name = by_name(&live.definitions);
    let named_profiles = named_profiles(&live.definitions);
    let mut resolution = Resolution {
        sees_proficiencies: live.sees_proficiencies,
        ..Resolution::default()
    };
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    for ((code, locale), entry) in &desired.catalog.entries {
        let key = (code.clone(), locale.clone());
        resolution
            .names
            .insert(key.clone(), (entry.kind, entry.name.clone()));
        if let Some(retired) = retirement_of(desired, entry, &by_name) {
            // Neither owned nor resolved: its assignments are carried through untouched like
            // another integration's, and no agent is given it.
            problems.push(
                Problem::warning(
                    &desired.files.catalog,
                    format!(
                        "{} {} ({locale}) was retired ({}) in run {}: not planned",
                        entry.kind,
                        entry.name,
                        retired.mode.as_str(),
                        retired.run
                    ),
                )
                .at_line(entry.line)
                .hint(format!(
                    "remove it from the catalog, or run `skillsync retire {code} --locale {locale} --undo` to manage it again"
                )),
            );
            continue;
        }
        let work = definition_work(entry, &by_name, live.without_profiles);
        // Only a definition written names its profile to the tenant; one left as it is
        // already names one the tenant has.
        if work.writes()
            && !live.without_profiles
            && !live.profile_ids.contains(&entry.routing_profile_id)
            && !named_profiles.contains(entry.routing_profile_id.as_str())
        {
            problems.push(
                Problem::error(&desired.files.catalog, format!(
                    "routing profile {} of {} {} ({locale}) does not exist in the tenant",
                    entry.routing_profile_id, entry.kind, entry.name
                ))
                .at_line(entry.line)
                .at_field("routing_profile_id", 6)
                .hint("use the id of an existing routing profile (GET /routing/profiles); the tenant refuses definitions without one"),
            );
        }
        let DefinitionWork::Existing {
            candidates,
            canonical,
            fields,
        } = work
        else {
            resolution.refs.entry(key.0).or_default().insert(
                key.1,
                DefinitionRef::New {
                    code: code.clone(),
                    locale: locale.clone(),
                },
            );
            actions.push(DefinitionAction::for_entry(
                DefinitionActionKind::Create,
                entry,
                None,
                Vec::new(),
            ));
            continue;
        };
        for d in &candidates {
            resolution.owners.insert(
                d.id.clone(),
                Owner {
                    code: code.clone(),
                    kind: entry.kind,
                    name: entry.name.clone(),
                    locale: locale.clone(),
                    canonical: d.id == canonical.id,
                },
            );
        }
        if candidates.len() > 1 {
            let others: Vec<&str> = candidates
                .iter()
                .filter(|d| d.id != canonical.id)
                .map(|d| d.id.as_str())
                .collect();
            problems.push(
                Problem::warning("tenant", format!(
                    "{} {} ({locale}) exists {} times; using {} and moving assignments off the duplicates {}",
                    entry.kind,
                    entry.name,
                    candidates.len(),
                    canonical.id,
                    others.join(", ")
                ))
                .hint("the duplicates were made by blind retries of a create; retire them once nothing references them"),
            );
        }
        resolution
            .refs
            .entry(key.0)
            .or_default()
            .insert(key.1, DefinitionRef::Existing(canonical.id.clone()));
        if !fields.is_empty() {
            let action = if canonical.active {
                DefinitionActionKind::Update
            } else {
                DefinitionActionKind::Reactivate
            };
            actions.push(DefinitionAction::for_entry(
                action,
                entry,
                Some(canonical.clone()),
                fields,
            ));
        }
    }
    (resolution, actions, problems)
}

/// The retirement covering a catalog variant: recorded for its (code, locale), or for one of
/// the tenant definitions it resolves to now.
fn retirement_of<'a>(
    desired: &'a Desired,
    entry: &CatalogEntry,
    by_name: &HashMap<(Kind, &str, &Locale), Vec<&Definition>>,
) -> Option<&'a Retired> {
    let candidates = by_name.get(&(entry.kind, entry.name.as_str(), &entry.locale));
    desired.retired.iter().find(|r| {
        (r.code == entry.code && r.locale == entry.locale)
            || candidates.is_some_and(|c| c.iter().any(|d| r.definitions.contains(&d.id)))
    })
}

/// What planning one agent found, before the outcomes are folded in order.
enum AgentOutcome {
    /// The agent's user is not in the tenant.
    Missing,
    /// Planned.
    Planned {
        /// The line of the agent's first proficiency row, for a dialect that cannot carry one.
        first_proficiency: Option<u64>,
        /// The agent's assignments skillsync owns, as the tenant has them.
        owned_before: usize,
        /// The change, if any (boxed: most agents have none).
        user: Option<Box<UserPlan>>,
    },
}

/// Plans the whole run. Errors (with any warnings) when something blocks it.
pub fn plan(desired: &Desired, live: &Live, options: &PlanOptions) -> Result<Plan, Vec<Problem>> {
    let (resolution, definitions, mut problems) = resolve(desired, live);
    let users_by_id: foldhash::HashMap<&UserId, &UserAssignments> =
        live.users.iter().map(|u| (&u.user_id, u)).collect();
    let no_assignments = BTreeMap::new();
    let mut totals = Totals {
        agents: desired.agents.len(),
        ..Totals::default()
    };
    // Each agent is planned on its own, so the agents are planned on every core, and the
    // outcomes folded in file order: the same plan, warnings and first error as one by one.
    let agents: Vec<(&EmployeeId, &Agent)> = desired.agents.iter().collect();
    let outcomes: Vec<AgentOutcome> = agents
        .par_iter()
        .map(|&(employee, agent)| {
            let wanted = desired.assignments.get(employee).unwrap_or(&no_assignments);
            let Some(live_user) = users_by_id.get(&agent.user_id) else {
                return AgentOutcome::Missing;
            };
            let first_proficiency = (!live.sees_proficiencies)
                .then(|| {
                    wanted
                        .iter()
                        .filter(|(c, _)| desired.catalog.kind_of(c) == Some(Kind::Proficiency))
                        .map(|(_, w)| w.line)
                        .min()
                })
                .flatten();
            let owned_before = live_user
                .skills
                .iter()
                .chain(live_user.proficiencies.iter().flatten())
                .filter(|a| resolution.owns(&a.definition))
                .count();
            AgentOutcome::Planned {
                first_proficiency,
                owned_before,
                user: resolution
                    .plan_user(agent, wanted, &desired.catalog.kinds, live_user)
                    .map(Box::new),
            }
        })
        .collect();
    let mut users = Vec::new();
    let mut proficiency_blocked = false;
    for ((employee, agent), outcome) in agents.into_iter().zip(outcomes) {
        let (first_proficiency, owned_before, user) = match outcome {
            AgentOutcome::Missing => {
                totals.users_skipped += 1;
                problems.push(
                    Problem::warning(
                        &desired.files.agents,
                        format!(
                            "user {} of employee {employee} does not exist in the tenant; skipped",
                            agent.user_id
                        ),
                    )
                    .at_line(agent.line)
                    .at_field("user_id", 2)
                    .hint("create the user in the tenant first, or fix the user id"),
                );
                continue;
            }
            AgentOutcome::Planned {
                first_proficiency,
                owned_before,
                user,
            } => (first_proficiency, owned_before, user),
        };
        if let Some(line) = first_proficiency.filter(|_| !proficiency_blocked) {
            proficiency_blocked = true;
            problems.push(
                Problem::error(&desired.files.assignments, "the users dialect cannot see or write proficiency assignments, but the HRIS assigns proficiencies")
                    .at_line(line)
                    .hint("use dialect = \"routing\" in [tenant], or drop proficiency rows from assignments.csv"),
            );
        }
        totals.owned_assignments_before += owned_before;
        match user {
            None => totals.users_unchanged += 1,
            Some(user) => {
                totals.users_changed += 1;
                for c in user.changes() {
                    totals.assignments_added += usize::from(c.is_add());
                    totals.assignments_removed += usize::from(c.is_remove());
                    totals.levels_changed += usize::from(c.changes_level());
                    totals.activated += usize::from(c.activates());
                    totals.deactivated += usize::from(c.deactivates());
                }
                totals.users_left_without_skills += usize::from(user.left_without_skills);
                users.push(*user);
            }
        }
    }
    if problems.iter().any(Problem::is_error) {
        problems.sort();
        return Err(problems);
    }
    if options.absent_agents == AbsentAgents::Strip {
        strip_absent(desired, live, &resolution, &mut users, &mut totals);
    }
    for action in &definitions {
        match action.action {
            DefinitionActionKind::Create => totals.definitions_to_create += 1,
            DefinitionActionKind::Reactivate => totals.definitions_to_reactivate += 1,
            DefinitionActionKind::Update => totals.definitions_to_update += 1,
        }
    }
    // Every user written counts, the absent ones included.
    let users_written = totals.users_changed + totals.absent_users;
    let write_mode = if options.bulk_available && users_written > options.bulk_threshold {
        WriteMode::Bulk
    } else {
        WriteMode::Single
    };
    totals.user_writes = match write_mode {
        WriteMode::Bulk => users_written.div_ceil(options.bulk_batch_size.max(1)),
        WriteMode::Single => users_written,
    };
    Ok(Plan {
        definitions,
        users,
        write_mode,
        totals,
        warnings: problems,
        sources: desired.files.clone(),
        resolution,
    })
}

/// Plans the removal of every owned assignment of the tenant's users who are not in
/// `agents.csv`, after the agents (sorted by user id), and counts them apart. Their owned
/// assignments join the base of the removal percentage: they are managed now.
fn strip_absent(
    desired: &Desired,
    live: &Live,
    resolution: &Resolution,
    users: &mut Vec<UserPlan>,
    totals: &mut Totals,
) {
    let agents: foldhash::HashSet<&UserId> = desired.agents.values().map(|a| &a.user_id).collect();
    let absent: Vec<&UserAssignments> = live
        .users
        .iter()
        .filter(|u| !agents.contains(&u.user_id))
        .collect();
    totals.owned_assignments_before += absent
        .iter()
        .flat_map(|u| u.skills.iter().chain(u.proficiencies.iter().flatten()))
        .filter(|a| resolution.owns(&a.definition))
        .count();
    let mut planned: Vec<UserPlan> = absent
        .par_iter()
        .filter_map(|u| resolution.plan_absent_user(u))
        .collect();
    planned.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    for user in &planned {
        totals.absent_users += 1;
        totals.absent_assignments_removed += user.changes().filter(|c| c.is_remove()).count();
        totals.users_left_without_skills += usize::from(user.left_without_skills);
    }
    users.extend(planned);
}
