//! Retiring a catalog code (decommissioning, SPEC 1.2): the tenant refuses to delete a
//! definition while any user or routing profile references it (409 REFERENCED), so a hard
//! retirement finds every reference (`?skillId=` / `?proficiencyId=`), strips it with
//! merge-safe writes that touch nothing else, and only then deletes; a 409 on delete means
//! someone referenced it again meanwhile, so the references are found and stripped again, a
//! bounded number of rounds. A soft retirement marks the definition inactive and keeps its
//! assignments for reporting.
//!
//! The decisions (which variants a code means, what each stripped list is, whether the run
//! may start, what to report) are pure functions; [`prepare`] reads, [`retire`] writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::TryStreamExt;
use serde_json::json;
use skillsync_core::{
    Assignment, CatalogEntry, Code, Definition, DefinitionId, Desired, Kind, Live, Locale, Problem,
    RetiredMode, UserAssignments, UserId,
};
use skillsync_cxone::{
    DefinitionQuery, EntryOutcome, Error, Profile, TenantApi, UserQuery, UserWrite,
};
use skillsync_store::{WriteRecord, WriteStatus, WriteTarget};

use crate::apply::JournalRun;
use crate::fan_out::fan_out;

/// How the retirement writes.
#[derive(Debug, Clone, Copy)]
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
}

/// What a retirement will do, read from the tenant and not yet written.
#[derive(Debug, Clone)]
pub struct RetirePlan {
    /// Soft or hard.
    pub mode: RetiredMode,
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
    if plan.mode == RetiredMode::Soft {
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
/// plan resolves them, duplicates included) and, per definition, the users and profiles that
/// reference it. Writes nothing.
pub async fn prepare(
    api: &dyn TenantApi,
    desired: &Desired,
    variants: &[&CatalogEntry],
    mode: RetiredMode,
) -> skillsync_cxone::Result<RetirePlan> {
    let first = variants.first().ok_or(Error::Unsupported {
        dialect: "any",
        operation: "retiring no catalog variant",
    })?;
    let kind = first.kind;
    let definitions: Vec<Definition> = api
        .definitions(kind, DefinitionQuery::default())
        .try_collect()
        .await?;
    let live = Live {
        definitions,
        sees_proficiencies: api.capabilities().proficiencies,
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
                let (users, profiles) = references(api, kind, &id).await?;
                targets.push(Target {
                    definition: (*definition).clone(),
                    users,
                    profiles,
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

/// The users and profiles referencing one definition, read concurrently.
async fn references(
    api: &dyn TenantApi,
    kind: Kind,
    id: &DefinitionId,
) -> skillsync_cxone::Result<(Vec<UserAssignments>, Vec<Profile>)> {
    let query = match kind {
        Kind::Skill => UserQuery {
            skill_id: Some(id.clone()),
            proficiency_id: None,
        },
        Kind::Proficiency => UserQuery {
            skill_id: None,
            proficiency_id: Some(id.clone()),
        },
    };
    tokio::try_join!(
        api.users(query).try_collect::<Vec<_>>(),
        api.profiles(Some((kind, id.clone())))
            .try_collect::<Vec<_>>(),
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
        "{kind} {name} ({locale}) {id} is still referenced by {users} user(s) and {profiles} routing profile(s) \
         after {rounds} rounds of stripping and deleting: something keeps assigning it (another integration, a person \
         in the admin console); stop that, then run retire again"
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
    #[error("routing profile {name} ({id}) could not be stripped: {reason}")]
    ProfileFailed {
        /// Profile id.
        id: String,
        /// Profile name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The tenant refused or failed a step.
    #[error("{action} failed: {source}")]
    Tenant {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: Error,
    },
    /// A write could not be journaled; nothing further was written.
    #[error("stopped: the journal cannot be written ({0})")]
    Journal(String),
}

/// What happened.
#[derive(Debug, Default)]
pub struct RetireReport {
    /// Users whose references were stripped.
    pub users_stripped: usize,
    /// Users found to hold none any more when re-read.
    pub users_already_clear: usize,
    /// Users that could not be stripped, with the reason.
    pub users_failed: Vec<(UserId, String)>,
    /// Conflicts met and re-merged.
    pub conflicts: usize,
    /// Profiles whose references were stripped.
    pub profiles_stripped: usize,
    /// Definitions deleted (hard).
    pub definitions_deleted: usize,
    /// Definitions made inactive (soft).
    pub definitions_deactivated: usize,
    /// Deletes refused with 409 REFERENCED, each followed by finding and stripping again.
    pub deletes_refused: usize,
    /// Why it stopped, if it did not finish.
    pub failure: Option<RetireFailure>,
    /// Elapsed time.
    pub elapsed: std::time::Duration,
}

/// Carries out the plan: soft marks each definition inactive; hard strips users (bulk,
/// version-guarded), then profiles (`If-Match`), then deletes, rediscovering on 409. Every
/// write is journaled as it completes.
pub async fn retire(
    api: &dyn TenantApi,
    plan: &RetirePlan,
    options: RetireOptions,
    journal: Option<JournalRun<'_>>,
    progress: RetireProgress<'_>,
) -> RetireReport {
    let started = Instant::now();
    let run = Retirer {
        api,
        kind: plan.kind,
        retired: plan.definition_ids(),
        options,
        journal,
        journal_failed: Mutex::new(None),
        stripped: AtomicUsize::new(0),
        clear: AtomicUsize::new(0),
        conflicts: AtomicUsize::new(0),
        failed: Mutex::new(Vec::new()),
        pending: Mutex::new(BTreeMap::new()),
    };
    let mut report = RetireReport::default();
    let outcome = match plan.mode {
        RetiredMode::Soft => run.deactivate_all(plan, &mut report, progress).await,
        RetiredMode::Hard => run.delete_all(plan, &mut report, progress).await,
    };
    report.failure = outcome.err().or_else(|| run.journal_failure());
    report.users_stripped = run.stripped.load(Ordering::Relaxed);
    report.users_already_clear = run.clear.load(Ordering::Relaxed);
    report.conflicts = run.conflicts.load(Ordering::Relaxed);
    report.users_failed = run.failed.into_inner().unwrap_or_default();
    report.elapsed = started.elapsed();
    report
}

struct Retirer<'a> {
    api: &'a dyn TenantApi,
    kind: Kind,
    retired: BTreeSet<DefinitionId>,
    options: RetireOptions,
    journal: Option<JournalRun<'a>>,
    journal_failed: Mutex<Option<String>>,
    stripped: AtomicUsize,
    clear: AtomicUsize,
    conflicts: AtomicUsize,
    failed: Mutex<Vec<(UserId, String)>>,
    /// Users this run wrote whose outcome it did not learn (unknown, or a 412 that may answer
    /// a retry of a write that had landed), with the last such write and the user as read
    /// before it: a re-read that finds the references gone means that write landed.
    pending: Mutex<BTreeMap<UserId, (UserWrite, UserAssignments)>>,
}

impl Retirer<'_> {
    fn journal_failure(&self) -> Option<RetireFailure> {
        self.journal_failed
            .lock()
            .expect("not poisoned")
            .clone()
            .map(RetireFailure::Journal)
    }

    /// Journals writes; a journal that cannot be written stops the run before its next
    /// write, since an unrecorded write is one an auditor cannot account for.
    fn record(
        &self,
        entries: Vec<(
            WriteTarget,
            String,
            serde_json::Value,
            serde_json::Value,
            WriteStatus,
            Option<String>,
        )>,
    ) {
        let Some(j) = self.journal else { return };
        let at = jiff::Timestamp::now();
        let settles =
            jiff::SignedDuration::try_from(self.options.propagation_window).unwrap_or_default();
        let records: Vec<WriteRecord> = entries
            .into_iter()
            .map(
                |(target, subject, before, after, status, detail)| WriteRecord {
                    run: j.run,
                    target,
                    subject,
                    before,
                    after,
                    status,
                    detail,
                    at,
                    // Only skills route: a user's skills, or a skill definition turned
                    // inactive or deleted, have something to settle.
                    settles_at: (status == WriteStatus::Applied
                        && (target == WriteTarget::UserSkills
                            || (target == WriteTarget::Definition && self.kind == Kind::Skill)))
                        .then(|| at.checked_add(settles).ok())
                        .flatten(),
                },
            )
            .collect();
        if let Err(error) = j.journal.record_writes(&records) {
            tracing::error!(%error, "cannot journal writes");
            self.journal_failed
                .lock()
                .expect("not poisoned")
                .get_or_insert(error.to_string());
        }
    }

    fn user_target(&self) -> WriteTarget {
        match self.kind {
            Kind::Skill => WriteTarget::UserSkills,
            Kind::Proficiency => WriteTarget::UserProficiencies,
        }
    }

    fn record_users(
        &self,
        entries: &[(&UserWrite, &UserAssignments, WriteStatus, Option<String>)],
    ) {
        let target = self.user_target();
        self.record(
            entries
                .iter()
                .map(|(write, before, status, detail)| {
                    let held = match self.kind {
                        Kind::Skill => json!(before.skills),
                        Kind::Proficiency => json!(before.proficiencies),
                    };
                    (
                        target,
                        write.user_id.to_string(),
                        held,
                        json!({ "version": write.version, "skills": write.skills, "proficiencies": write.proficiencies }),
                        *status,
                        detail.clone(),
                    )
                })
                .collect(),
        );
    }

    fn fail(&self, user: &UserId, reason: String) {
        self.failed
            .lock()
            .expect("not poisoned")
            .push((user.clone(), reason));
    }

    /// Remembers a write whose outcome is not known yet.
    fn pend(&self, write: &UserWrite, before: &UserAssignments) {
        self.pending
            .lock()
            .expect("not poisoned")
            .insert(write.user_id.clone(), (write.clone(), before.clone()));
    }

    /// Forgets (and returns) the user's write whose outcome was not known.
    fn settle(&self, user: &UserId) -> Option<(UserWrite, UserAssignments)> {
        self.pending.lock().expect("not poisoned").remove(user)
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
            if self.deactivate(&target.definition).await? {
                report.definitions_deactivated += 1;
            }
            if let Some(failure) = self.journal_failure() {
                return Err(failure);
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
                self.record(vec![(
                    WriteTarget::Definition,
                    read.id.to_string(),
                    json!(before),
                    json!(current),
                    WriteStatus::Applied,
                    Some(format!("retired (soft): {LANDED}")),
                )]);
                return Ok(true);
            }
            let wanted = Definition {
                active: false,
                ..current.clone()
            };
            let (status, detail) = match self.api.update_definition(&wanted).await {
                Ok(written) => {
                    self.record(vec![(
                        WriteTarget::Definition,
                        read.id.to_string(),
                        json!(current),
                        json!(written),
                        WriteStatus::Applied,
                        Some("retired (soft)".into()),
                    )]);
                    return Ok(true);
                }
                Err(Error::Conflict { .. }) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    (
                        WriteStatus::Conflict,
                        "retired (soft): stale version: re-read and written again".to_string(),
                    )
                }
                Err(error) if error.is_transient() => {
                    (WriteStatus::Unknown, format!("retired (soft): {error}"))
                }
                Err(source) => {
                    return Err(RetireFailure::Tenant {
                        action: action(),
                        source,
                    });
                }
            };
            self.record(vec![(
                WriteTarget::Definition,
                read.id.to_string(),
                json!(current),
                json!(wanted),
                status,
                Some(detail),
            )]);
            if let Some(failure) = self.journal_failure() {
                return Err(failure);
            }
            pending = Some(current.clone());
            current = self
                .api
                .find_definitions(read.kind, &read.name, &read.locale)
                .await
                .map_err(|source| RetireFailure::Tenant {
                    action: action(),
                    source,
                })?
                .into_iter()
                .find(|d| d.id == read.id)
                .ok_or_else(|| RetireFailure::Tenant {
                    action: action(),
                    source: Error::NotFound {
                        what: "definition",
                        id: read.id.to_string(),
                    },
                })?;
        }
        Err(RetireFailure::Tenant {
            action: action(),
            source: Error::Conflict {
                what: "definition",
                id: read.id.to_string(),
                expected: Some(current.version),
            },
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
        self.strip_references(&users, &profiles, report, progress)
            .await?;
        let total = plan.targets.len();
        for (done, target) in plan.targets.iter().enumerate() {
            progress(RetirePhase::Definitions, done, total);
            self.delete(&target.definition, report, progress).await?;
            report.definitions_deleted += 1;
        }
        progress(RetirePhase::Definitions, total, total);
        Ok(())
    }

    /// Strips users, then profiles; stops before any delete when a user could not be
    /// stripped (the delete could only be refused).
    async fn strip_references(
        &self,
        users: &[UserAssignments],
        profiles: &[Profile],
        report: &mut RetireReport,
        progress: RetireProgress<'_>,
    ) -> Result<(), RetireFailure> {
        let retry = self.strip_users(users, progress).await;
        if !retry.is_empty() {
            self.remerge(retry, progress).await;
        }
        if let Some(failure) = self.journal_failure() {
            return Err(failure);
        }
        let failed = self.failed.lock().expect("not poisoned").clone();
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
            if let Some(failure) = self.journal_failure() {
                return Err(failure);
            }
        }
        progress(RetirePhase::Profiles, total, total);
        Ok(())
    }

    /// First pass over the users as read: bulk where the dialect has it, else one merge
    /// update each. Returns the users to re-read (conflicts, unknown outcomes).
    async fn strip_users(
        &self,
        users: &[UserAssignments],
        progress: RetireProgress<'_>,
    ) -> Vec<UserId> {
        let writes: Vec<(UserWrite, &UserAssignments)> = users
            .iter()
            .filter_map(|u| strip_user(u, self.kind, &self.retired).map(|w| (w, u)))
            .filter(|(write, _)| {
                // `check` screened the users `prepare` read; users found again after a refused
                // delete (or listed by a caller) are screened here, before anything is sent.
                let refused = empties_skills(write) && !self.options.allow_empty_skills;
                if refused {
                    self.fail(&write.user_id, EMPTIES_SKILLS.into());
                }
                !refused
            })
            .collect();
        let total = writes.len();
        let batch_size = match self.api.capabilities().max_bulk_entries {
            Some(most) => self.options.bulk_batch_size.clamp(1, most),
            None => 1,
        };
        let bulk = self.api.capabilities().max_bulk_entries.is_some();
        let batches: Vec<&[(UserWrite, &UserAssignments)]> = writes.chunks(batch_size).collect();
        let retry = fan_out(
            batches,
            self.options.concurrency,
            |batch| batch.len(),
            |done| progress(RetirePhase::Users, done, total),
            |batch| async move {
                if self.journal_failure().is_some() {
                    return Vec::new();
                }
                if bulk {
                    self.write_batch(batch).await
                } else {
                    let (write, before) = &batch[0];
                    match self.write_one(write, before).await {
                        Some(_) => vec![write.user_id.clone()],
                        None => Vec::new(),
                    }
                }
            },
        )
        .await;
        retry.into_iter().flatten().collect()
    }

    async fn write_batch(&self, batch: &[(UserWrite, &UserAssignments)]) -> Vec<UserId> {
        let writes: Vec<UserWrite> = batch.iter().map(|(w, _)| w.clone()).collect();
        let mut retry = Vec::new();
        let mut journal = Vec::with_capacity(batch.len());
        match self.api.write_users(&writes).await {
            Ok(outcomes) => {
                for ((write, before), outcome) in batch.iter().zip(outcomes) {
                    match outcome {
                        EntryOutcome::Applied(_) => {
                            self.settle(&write.user_id);
                            self.stripped.fetch_add(1, Ordering::Relaxed);
                            journal.push((write, *before, WriteStatus::Applied, None));
                        }
                        // Our version is stale: someone else wrote, or this is the client's
                        // retry of an entry whose first answer was lost after it landed.
                        EntryOutcome::Conflict => {
                            self.conflicts.fetch_add(1, Ordering::Relaxed);
                            self.pend(write, before);
                            retry.push(write.user_id.clone());
                            journal.push((
                                write,
                                *before,
                                WriteStatus::Conflict,
                                Some("412: re-read and re-merged".to_string()),
                            ));
                        }
                        // Gone users reference nothing.
                        EntryOutcome::NotFound => {
                            self.settle(&write.user_id);
                            self.clear.fetch_add(1, Ordering::Relaxed);
                            journal.push((
                                write,
                                *before,
                                WriteStatus::Failed,
                                Some("the user no longer exists".to_string()),
                            ));
                        }
                        EntryOutcome::Rejected(why) => {
                            self.fail(&write.user_id, why.clone());
                            journal.push((write, *before, WriteStatus::Failed, Some(why)));
                        }
                    }
                }
            }
            // The batch's outcome is unknown: each user is re-read before anything is sent again.
            Err(error) if error.is_transient() => {
                for (write, before) in batch {
                    self.pend(write, before);
                    retry.push(write.user_id.clone());
                    journal.push((
                        write,
                        *before,
                        WriteStatus::Unknown,
                        Some(error.to_string()),
                    ));
                }
            }
            Err(error) => {
                for (write, before) in batch {
                    self.fail(&write.user_id, error.to_string());
                    journal.push((write, *before, WriteStatus::Failed, Some(error.to_string())));
                }
            }
        }
        self.record_users(&journal);
        retry
    }

    /// One merge update with `If-Match`; `Some(why)` when the user must be re-read (a
    /// conflict, or an outcome the client could not learn).
    async fn write_one(&self, write: &UserWrite, before: &UserAssignments) -> Option<String> {
        let (retry, status, detail) = match self.api.write_user(write).await {
            Ok(_) => {
                self.settle(&write.user_id);
                self.stripped.fetch_add(1, Ordering::Relaxed);
                (None, WriteStatus::Applied, None)
            }
            Err(Error::Conflict { .. }) => {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                self.pend(write, before);
                let detail = "stale version: re-read and re-merged".to_string();
                (
                    Some("the user kept changing under us".to_string()),
                    WriteStatus::Conflict,
                    Some(detail),
                )
            }
            Err(Error::NotFound { .. }) => {
                self.settle(&write.user_id);
                self.clear.fetch_add(1, Ordering::Relaxed);
                let detail = "the user no longer exists".to_string();
                (None, WriteStatus::Failed, Some(detail))
            }
            Err(error) if error.is_transient() => {
                self.pend(write, before);
                (
                    Some(error.to_string()),
                    WriteStatus::Unknown,
                    Some(error.to_string()),
                )
            }
            Err(error) => {
                self.fail(&write.user_id, error.to_string());
                (None, WriteStatus::Failed, Some(error.to_string()))
            }
        };
        self.record_users(&[(write, before, status, detail)]);
        retry
    }

    /// Re-reads each user and strips again from what the tenant holds now, bounded per user.
    async fn remerge(&self, users: Vec<UserId>, progress: RetireProgress<'_>) {
        let total = users.len();
        fan_out(
            users,
            self.options.concurrency,
            |_| 1,
            |done| progress(RetirePhase::Conflicts, done, total),
            |user_id| async move {
                self.remerge_one(&user_id).await;
            },
        )
        .await;
    }

    async fn remerge_one(&self, user_id: &UserId) {
        let mut last_error = String::new();
        for _ in 0..self.options.conflict_retries.max(1) {
            if self.journal_failure().is_some() {
                return;
            }
            let live = match self.api.user(user_id).await {
                Ok(live) => live,
                Err(Error::NotFound { .. }) => {
                    self.settle(user_id);
                    self.clear.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(error) if error.is_transient() => {
                    last_error = error.to_string();
                    continue;
                }
                Err(error) => {
                    last_error = error.to_string();
                    break;
                }
            };
            let Some(write) = strip_user(&live, self.kind, &self.retired) else {
                match self.settle(user_id) {
                    // This run's write whose answer was lost (or answered by a 412 to the
                    // client's retry) did land: it stripped the user.
                    Some((write, before)) => {
                        self.stripped.fetch_add(1, Ordering::Relaxed);
                        self.record_users(&[(
                            &write,
                            &before,
                            WriteStatus::Applied,
                            Some(LANDED.to_string()),
                        )]);
                    }
                    // Nothing of ours was in doubt: someone else removed it.
                    None => {
                        self.clear.fetch_add(1, Ordering::Relaxed);
                    }
                }
                return;
            };
            if empties_skills(&write) && !self.options.allow_empty_skills {
                self.fail(user_id, EMPTIES_SKILLS.into());
                return;
            }
            match self.write_one(&write, &live).await {
                // Written, gone, or refused for good (already counted as failed).
                None => return,
                Some(why) => last_error = why,
            }
        }
        self.fail(user_id, last_error);
    }

    /// Strips one profile with `If-Match`, re-reading on conflict or an unknown outcome;
    /// false when it no longer listed the definitions and no write of this run removed them.
    async fn strip_one_profile(&self, read: &Profile) -> Result<bool, RetireFailure> {
        let failed = |reason: String| RetireFailure::ProfileFailed {
            id: read.id.clone(),
            name: read.name.clone(),
            reason,
        };
        let mut current = read.clone();
        // The profile as read before this run's last write whose outcome it did not learn.
        let mut pending: Option<Profile> = None;
        for _ in 0..self.options.conflict_retries.max(1) {
            let Some(stripped) = strip_profile(&current, self.kind, &self.retired) else {
                let Some(before) = pending else {
                    return Ok(false);
                };
                self.record(vec![(
                    WriteTarget::Profile,
                    read.id.clone(),
                    profile_json(&before),
                    profile_json(&current),
                    WriteStatus::Applied,
                    Some(LANDED.into()),
                )]);
                return Ok(true);
            };
            let (status, detail) = match self.api.write_profile(&stripped).await {
                Ok(version) => {
                    let after = Profile {
                        version,
                        ..stripped
                    };
                    self.record(vec![(
                        WriteTarget::Profile,
                        read.id.clone(),
                        profile_json(&current),
                        profile_json(&after),
                        WriteStatus::Applied,
                        None,
                    )]);
                    return Ok(true);
                }
                Err(Error::Conflict { .. }) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    (
                        WriteStatus::Conflict,
                        "stale version: re-read and re-merged".to_string(),
                    )
                }
                Err(error) if error.is_transient() => (WriteStatus::Unknown, error.to_string()),
                Err(Error::NotFound { .. }) => return Ok(false),
                Err(error) => return Err(failed(error.to_string())),
            };
            self.record(vec![(
                WriteTarget::Profile,
                read.id.clone(),
                profile_json(&current),
                profile_json(&stripped),
                status,
                Some(detail),
            )]);
            if let Some(failure) = self.journal_failure() {
                return Err(failure);
            }
            pending = Some(current.clone());
            let fresh: Vec<Profile> = self
                .api
                .profiles(None)
                .try_collect()
                .await
                .map_err(|e| failed(e.to_string()))?;
            match fresh.into_iter().find(|p| p.id == read.id) {
                Some(profile) => current = profile,
                None => return Ok(false),
            }
        }
        Err(failed("it kept changing under us".into()))
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
            source,
        };
        for round in 1..=rounds {
            match self
                .api
                .delete_definition(definition.kind, &definition.id)
                .await
            {
                Ok(()) => {
                    self.record(vec![(
                        WriteTarget::Definition,
                        definition.id.to_string(),
                        json!(definition),
                        serde_json::Value::Null,
                        WriteStatus::Applied,
                        Some("retired (hard): deleted".into()),
                    )]);
                    return Ok(());
                }
                Err(Error::Referenced {
                    users, profiles, ..
                }) => {
                    report.deletes_refused += 1;
                    tracing::info!(round, users, profiles, id = %definition.id, "delete refused: referenced again; stripping again");
                    if round == rounds {
                        return Err(RetireFailure::StillReferenced {
                            kind: definition.kind,
                            name: definition.name.clone(),
                            locale: definition.locale.clone(),
                            id: definition.id.clone(),
                            users,
                            profiles,
                            rounds,
                        });
                    }
                    let (users, profiles) = references(self.api, definition.kind, &definition.id)
                        .await
                        .map_err(|e| tenant("finding the references of", e))?;
                    self.strip_references(&users, &profiles, report, progress)
                        .await?;
                }
                Err(source) => return Err(tenant("deleting", source)),
            }
        }
        unreachable!("the last round returns")
    }
}

fn profile_json(profile: &Profile) -> serde_json::Value {
    json!({
        "name": profile.name,
        "skills": profile.skills,
        "proficiencies": profile.proficiencies,
        "version": profile.version,
    })
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
            mode,
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
            mode: RetiredMode::Soft,
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
