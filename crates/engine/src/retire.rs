//! Retiring a catalog code (decommissioning, SPEC 1.2): the tenant refuses to delete a
//! definition while any user or routing profile references it (409 REFERENCED), so a hard
//! retirement finds every reference (`?skillId=` / `?proficiencyId=`), strips it with
//! merge-safe writes that touch nothing else, and only then deletes; a 409 on delete means
//! someone referenced it again meanwhile, so the references are found and stripped again, a
//! bounded number of rounds. The default retirement strips the same references and then marks
//! the definition inactive instead of deleting it (the source document's soft delete: kept for
//! reporting history, out of every routing evaluation); `--soft` only marks it inactive and
//! keeps the assignments. A proficiency's references include the routing strategies whose
//! conditions name it (routing dialect only; the users dialect has none).
//!
//! The decisions (which variants a code means, what each stripped list is, whether the run
//! may start, what to report) are pure functions; [`prepare`] reads, [`retire`] writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use futures::TryStreamExt;
use skillsync_core::{
    Assignment, CatalogEntry, Code, Definition, DefinitionId, Desired, Kind, Live, Locale, Problem,
    RetiredMode, UserAssignments, UserId,
};
use skillsync_cxone::{DefinitionQuery, Error, Profile, Strategy, TenantApi, UserQuery, UserWrite};
use skillsync_store::{Snapshot, WriteStatus, WriteTarget};

use crate::entries;
use crate::write::{
    Entry, FailureKind, Job, JournalRun, Policy, Rewrite, Rewritten, StopReason, UserOutcome,
    WriteOptions, Writer, classify,
};

/// What a retirement does to each definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireAction {
    /// Strip every reference (users, routing profiles, routing strategies), then mark the
    /// definition `active:false`: kept for reporting, no longer assigned anywhere. The default.
    Deactivate,
    /// Strip every reference, then delete the definition (`--delete`).
    Delete,
    /// Only mark the definition `active:false`; its assignments and references are kept for
    /// reporting (`--soft`).
    KeepReferences,
}

impl RetireAction {
    /// How the journal records it: `Soft` while the definition is kept (inactive), `Hard` once
    /// it is deleted.
    pub fn journaled(self) -> RetiredMode {
        match self {
            RetireAction::Deactivate | RetireAction::KeepReferences => RetiredMode::Soft,
            RetireAction::Delete => RetiredMode::Hard,
        }
    }

    /// Whether the references are stripped first.
    pub fn strips(self) -> bool {
        self != RetireAction::KeepReferences
    }

    /// `deactivate`, `hard` or `soft`: the `mode` of `retire --output json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetireAction::Deactivate => "deactivate",
            RetireAction::Delete => "hard",
            RetireAction::KeepReferences => "soft",
        }
    }
}

/// The journal's two modes, as actions: soft keeps the references, hard deletes.
impl From<RetiredMode> for RetireAction {
    fn from(mode: RetiredMode) -> Self {
        match mode {
            RetiredMode::Soft => RetireAction::KeepReferences,
            RetiredMode::Hard => RetireAction::Delete,
        }
    }
}

/// How the retirement writes.
#[derive(Debug, Clone)]
pub struct RetireOptions {
    /// Users per bulk request.
    pub bulk_batch_size: usize,
    /// Requests in flight at once (the client's cap still applies).
    pub concurrency: usize,
    /// Re-read and re-merge attempts per user or profile after conflicts.
    pub conflict_retries: u32,
    /// Delete attempts per definition; each refused one (409 REFERENCED) finds and strips the
    /// references again first.
    pub delete_rounds: u32,
    /// Whether a user may be left with no skills (out of every queue).
    pub allow_empty_skills: bool,
    /// How long a skill change takes to reach the routing cache (for settles-at).
    pub propagation_window: std::time::Duration,
    /// `[sync] window`: outside it nothing is read or written (like `apply`), and writes stop
    /// being scheduled when it closes; `None` (no window, or `--now`) writes at any time.
    pub window: Option<crate::SyncWindow>,
}

impl Default for RetireOptions {
    fn default() -> Self {
        RetireOptions {
            bulk_batch_size: 100,
            concurrency: 4,
            conflict_retries: 5,
            delete_rounds: 3,
            allow_empty_skills: false,
            propagation_window: std::time::Duration::from_secs(30),
            window: None,
        }
    }
}

/// One tenant definition to retire, with what referenced it when it was read.
#[derive(Debug, Clone)]
pub struct Target {
    /// The definition as read.
    pub definition: Definition,
    /// Users holding it.
    pub users: Vec<UserAssignments>,
    /// Routing profiles listing it.
    pub profiles: Vec<Profile>,
    /// Routing strategies whose conditions name it (proficiencies, routing dialect).
    pub strategies: Vec<Strategy>,
}

/// What a retirement will do, read from the tenant and not yet written.
#[derive(Debug, Clone)]
pub struct RetirePlan {
    /// Deactivate, delete, or deactivate keeping the references.
    pub mode: RetireAction,
    /// The HRIS code.
    pub code: Code,
    /// Skill or proficiency (the same for every variant of a code).
    pub kind: Kind,
    /// The catalog rows retired, one per locale.
    pub variants: Vec<CatalogEntry>,
    /// Every tenant definition of those variants (duplicates included), in catalog order.
    pub targets: Vec<Target>,
}

impl RetirePlan {
    /// The ids of every definition retired.
    pub fn definition_ids(&self) -> BTreeSet<DefinitionId> {
        self.targets
            .iter()
            .map(|t| t.definition.id.clone())
            .collect()
    }

    /// The tenant definitions of one catalog variant.
    pub fn definitions_of(&self, locale: &Locale) -> Vec<DefinitionId> {
        self.targets
            .iter()
            .filter(|t| &t.definition.locale == locale)
            .map(|t| t.definition.id.clone())
            .collect()
    }

    /// Each referencing user once, however many of the definitions they hold.
    pub fn users(&self) -> Vec<&UserAssignments> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .flat_map(|t| &t.users)
            .filter(|u| seen.insert(&u.user_id))
            .collect()
    }

    /// Each referencing profile once.
    pub fn profiles(&self) -> Vec<&Profile> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .flat_map(|t| &t.profiles)
            .filter(|p| seen.insert(&p.id))
            .collect()
    }

    /// Each referencing routing strategy once.
    pub fn strategies(&self) -> Vec<&Strategy> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .flat_map(|t| &t.strategies)
            .filter(|s| seen.insert(&s.id))
            .collect()
    }
}

/// The catalog rows `code` (and `locale`, if given) name. An unknown code or locale is an
/// error naming the catalog file, before anything is read from the tenant.
pub fn catalog_variants<'a>(
    desired: &'a Desired,
    code: &str,
    locale: Option<&str>,
) -> Result<Vec<&'a CatalogEntry>, Box<Problem>> {
    let catalog = &desired.files.catalog;
    let code = Code::from(code);
    let all: Vec<&CatalogEntry> = desired
        .catalog
        .entries
        .values()
        .filter(|e| e.code == code)
        .collect();
    if all.is_empty() {
        let similar: Vec<&str> = desired
            .catalog
            .kinds
            .keys()
            .map(Code::as_str)
            .filter(|c| c.eq_ignore_ascii_case(code.as_str()))
            .collect();
        let hint = match similar.first() {
            Some(c) => format!("codes are case-sensitive: did you mean {c}?"),
            None => "retire takes a code from the first column of the catalog".to_string(),
        };
        return Err(Box::new(
            Problem::error(
                catalog,
                format!("no code {code} in the catalog; nothing changed"),
            )
            .hint(hint),
        ));
    }
    let Some(tag) = locale else {
        return Ok(all);
    };
    let listed = all
        .iter()
        .map(|e| e.locale.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let wanted = Locale::parse(tag).map_err(|e| {
        Box::new(Problem::error(
            catalog,
            format!("--locale {tag}: {e}; nothing changed"),
        ))
    })?;
    let found: Vec<&CatalogEntry> = all.into_iter().filter(|e| e.locale == wanted).collect();
    if found.is_empty() {
        return Err(Box::new(
            Problem::error(
                catalog,
                format!("code {code} has no {wanted} variant in the catalog; nothing changed"),
            )
            .hint(format!("its variants are in: {listed}")),
        ));
    }
    Ok(found)
}

/// The user's list of `kind` without the retired definitions; `None` when they hold none.
/// Every other entry stays exactly as it was, in order, and the other list is not sent.
pub fn strip_user(
    user: &UserAssignments,
    kind: Kind,
    retired: &BTreeSet<DefinitionId>,
) -> Option<UserWrite> {
    let list: &[Assignment] = match kind {
        Kind::Skill => &user.skills,
        Kind::Proficiency => user.proficiencies.as_deref().unwrap_or_default(),
    };
    if !list.iter().any(|a| retired.contains(&a.definition)) {
        return None;
    }
    let kept: Vec<Assignment> = list
        .iter()
        .filter(|a| !retired.contains(&a.definition))
        .cloned()
        .collect();
    Some(UserWrite {
        user_id: user.user_id.clone(),
        version: user.version,
        skills: (kind == Kind::Skill).then(|| kept.clone()),
        proficiencies: (kind == Kind::Proficiency).then_some(kept),
        as_read: Some(user.clone()),
    })
}

/// True when stripping would take the user's last skill: an empty skills list drops them
/// out of every queue.
pub fn empties_skills(write: &UserWrite) -> bool {
    write.skills.as_ref().is_some_and(Vec::is_empty)
}

/// The profile without the retired definitions; `None` when it lists none.
pub fn strip_profile(
    profile: &Profile,
    kind: Kind,
    retired: &BTreeSet<DefinitionId>,
) -> Option<Profile> {
    let list = match kind {
        Kind::Skill => &profile.skills,
        Kind::Proficiency => &profile.proficiencies,
    };
    if !list.iter().any(|id| retired.contains(id)) {
        return None;
    }
    let mut stripped = profile.clone();
    let list = match kind {
        Kind::Skill => &mut stripped.skills,
        Kind::Proficiency => &mut stripped.proficiencies,
    };
    list.retain(|id| !retired.contains(id));
    Some(stripped)
}

/// The strategy without the retired proficiencies; `None` when it names none.
pub fn strip_strategy(strategy: &Strategy, retired: &BTreeSet<DefinitionId>) -> Option<Strategy> {
    if !strategy.proficiencies.iter().any(|id| retired.contains(id)) {
        return None;
    }
    let mut stripped = strategy.clone();
    stripped.proficiencies.retain(|id| !retired.contains(id));
    Some(stripped)
}

/// Why a retirement was refused before its first write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetireRefusal {
    /// Stripping would leave agents with no skills.
    #[error(
        "refusing to retire: {count} user(s) hold no other skill and would drop out of every queue (first: {first}); \
         give them another skill first, or pass --allow-empty-skills if that is intended"
    )]
    EmptySkills {
        /// How many.
        count: usize,
        /// The first few, as employee ids where the HRIS knows them.
        first: String,
    },
    /// The dialect cannot write the assignments that must be stripped.
    #[error(
        "refusing to retire: {users} user(s) hold the proficiency, and the users dialect cannot write proficiency assignments; \
         use dialect = \"routing\" in [tenant], or retire it with --soft"
    )]
    ProficienciesUnwritable {
        /// Users holding it.
        users: usize,
    },
}

/// Checks the plan before any write: no user loses their last skill unless allowed, and the
/// dialect can write what must be stripped.
pub fn check(
    plan: &RetirePlan,
    desired: &Desired,
    writes_proficiencies: bool,
    allow_empty_skills: bool,
) -> Result<(), RetireRefusal> {
    if !plan.mode.strips() {
        return Ok(());
    }
    let users = plan.users();
    if plan.kind == Kind::Proficiency && !writes_proficiencies && !users.is_empty() {
        return Err(RetireRefusal::ProficienciesUnwritable { users: users.len() });
    }
    let retired = plan.definition_ids();
    let emptied: Vec<&UserAssignments> = users
        .into_iter()
        .filter(|u| strip_user(u, plan.kind, &retired).is_some_and(|w| empties_skills(&w)))
        .collect();
    if emptied.is_empty() || allow_empty_skills {
        return Ok(());
    }
    let names = employee_names(desired);
    Err(RetireRefusal::EmptySkills {
        count: emptied.len(),
        first: emptied
            .iter()
            .take(5)
            .map(|u| name_of(&names, &u.user_id))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// What the plan shows for one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSummary {
    /// The definition.
    pub id: DefinitionId,
    /// Its name.
    pub name: String,
    /// Its locale.
    pub locale: Locale,
    /// Whether it is active now.
    pub active: bool,
    /// True when it is a duplicate of the variant's definition (same name and locale).
    pub duplicate: bool,
    /// Users holding it.
    pub users: usize,
    /// A few of them, as employee ids where the HRIS knows them, else user ids.
    pub example_users: Vec<String>,
    /// Names of the routing profiles listing it.
    pub profiles: Vec<String>,
    /// Names of the routing strategies naming it.
    pub strategies: Vec<String>,
}

/// How many example users a summary names.
const EXAMPLES: usize = 3;

/// One line of facts per definition, for the plan the operator confirms.
pub fn summarize(plan: &RetirePlan, desired: &Desired) -> Vec<TargetSummary> {
    let names = employee_names(desired);
    let mut seen_locales = BTreeSet::new();
    plan.targets
        .iter()
        .map(|t| TargetSummary {
            id: t.definition.id.clone(),
            name: t.definition.name.clone(),
            locale: t.definition.locale.clone(),
            active: t.definition.active,
            duplicate: !seen_locales.insert(t.definition.locale.clone()),
            users: t.users.len(),
            example_users: t
                .users
                .iter()
                .take(EXAMPLES)
                .map(|u| name_of(&names, &u.user_id))
                .collect(),
            profiles: t.profiles.iter().map(|p| p.name.clone()).collect(),
            strategies: t.strategies.iter().map(|s| s.name.clone()).collect(),
        })
        .collect()
}

fn employee_names(desired: &Desired) -> BTreeMap<&UserId, &str> {
    desired
        .agents
        .values()
        .map(|a| (&a.user_id, a.employee_id.as_str()))
        .collect()
}

fn name_of(names: &BTreeMap<&UserId, &str>, user: &UserId) -> String {
    names
        .get(user)
        .map_or_else(|| user.to_string(), |e| (*e).to_string())
}

/// Reads what retiring `variants` involves: their tenant definitions (resolved the way every
/// plan resolves them, duplicates included) and, per definition, the users, profiles and
/// routing strategies that reference it. Writes nothing.
pub async fn prepare(
    api: &dyn TenantApi,
    desired: &Desired,
    variants: &[&CatalogEntry],
    mode: impl Into<RetireAction>,
) -> skillsync_cxone::Result<RetirePlan> {
    let mode = mode.into();
    let first = variants.first().ok_or(Error::Unsupported {
        dialect: "any",
        operation: "retiring no catalog variant",
    })?;
    let kind = first.kind;
    let mut definitions: Vec<Definition> = api
        .definitions(kind, DefinitionQuery::default())
        .try_collect()
        .await?;
    let capabilities = api.capabilities();
    if capabilities.locale_in_name {
        skillsync_core::locate_by_name(&mut definitions, &desired.catalog);
    }
    let live = Live {
        definitions,
        sees_proficiencies: capabilities.proficiencies,
        without_profiles: !capabilities.profiles,
        ..Live::default()
    };
    // Resolved against the catalog alone: earlier retirements are left out on purpose, so
    // that retiring again (soft, then hard) still finds the definitions.
    let catalog_only = Desired {
        files: desired.files.clone(),
        catalog: desired.catalog.clone(),
        ..Desired::default()
    };
    let (resolution, _, _) = skillsync_core::resolve(&catalog_only, &live);
    let by_id: BTreeMap<&DefinitionId, &Definition> =
        live.definitions.iter().map(|d| (&d.id, d)).collect();
    let mut targets = Vec::new();
    for variant in variants {
        for id in resolution.definitions_of(&variant.code, &variant.locale) {
            if let Some(definition) = by_id.get(&id) {
                let (users, profiles, strategies) = references(api, kind, &id).await?;
                targets.push(Target {
                    definition: (*definition).clone(),
                    users,
                    profiles,
                    strategies,
                });
            }
        }
    }
    Ok(RetirePlan {
        mode,
        code: first.code.clone(),
        kind,
        variants: variants.iter().map(|v| (*v).clone()).collect(),
        targets,
    })
}

/// What references one definition: users, routing profiles and (a proficiency, in a dialect
/// that has them) routing strategies.
type References = (Vec<UserAssignments>, Vec<Profile>, Vec<Strategy>);

/// The users, profiles and strategies referencing one definition, read concurrently.
async fn references(
    api: &dyn TenantApi,
    kind: Kind,
    id: &DefinitionId,
) -> skillsync_cxone::Result<References> {
    let query = match kind {
        Kind::Skill => UserQuery {
            skill_id: Some(id.clone()),
            ..UserQuery::default()
        },
        Kind::Proficiency => UserQuery {
            proficiency_id: Some(id.clone()),
            ..UserQuery::default()
        },
    };
    let strategies = async {
        if kind == Kind::Proficiency && api.capabilities().strategies {
            api.strategies(Some(id.clone()))
                .try_collect::<Vec<_>>()
                .await
        } else {
            Ok(Vec::new())
        }
    };
    tokio::try_join!(
        api.users(query).try_collect::<Vec<_>>(),
        api.profiles(Some((kind, id.clone())))
            .try_collect::<Vec<_>>(),
        strategies,
    )
}

/// Why a user is not written: stripping would take their last skill.
const EMPTIES_SKILLS: &str = "holds no other skill: stripping would drop them out of every queue; \
     not written (give them another skill first, or pass --allow-empty-skills if intended)";

/// The journal's detail for a write whose answer was lost but which a re-read shows landed.
const LANDED: &str = "its answer was lost, and a re-read shows the change in place";

/// A phase of the retirement, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetirePhase {
    /// Stripping users' assignments.
    Users,
    /// Re-reading and re-merging users after conflicts or unknown outcomes.
    Conflicts,
    /// Stripping routing profiles.
    Profiles,
    /// Stripping routing strategies.
    Strategies,
    /// Deleting (hard) or deactivating (soft) the definitions.
    Definitions,
}

/// Progress callback: phase, done, total.
pub type RetireProgress<'a> = &'a (dyn Fn(RetirePhase, usize, usize) + Sync);

/// Why a retirement did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RetireFailure {
    /// Deletes kept meeting references.
    #[error(
        "{kind} {name} ({locale}) {id} is still referenced by {} after {rounds} rounds of stripping and deleting: something keeps \
         assigning it (another integration, a person in the admin console), or the dialect cannot see what \
         references it (the users dialect has no routing strategies); stop that, then run retire again",
        skillsync_cxone::referenced_by(*.users, *.profiles, *.strategies)
    )]
    StillReferenced {
        /// Skill or proficiency.
        kind: Kind,
        /// Name.
        name: String,
        /// Locale.
        locale: Locale,
        /// Id.
        id: DefinitionId,
        /// Users referencing it at the last refusal.
        users: u64,
        /// Profiles referencing it at the last refusal.
        profiles: u64,
        /// Routing strategies referencing it at the last refusal.
        strategies: u64,
        /// Delete attempts made.
        rounds: u32,
    },
    /// Some users could not be stripped, so the definitions were not deleted.
    #[error(
        "{count} user(s) could not be stripped (first: {first}); the definitions were kept. Fix that, then run retire again: \
         it starts from what still references them"
    )]
    UsersFailed {
        /// How many.
        count: usize,
        /// The first few, with the reason.
        first: String,
    },
    /// A profile could not be stripped.
    #[error("routing profile {name} ({id}) could not be stripped")]
    ProfileFailed {
        /// Profile id.
        id: String,
        /// Profile name.
        name: String,
        /// The client's error.
        #[source]
        source: Box<Error>,
    },
    /// A routing strategy could not be stripped.
    #[error("routing strategy {name} ({id}) could not be stripped")]
    StrategyFailed {
        /// Strategy id.
        id: String,
        /// Strategy name.
        name: String,
        /// The client's error.
        #[source]
        source: Box<Error>,
    },
    /// A routing strategy kept changing under every re-read.
    #[error("routing strategy {name} ({id}) kept changing under us; run retire again")]
    StrategyKeptChanging {
        /// Strategy id.
        id: String,
        /// Strategy name.
        name: String,
    },
    /// A profile kept changing under every re-read.
    #[error("routing profile {name} ({id}) kept changing under us; run retire again")]
    ProfileKeptChanging {
        /// Profile id.
        id: String,
        /// Profile name.
        name: String,
    },
    /// The tenant refused or failed a step.
    #[error("{action} failed")]
    Tenant {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: Box<Error>,
    },
    /// The write path stopped (journal, interruption, a tenant that refuses everything).
    #[error("{0}")]
    Stopped(StopReason),
}

/// What happened.
#[derive(Debug, Default)]
pub struct RetireReport {
    /// Every user this run meant to strip, and how it ended.
    pub users: BTreeMap<UserId, UserOutcome>,
    /// Users whose references were stripped.
    pub users_stripped: usize,
    /// Users found to hold none any more when re-read (or gone from the tenant).
    pub users_already_clear: usize,
    /// Users that could not be stripped, with the reason.
    pub users_failed: Vec<(UserId, String)>,
    /// Users never written because the run stopped, with why.
    pub users_not_attempted: Vec<(UserId, String)>,
    /// Conflicts met and re-merged.
    pub conflicts: usize,
    /// Profiles whose references were stripped.
    pub profiles_stripped: usize,
    /// Routing strategies whose references were stripped.
    pub strategies_stripped: usize,
    /// Definitions deleted (`--delete`).
    pub definitions_deleted: usize,
    /// Definitions made inactive (the default, and `--soft`).
    pub definitions_deactivated: usize,
    /// Deletes refused with 409 REFERENCED, each followed by finding and stripping again.
    pub deletes_refused: usize,
    /// Why it stopped, if it did not finish.
    pub failure: Option<RetireFailure>,
    /// The journal's run, when the engine journaled it.
    pub run: Option<skillsync_store::RunId>,
    /// Elapsed time.
    pub elapsed: std::time::Duration,
}

/// The caller's say in a retirement: the plan shown, the confirmation, progress, a stop signal.
pub struct RetireHooks<'a> {
    /// Called with the plan once the tenant is read (the CLI prints it).
    pub planned: &'a (dyn Fn(&RetirePlan) + Sync),
    /// Asked before the first write; `None` proceeds.
    pub confirm: Option<&'a (dyn Fn(&RetirePlan) -> bool + Sync)>,
    /// Called as writes progress.
    pub progress: RetireProgress<'a>,
    /// Raised by a signal: writes in flight finish, no new one starts.
    pub interrupt: Option<&'a crate::Interrupt>,
}

/// How a retirement ended.
#[derive(Debug)]
pub enum RetireOutcome {
    /// Outside `[sync] window` (and no `--now`): nothing was read or written.
    OutsideWindow(String),
    /// Refused before the first write.
    Refused(RetireRefusal),
    /// The confirmation was declined.
    Declined,
    /// Carried out (fully or not: see the report).
    Retired(Box<RetireReport>),
}

/// The front door of `skillsync retire`: outside `[sync] window` refuses before reading
/// anything; else reads what references the variants, shows the plan, checks it, asks, checks
/// the window again, then retires as its own journaled run. The plan is `None` only when the
/// window refused.
#[allow(clippy::too_many_arguments)] // each is one of the command's inputs; a struct would only rename them
pub async fn run(
    api: &dyn TenantApi,
    journal: &dyn skillsync_store::Journal,
    label: &crate::RunLabel,
    desired: &Desired,
    variants: &[&CatalogEntry],
    mode: RetireAction,
    options: RetireOptions,
    hooks: &RetireHooks<'_>,
) -> Result<(Option<RetirePlan>, RetireOutcome), crate::Error> {
    // Checked before the lease and the read, as `apply` does.
    if let Some(why) = outside(&options) {
        return Ok((None, RetireOutcome::OutsideWindow(why)));
    }
    // Taken before the read: what references the code is read with no other skillsync writing.
    crate::lease::holding(journal, label, hooks.interrupt, async |lease| {
        run_under(
            api,
            journal,
            (label, lease),
            desired,
            variants,
            mode,
            options,
            hooks,
        )
        .await
    })
    .await
}

/// [`run`] once the lease (if any) is held.
#[allow(clippy::too_many_arguments)]
async fn run_under(
    api: &dyn TenantApi,
    journal: &dyn skillsync_store::Journal,
    (label, lease): (&crate::RunLabel, Option<&crate::lease::HeldLease<'_>>),
    desired: &Desired,
    variants: &[&CatalogEntry],
    mode: RetireAction,
    options: RetireOptions,
    hooks: &RetireHooks<'_>,
) -> Result<(Option<RetirePlan>, RetireOutcome), crate::Error> {
    let plan = prepare(api, desired, variants, mode)
        .await
        .map_err(|e| crate::Error::ReadTenant(Box::new(e)))?;
    (hooks.planned)(&plan);
    if let Err(refusal) = check(
        &plan,
        desired,
        api.capabilities().proficiencies,
        options.allow_empty_skills,
    ) {
        return Ok((Some(plan), RetireOutcome::Refused(refusal)));
    }
    if let Some(confirm) = hooks.confirm
        && !confirm(&plan)
    {
        return Ok((Some(plan), RetireOutcome::Declined));
    }
    // Asked again: the window may have closed while the tenant was read or the prompt waited.
    if let Some(why) = outside(&options) {
        return Ok((Some(plan), RetireOutcome::OutsideWindow(why)));
    }
    let report = retire_under(
        api,
        journal,
        (label, lease),
        &plan,
        options,
        hooks.interrupt,
        hooks.progress,
    )
    .await?;
    Ok((Some(plan), RetireOutcome::Retired(Box::new(report))))
}

fn outside(options: &RetireOptions) -> Option<String> {
    options
        .window
        .as_ref()?
        .refusal_to("retire", jiff::Timestamp::now())
}

/// Retires as its own journaled run: the run is started, the retirement recorded before the
/// first write (so an apply starting meanwhile, or after a failure half-way, already leaves
/// the code alone), the plan carried out, and the run finished with its counts.
pub async fn retire_journaled(
    api: &dyn TenantApi,
    journal: &dyn skillsync_store::Journal,
    label: &crate::RunLabel,
    plan: &RetirePlan,
    options: RetireOptions,
    interrupt: Option<&crate::Interrupt>,
    progress: RetireProgress<'_>,
) -> Result<RetireReport, crate::Error> {
    crate::lease::holding(journal, label, interrupt, async |lease| {
        retire_under(
            api,
            journal,
            (label, lease),
            plan,
            options,
            interrupt,
            progress,
        )
        .await
    })
    .await
}

/// [`retire_journaled`] under a lease already taken (or none).
async fn retire_under(
    api: &dyn TenantApi,
    journal: &dyn skillsync_store::Journal,
    (label, lease): (&crate::RunLabel, Option<&crate::lease::HeldLease<'_>>),
    plan: &RetirePlan,
    options: RetireOptions,
    interrupt: Option<&crate::Interrupt>,
    progress: RetireProgress<'_>,
) -> Result<RetireReport, crate::Error> {
    crate::lease::start_writing(interrupt).await;
    let run = crate::lease::begin_run(journal, label, lease).await?;
    let now = jiff::Timestamp::now();
    let mut recorded: Result<(), skillsync_store::StoreError> = Ok(());
    for variant in &plan.variants {
        recorded = journal
            .record_retirement(&skillsync_store::Retirement {
                code: variant.code.to_string(),
                locale: variant.locale.to_string(),
                kind: variant.kind.noun().to_string(),
                name: variant.name.clone(),
                mode: match plan.mode.journaled() {
                    RetiredMode::Soft => skillsync_store::RetirementMode::Soft,
                    RetiredMode::Hard => skillsync_store::RetirementMode::Hard,
                },
                definition_ids: plan
                    .definitions_of(&variant.locale)
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                run,
                retired_at: now,
            })
            .await;
        if recorded.is_err() {
            break;
        }
    }
    if let Err(error) = recorded {
        let counts = skillsync_store::RunCounts {
            stopped: Some(crate::explain(&error)),
            ..skillsync_store::RunCounts::default()
        };
        let _ = journal
            .finish_run(
                run,
                skillsync_store::RunOutcome::Failed,
                &counts,
                jiff::Timestamp::now(),
            )
            .await;
        return Err(crate::Error::Journal(error));
    }
    let requests_before = api.counters().total_requests();
    let mut report = retire_with(
        api,
        plan,
        options.clone(),
        Some(JournalRun { journal, run }),
        (interrupt, lease),
        progress,
    )
    .await;
    report.run = Some(run);
    let n = |count: usize| count as u64;
    let counts = skillsync_store::RunCounts {
        definitions_deleted: n(report.definitions_deleted),
        definitions_deactivated: n(report.definitions_deactivated),
        users_planned: n(report.users.len()),
        users_updated: n(report.users_stripped),
        users_already_current: n(report.users_already_clear),
        users_failed: n(report.users_failed.len()),
        users_not_attempted: n(report.users_not_attempted.len()),
        profiles_updated: n(report.profiles_stripped + report.strategies_stripped),
        conflicts: n(report.conflicts),
        requests: api.counters().total_requests() - requests_before,
        stopped: report.failure.as_ref().map(|f| crate::explain(f)),
        ..skillsync_store::RunCounts::default()
    };
    let outcome = match &report.failure {
        None => skillsync_store::RunOutcome::Succeeded,
        Some(RetireFailure::Stopped(StopReason::Interrupted)) => {
            skillsync_store::RunOutcome::Interrupted
        }
        Some(_) => skillsync_store::RunOutcome::Failed,
    };
    journal
        .finish_run(run, outcome, &counts, jiff::Timestamp::now())
        .await
        .map_err(crate::Error::Journal)?;
    Ok(report)
}

/// Carries out the plan: strips users (bulk, version-guarded), then profiles and routing
/// strategies (`If-Match`), then deactivates each definition (the default) or deletes it,
/// rediscovering on 409; `--soft` only deactivates. Every write is journaled as it completes.
pub async fn retire(
    api: &dyn TenantApi,
    plan: &RetirePlan,
    options: RetireOptions,
    journal: Option<JournalRun<'_>>,
    progress: RetireProgress<'_>,
) -> RetireReport {
    retire_with(api, plan, options, journal, (None, None), progress).await
}

async fn retire_with(
    api: &dyn TenantApi,
    plan: &RetirePlan,
    options: RetireOptions,
    journal: Option<JournalRun<'_>>,
    (interrupt, lease): (
        Option<&crate::Interrupt>,
        Option<&crate::lease::HeldLease<'_>>,
    ),
    progress: RetireProgress<'_>,
) -> RetireReport {
    let started = Instant::now();
    let write_options = WriteOptions {
        bulk_batch_size: options.bulk_batch_size,
        concurrency: options.concurrency,
        conflict_retries: options.conflict_retries,
        propagation_window: options.propagation_window,
        // A retirement stops on the first failure that blocks its deletes, not on a share.
        max_failures: usize::MAX,
        write_until: options
            .window
            .as_ref()
            .and_then(|w| w.closes(jiff::Timestamp::now())),
        ..WriteOptions::default()
    };
    let run = Retirer {
        api,
        kind: plan.kind,
        strip: Strip {
            kind: plan.kind,
            retired: plan.definition_ids(),
            allow_empty_skills: options.allow_empty_skills,
        },
        options,
        writer: Writer::new(api, journal, write_options, interrupt, lease),
        handed: Mutex::new(BTreeSet::new()),
        conflicts: Mutex::new(0),
    };
    let mut report = RetireReport::default();
    let outcome = match plan.mode {
        RetireAction::KeepReferences => run.deactivate_all(plan, &mut report, progress).await,
        RetireAction::Deactivate => run.strip_then_deactivate(plan, &mut report, progress).await,
        RetireAction::Delete => run.delete_all(plan, &mut report, progress).await,
    };
    report.failure = outcome
        .err()
        .or_else(|| run.writer.stopped().map(RetireFailure::Stopped));
    let handed = std::mem::take(&mut *run.handed.lock().expect("not poisoned"));
    let other_conflicts = *run.conflicts.lock().expect("not poisoned");
    let written = run.writer.finish(handed);
    for (user, outcome) in &written.users {
        match outcome {
            UserOutcome::Updated => report.users_stripped += 1,
            UserOutcome::AlreadyCurrent
            | UserOutcome::Failed {
                kind: FailureKind::Gone,
                ..
            } => report.users_already_clear += 1,
            UserOutcome::Failed { reason, .. } => {
                report.users_failed.push((user.clone(), reason.clone()));
            }
            UserOutcome::NotAttempted(why) => {
                report
                    .users_not_attempted
                    .push((user.clone(), why.to_string()));
            }
        }
    }
    report.conflicts = written.conflicts + other_conflicts;
    report.users = written.users;
    report.elapsed = started.elapsed();
    report
}

/// The rewrite of a retirement: the user without the retired definitions.
struct Strip {
    kind: Kind,
    retired: BTreeSet<DefinitionId>,
    allow_empty_skills: bool,
}

impl Rewrite for Strip {
    fn rewrite(&self, live: &UserAssignments) -> Rewritten {
        match strip_user(live, self.kind, &self.retired) {
            None => Rewritten::Current,
            // Users found again after a refused delete (or listed by a caller) are screened
            // here too, before anything is sent.
            Some(write) if empties_skills(&write) && !self.allow_empty_skills => {
                Rewritten::Refused(EMPTIES_SKILLS.into())
            }
            Some(write) => Rewritten::Write(write),
        }
    }
}

struct Retirer<'a> {
    api: &'a dyn TenantApi,
    kind: Kind,
    options: RetireOptions,
    writer: Writer<'a>,
    strip: Strip,
    /// Every user handed to the write path, across delete rounds.
    handed: Mutex<BTreeSet<UserId>>,
    /// Conflicts on definitions and profiles (the writer counts the users').
    conflicts: Mutex<usize>,
}

impl Retirer<'_> {
    async fn stopped(&self) -> Result<(), RetireFailure> {
        match self.writer.should_stop().await {
            Some(why) => Err(RetireFailure::Stopped(why)),
            None => Ok(()),
        }
    }

    fn conflict(&self) {
        *self.conflicts.lock().expect("not poisoned") += 1;
    }

    async fn record(
        &self,
        target: WriteTarget,
        subject: String,
        (before, after): (Snapshot, Snapshot),
        status: WriteStatus,
        detail: Option<String>,
    ) {
        self.writer
            .record(vec![Entry {
                target,
                subject,
                before,
                after,
                status,
                detail,
                // Only skills route: a skill definition turned inactive or deleted settles.
                routes: target == WriteTarget::Definition && self.kind == Kind::Skill,
            }])
            .await;
    }

    /// Strips every reference as a delete would (users, profiles, strategies), then marks
    /// each definition inactive: the soft delete of the source document, with nothing left
    /// assigned. A user who could not be stripped stops it before any definition is touched.
    async fn strip_then_deactivate(
        &self,
        plan: &RetirePlan,
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let users: Vec<UserAssignments> = plan.users().into_iter().cloned().collect();
        let profiles: Vec<Profile> = plan.profiles().into_iter().cloned().collect();
        let strategies: Vec<Strategy> = plan.strategies().into_iter().cloned().collect();
        self.strip_references(&users, &profiles, &strategies, report, progress)
            .await?;
        self.deactivate_all(plan, report, progress).await
    }

    async fn deactivate_all(
        &self,
        plan: &RetirePlan,
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let total = plan.targets.len();
        for (done, target) in plan.targets.iter().enumerate() {
            progress(RetirePhase::Definitions, done, total);
            self.stopped().await?;
            if self.deactivate(&target.definition).await? {
                report.definitions_deactivated += 1;
            }
        }
        progress(RetirePhase::Definitions, total, total);
        Ok(())
    }

    /// PUT with `active:false` and `If-Match`; on a conflict or an unknown outcome, takes the
    /// fresh version and keeps every other field as the tenant has it. False when it was
    /// inactive already and no write of this run made it so.
    async fn deactivate(&self, read: &Definition) -> Result<bool, RetireFailure> {
        let action = || format!("deactivating {} {} ({})", read.kind, read.name, read.locale);
        let mut current = read.clone();
        // The definition as read before this run's last write whose outcome it did not learn.
        let mut pending: Option<Definition> = None;
        for _ in 0..self.options.conflict_retries.max(1) {
            if !current.active {
                let Some(before) = pending else {
                    return Ok(false);
                };
                self.record(
                    WriteTarget::Definition,
                    read.id.to_string(),
                    (entries::definition(&before), entries::definition(&current)),
                    WriteStatus::Applied,
                    Some(format!("retired (soft): {LANDED}")),
                )
                .await;
                return Ok(true);
            }
            let wanted = Definition {
                active: false,
                ..current.clone()
            };
            let (status, detail) = match self.api.update_definition(&wanted).await {
                Ok(written) => {
                    self.record(
                        WriteTarget::Definition,
                        read.id.to_string(),
                        (entries::definition(&current), entries::definition(&written)),
                        WriteStatus::Applied,
                        Some("retired (soft)".into()),
                    )
                    .await;
                    return Ok(true);
                }
                Err(error) => match classify(&error) {
                    Policy::Reread => {
                        self.conflict();
                        (
                            WriteStatus::Conflict,
                            "retired (soft): stale version: re-read and written again".to_string(),
                        )
                    }
                    Policy::Confirm => (WriteStatus::Unknown, format!("retired (soft): {error}")),
                    Policy::FailUser | Policy::StopRun => {
                        return Err(RetireFailure::Tenant {
                            action: action(),
                            source: Box::new(error),
                        });
                    }
                },
            };
            self.record(
                WriteTarget::Definition,
                read.id.to_string(),
                (entries::definition(&current), entries::definition(&wanted)),
                status,
                Some(detail),
            )
            .await;
            self.stopped().await?;
            pending = Some(current.clone());
            current = self
                .api
                .find_definitions(read.kind, &read.name, &read.locale)
                .await
                .map_err(|source| RetireFailure::Tenant {
                    action: action(),
                    source: Box::new(source),
                })?
                .into_iter()
                .find(|d| d.id == read.id)
                .ok_or_else(|| RetireFailure::Tenant {
                    action: action(),
                    source: Box::new(Error::NotFound {
                        what: "definition",
                        id: read.id.to_string(),
                    }),
                })?;
        }
        Err(RetireFailure::Tenant {
            action: action(),
            source: Box::new(Error::Conflict {
                what: "definition",
                id: read.id.to_string(),
                expected: Some(current.version),
            }),
        })
    }

    async fn delete_all(
        &self,
        plan: &RetirePlan,
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let users: Vec<UserAssignments> = plan.users().into_iter().cloned().collect();
        let profiles: Vec<Profile> = plan.profiles().into_iter().cloned().collect();
        let strategies: Vec<Strategy> = plan.strategies().into_iter().cloned().collect();
        self.strip_references(&users, &profiles, &strategies, report, progress)
            .await?;
        let total = plan.targets.len();
        for (done, target) in plan.targets.iter().enumerate() {
            progress(RetirePhase::Definitions, done, total);
            self.stopped().await?;
            self.delete(&target.definition, report, progress).await?;
            report.definitions_deleted += 1;
        }
        progress(RetirePhase::Definitions, total, total);
        Ok(())
    }

    /// Strips users through the write path, then profiles, then routing strategies; stops
    /// before any delete or deactivation when a user could not be stripped (the delete could
    /// only be refused).
    async fn strip_references(
        &self,
        users: &[UserAssignments],
        profiles: &[Profile],
        strategies: &[Strategy],
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let mut jobs = Vec::new();
        for user in users {
            self.handed
                .lock()
                .expect("not poisoned")
                .insert(user.user_id.clone());
            match self.strip.rewrite(user) {
                Rewritten::Write(write) => jobs.push(Job {
                    write,
                    before: entries::user_read(user),
                }),
                Rewritten::Current => self
                    .writer
                    .settle(&user.user_id, UserOutcome::AlreadyCurrent),
                Rewritten::Refused(why) => self.writer.settle(
                    &user.user_id,
                    UserOutcome::failed(FailureKind::Refused, why),
                ),
            }
        }
        let bulk = self.api.capabilities().max_bulk_entries.is_some();
        self.writer
            .write(
                jobs,
                bulk,
                &self.strip,
                &|done, total| progress(RetirePhase::Users, done, total),
                &|done, total| progress(RetirePhase::Conflicts, done, total),
            )
            .await;
        self.stopped().await?;
        let failed = self.writer.blocking_failures();
        if !failed.is_empty() {
            return Err(RetireFailure::UsersFailed {
                count: failed.len(),
                first: failed
                    .iter()
                    .take(3)
                    .map(|(u, why)| format!("{u}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        let total = profiles.len();
        for (done, profile) in profiles.iter().enumerate() {
            progress(RetirePhase::Profiles, done, total);
            if self.strip_one_profile(profile).await? {
                report.profiles_stripped += 1;
            }
            self.stopped().await?;
        }
        progress(RetirePhase::Profiles, total, total);
        let total = strategies.len();
        for (done, strategy) in strategies.iter().enumerate() {
            progress(RetirePhase::Strategies, done, total);
            if self.strip_one_strategy(strategy).await? {
                report.strategies_stripped += 1;
            }
            self.stopped().await?;
        }
        progress(RetirePhase::Strategies, total, total);
        Ok(())
    }

    /// Strips one routing strategy with `If-Match`, re-reading on conflict or an unknown
    /// outcome; false when it no longer named the definitions and no write of this run removed
    /// them. Journaled like a profile's write.
    async fn strip_one_strategy(&self, read: &Strategy) -> Result<bool, RetireFailure> {
        let failed = |source: Error| RetireFailure::StrategyFailed {
            id: read.id.clone(),
            name: read.name.clone(),
            source: Box::new(source),
        };
        let mut current = read.clone();
        // The strategy as read before this run's last write whose outcome it did not learn.
        let mut pending: Option<Strategy> = None;
        for _ in 0..self.options.conflict_retries.max(1) {
            let Some(stripped) = strip_strategy(&current, &self.strip.retired) else {
                let Some(before) = pending else {
                    return Ok(false);
                };
                self.record(
                    WriteTarget::Strategy,
                    read.id.clone(),
                    (entries::strategy(&before), entries::strategy(&current)),
                    WriteStatus::Applied,
                    Some(LANDED.into()),
                )
                .await;
                return Ok(true);
            };
            let (status, detail) = match self.api.write_strategy(&stripped).await {
                Ok(version) => {
                    let after = Strategy {
                        version,
                        ..stripped
                    };
                    self.record(
                        WriteTarget::Strategy,
                        read.id.clone(),
                        (entries::strategy(&current), entries::strategy(&after)),
                        WriteStatus::Applied,
                        None,
                    )
                    .await;
                    return Ok(true);
                }
                Err(Error::NotFound { .. }) => return Ok(false),
                Err(error) => match classify(&error) {
                    Policy::Reread => {
                        self.conflict();
                        (
                            WriteStatus::Conflict,
                            "stale version: re-read and re-merged".to_string(),
                        )
                    }
                    Policy::Confirm => (WriteStatus::Unknown, crate::explain(&error)),
                    Policy::FailUser | Policy::StopRun => return Err(failed(error)),
                },
            };
            self.record(
                WriteTarget::Strategy,
                read.id.clone(),
                (entries::strategy(&current), entries::strategy(&stripped)),
                status,
                Some(detail),
            )
            .await;
            self.stopped().await?;
            pending = Some(current.clone());
            let fresh: Vec<Strategy> = self
                .api
                .strategies(None)
                .try_collect()
                .await
                .map_err(failed)?;
            match fresh.into_iter().find(|s| s.id == read.id) {
                Some(strategy) => current = strategy,
                None => return Ok(false),
            }
        }
        Err(RetireFailure::StrategyKeptChanging {
            id: read.id.clone(),
            name: read.name.clone(),
        })
    }

    /// Strips one profile with `If-Match`, re-reading on conflict or an unknown outcome;
    /// false when it no longer listed the definitions and no write of this run removed them.
    async fn strip_one_profile(&self, read: &Profile) -> Result<bool, RetireFailure> {
        let failed = |source: Error| RetireFailure::ProfileFailed {
            id: read.id.clone(),
            name: read.name.clone(),
            source: Box::new(source),
        };
        let mut current = read.clone();
        // The profile as read before this run's last write whose outcome it did not learn.
        let mut pending: Option<Profile> = None;
        for _ in 0..self.options.conflict_retries.max(1) {
            let Some(stripped) = strip_profile(&current, self.kind, &self.strip.retired) else {
                let Some(before) = pending else {
                    return Ok(false);
                };
                self.record(
                    WriteTarget::Profile,
                    read.id.clone(),
                    (entries::profile(&before), entries::profile(&current)),
                    WriteStatus::Applied,
                    Some(LANDED.into()),
                )
                .await;
                return Ok(true);
            };
            let (status, detail) = match self.api.write_profile(&stripped).await {
                Ok(version) => {
                    let after = Profile {
                        version,
                        ..stripped
                    };
                    self.record(
                        WriteTarget::Profile,
                        read.id.clone(),
                        (entries::profile(&current), entries::profile(&after)),
                        WriteStatus::Applied,
                        None,
                    )
                    .await;
                    return Ok(true);
                }
                Err(Error::NotFound { .. }) => return Ok(false),
                Err(error) => match classify(&error) {
                    Policy::Reread => {
                        self.conflict();
                        (
                            WriteStatus::Conflict,
                            "stale version: re-read and re-merged".to_string(),
                        )
                    }
                    Policy::Confirm => (WriteStatus::Unknown, crate::explain(&error)),
                    Policy::FailUser | Policy::StopRun => return Err(failed(error)),
                },
            };
            self.record(
                WriteTarget::Profile,
                read.id.clone(),
                (entries::profile(&current), entries::profile(&stripped)),
                status,
                Some(detail),
            )
            .await;
            self.stopped().await?;
            pending = Some(current.clone());
            let fresh: Vec<Profile> = self
                .api
                .profiles(None)
                .try_collect()
                .await
                .map_err(failed)?;
            match fresh.into_iter().find(|p| p.id == read.id) {
                Some(profile) => current = profile,
                None => return Ok(false),
            }
        }
        Err(RetireFailure::ProfileKeptChanging {
            id: read.id.clone(),
            name: read.name.clone(),
        })
    }

    /// Deletes one definition; a 409 REFERENCED finds and strips the references again, up to
    /// `delete_rounds` deletes in all.
    async fn delete(
        &self,
        definition: &Definition,
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let rounds = self.options.delete_rounds.max(1);
        let tenant = |action: &str, source: Error| RetireFailure::Tenant {
            action: format!(
                "{action} {} {} ({})",
                definition.kind, definition.name, definition.locale
            ),
            source: Box::new(source),
        };
        for round in 1..=rounds {
            match self
                .api
                .delete_definition(definition.kind, &definition.id)
                .await
            {
                Ok(()) => {
                    self.record(
                        WriteTarget::Definition,
                        definition.id.to_string(),
                        (entries::definition(definition), Snapshot::Absent),
                        WriteStatus::Applied,
                        Some("retired (hard): deleted".into()),
                    )
                    .await;
                    return Ok(());
                }
                Err(Error::Referenced {
                    users,
                    profiles,
                    strategies,
                    ..
                }) => {
                    report.deletes_refused += 1;
                    tracing::info!(round, users, profiles, strategies, id = %definition.id, "delete refused: referenced again; stripping again");
                    if round == rounds {
                        return Err(RetireFailure::StillReferenced {
                            kind: definition.kind,
                            name: definition.name.clone(),
                            locale: definition.locale.clone(),
                            id: definition.id.clone(),
                            users,
                            profiles,
                            strategies,
                            rounds,
                        });
                    }
                    let (users, profiles, strategies) =
                        references(self.api, definition.kind, &definition.id)
                            .await
                            .map_err(|e| tenant("finding the references of", e))?;
                    self.strip_references(&users, &profiles, &strategies, report, progress)
                        .await?;
                }
                Err(source) => return Err(tenant("deleting", source)),
            }
        }
        unreachable!("the last round returns")
    }
}

#[cfg(test)]
mod tests {
    use skillsync_core::hris::{Source, read_desired};
    use skillsync_core::{Level, Version};

    use super::*;

    fn held(id: &str, level: i64) -> Assignment {
        Assignment {
            definition: DefinitionId::from(id),
            level: Level::new(level).unwrap(),
            active: true,
        }
    }

    fn user(id: &str, skills: Vec<Assignment>, proficiencies: Vec<Assignment>) -> UserAssignments {
        UserAssignments {
            user_id: UserId::from(id),
            skills,
            proficiencies: Some(proficiencies),
            version: Version(7),
            modified_at: None,
            unmapped: Default::default(),
        }
    }

    fn ids(list: &[&str]) -> BTreeSet<DefinitionId> {
        list.iter().map(|s| DefinitionId::from(*s)).collect()
    }

    fn desired() -> Desired {
        let source = |name: &str, text: &str| Source {
            name: name.to_string(),
            reader: std::io::Cursor::new(text.as_bytes().to_vec()),
        };
        read_desired(
            source(
                "hris/catalog.csv",
                "code,kind,locale,name,description,routing_profile_id\n\
                 ACW,proficiency,de-de,ACW_Sales,,rp\n\
                 ACW,proficiency,en-us,ACW_Sales,,rp\n\
                 PAY,skill,en-us,Payments,,rp\n",
            ),
            source("agents.csv", "employee_id,user_id,locale\nE1,u-1,en-us\n"),
            source("assignments.csv", "employee_id,code,level\nE1,PAY,3\n"),
        )
        .unwrap_or_else(|p| panic!("{p:?}"))
        .desired
    }

    #[test]
    fn stripping_removes_only_the_retired_ids_keeps_order_and_carries_the_version() {
        let u = user(
            "u-1",
            vec![held("s-1", 2)],
            vec![held("p-a", 1), held("p-retired", 4), held("p-b", 9)],
        );
        let write = strip_user(&u, Kind::Proficiency, &ids(&["p-retired"])).unwrap();
        assert_eq!(write.version, Version(7));
        assert_eq!(
            write.skills, None,
            "the other list is not sent, so it stays"
        );
        assert_eq!(
            write.proficiencies,
            Some(vec![held("p-a", 1), held("p-b", 9)])
        );
        assert!(!empties_skills(&write));
        assert_eq!(strip_user(&u, Kind::Proficiency, &ids(&["p-x"])), None);
    }

    #[test]
    fn stripping_a_last_skill_is_flagged_and_a_wrong_locale_variant_goes_too() {
        let u = user("u-1", vec![held("s-en", 2), held("s-de", 3)], Vec::new());
        let write = strip_user(&u, Kind::Skill, &ids(&["s-en", "s-de"])).unwrap();
        assert_eq!(write.skills, Some(Vec::new()));
        assert_eq!(write.proficiencies, None);
        assert!(empties_skills(&write));
    }

    #[test]
    fn profiles_lose_only_the_retired_ids_of_that_kind() {
        let profile = Profile {
            id: "rp".into(),
            name: "Sales".into(),
            skills: vec![DefinitionId::from("p-retired")],
            proficiencies: vec![DefinitionId::from("p-a"), DefinitionId::from("p-retired")],
            version: Version(3),
        };
        let stripped = strip_profile(&profile, Kind::Proficiency, &ids(&["p-retired"])).unwrap();
        assert_eq!(stripped.proficiencies, vec![DefinitionId::from("p-a")]);
        assert_eq!(stripped.skills, profile.skills);
        assert_eq!(stripped.version, Version(3), "written with If-Match");
        assert_eq!(
            strip_profile(&stripped, Kind::Proficiency, &ids(&["p-retired"])),
            None
        );
    }

    #[test]
    fn strategies_lose_only_the_retired_ids_and_keep_their_version_for_if_match() {
        let strategy = Strategy {
            id: "st".into(),
            name: "Escalations".into(),
            proficiencies: vec![
                DefinitionId::from("p-a"),
                DefinitionId::from("p-retired"),
                DefinitionId::from("p-b"),
            ],
            version: Version(4),
        };
        let stripped = strip_strategy(&strategy, &ids(&["p-retired"])).unwrap();
        assert_eq!(
            stripped.proficiencies,
            vec![DefinitionId::from("p-a"), DefinitionId::from("p-b")]
        );
        assert_eq!(stripped.version, Version(4));
        assert_eq!(strip_strategy(&stripped, &ids(&["p-retired"])), None);
    }

    #[test]
    fn unknown_codes_and_locales_name_the_catalog_file() {
        let desired = desired();
        let err = catalog_variants(&desired, "acw", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hris/catalog.csv") && err.contains("no code acw"),
            "{err}"
        );
        assert!(err.contains("did you mean ACW?"), "{err}");
        let err = catalog_variants(&desired, "ACW", Some("fr-fr"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no fr-fr variant") && err.contains("de-de, en-us"),
            "{err}"
        );
        let err = catalog_variants(&desired, "ACW", Some("de-DE"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lowercase"), "{err}");
        assert_eq!(catalog_variants(&desired, "ACW", None).unwrap().len(), 2);
        let one = catalog_variants(&desired, "ACW", Some("en-us")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].locale.as_str(), "en-us");
    }

    fn plan_of(kind: Kind, mode: RetiredMode, users: Vec<UserAssignments>) -> RetirePlan {
        let desired = desired();
        let code = if kind == Kind::Skill { "PAY" } else { "ACW" };
        let variant = catalog_variants(&desired, code, Some("en-us")).unwrap()[0].clone();
        RetirePlan {
            mode: mode.into(),
            code: variant.code.clone(),
            kind,
            targets: vec![Target {
                definition: Definition {
                    id: DefinitionId::from("s-en"),
                    kind,
                    name: variant.name.clone(),
                    locale: variant.locale.clone(),
                    active: true,
                    description: String::new(),
                    routing_profile_id: "rp".into(),
                    version: Version(1),
                },
                users,
                profiles: Vec::new(),
                strategies: Vec::new(),
            }],
            variants: vec![variant],
        }
    }

    #[test]
    fn a_hard_retirement_that_would_empty_someone_is_refused_unless_allowed() {
        let plan = plan_of(
            Kind::Skill,
            RetiredMode::Hard,
            vec![user("u-1", vec![held("s-en", 2)], Vec::new())],
        );
        let refusal = check(&plan, &desired(), true, false).unwrap_err();
        assert_eq!(
            refusal,
            RetireRefusal::EmptySkills {
                count: 1,
                first: "E1".into()
            }
        );
        assert!(refusal.to_string().contains("--allow-empty-skills"));
        assert_eq!(check(&plan, &desired(), true, true), Ok(()));
        let soft = RetirePlan {
            mode: RetireAction::KeepReferences,
            ..plan
        };
        assert_eq!(
            check(&soft, &desired(), true, false),
            Ok(()),
            "soft keeps assignments"
        );
    }

    #[test]
    fn the_users_dialect_cannot_strip_proficiencies() {
        let plan = plan_of(
            Kind::Proficiency,
            RetiredMode::Hard,
            vec![user("u-1", vec![held("s-1", 2)], vec![held("s-en", 2)])],
        );
        assert_eq!(
            check(&plan, &desired(), false, false),
            Err(RetireRefusal::ProficienciesUnwritable { users: 1 })
        );
    }

    #[test]
    fn the_summary_counts_users_names_a_few_and_lists_profiles() {
        let users = (0..5)
            .map(|i| {
                user(
                    &format!("u-{i}"),
                    vec![held("s-en", 2), held("s-x", 1)],
                    Vec::new(),
                )
            })
            .collect();
        let mut plan = plan_of(Kind::Skill, RetiredMode::Hard, users);
        plan.targets[0].profiles.push(Profile {
            id: "rp".into(),
            name: "Sales".into(),
            skills: vec![DefinitionId::from("s-en")],
            proficiencies: Vec::new(),
            version: Version(1),
        });
        let summary = summarize(&plan, &desired());
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].users, 5);
        assert_eq!(summary[0].example_users, ["u-0", "E1", "u-2"]);
        assert_eq!(summary[0].profiles, ["Sales"]);
        assert!(!summary[0].duplicate);
    }
}
