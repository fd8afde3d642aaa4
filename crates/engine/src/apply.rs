//! Executing a plan: definitions first (ensured idempotently), then the skills path, then the
//! users whose only change is to proficiencies (the eventual path), then the read-back. Every
//! user write goes through the one write path (`write.rs`); a re-read user is re-planned from
//! the tenant's current state, so another integration's change made at any moment survives.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use skillsync_core::plan::{
    DefinitionActionKind, DefinitionRef, PlannedAssignment, UserPlan, WriteMode,
};
use skillsync_core::{
    Adopt, Agent, Assignment, Code, DefinitionId, Desired, Live, Locale, Plan, Resolution,
    UserAssignments, UserId,
};
use skillsync_cxone::{Error, LookedUp, NewDefinition, TenantApi, UserWrite};
use skillsync_store::{Snapshot, WriteStatus, WriteTarget};

use crate::entries;
use crate::write::{
    Entry, FailureKind, Interrupt, Job, JournalRun, Rewrite, Rewritten, StopReason, UserOutcome,
    WriteOptions, Writer, Written,
};

/// How the run writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// The write path's settings.
    pub write: WriteOptions,
    /// Whether an agent may be left with no skills (the HRIS really says so).
    pub allow_empty_skills: bool,
    /// When the live read the plan came from started (its definitions listing came after). A
    /// read this recent already looked every definition to create up, so creates skip a second
    /// look-up (see [`LIVE_READ_COUNTS_AS_LOOKUP_FOR`]); `None` looks each one up again.
    pub live_read_at: Option<Instant>,
    /// Users in the tenant (from the live read): the read-back pages through the listing when
    /// that is cheaper than reading each changed user.
    pub tenant_users: usize,
    /// The lists written: a user re-planned after a conflict is written these only.
    pub lists: crate::Lists,
}

static ADOPT_NOTHING: Adopt = Adopt::Nothing;

/// How long a live read stands in for the look-up before a create. Long enough for the plan
/// and the guards between read and write; short enough that a run paused at its confirmation
/// prompt looks again.
pub const LIVE_READ_COUNTS_AS_LOOKUP_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// A phase of the run, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Creating, reactivating and updating definitions.
    Definitions,
    /// Writing skill changes (strict path).
    Skills,
    /// Writing proficiency-only changes (eventual path).
    Proficiencies,
    /// Re-reading and re-merging users after conflicts or unknown outcomes.
    Conflicts,
    /// Reading back the users written.
    ReadBack,
}

/// Progress callback: phase, done, total.
pub type Progress<'a> = &'a (dyn Fn(Phase, usize, usize) + Sync);

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Definitions created.
    pub definitions_created: usize,
    /// Definitions reactivated.
    pub definitions_reactivated: usize,
    /// Definitions updated.
    pub definitions_updated: usize,
    /// Every user the plan meant to change, and how it ended.
    pub written: Written,
    /// Users read back after the writes.
    pub users_read_back: usize,
    /// Elapsed time.
    pub elapsed: std::time::Duration,
}

/// Where an apply journals, what stops it, whom it tells of its progress.
#[derive(Clone, Copy)]
pub struct ApplyContext<'a> {
    /// Where its writes are journaled.
    pub journal: Option<JournalRun<'a>>,
    /// Raised by a signal: writes in flight finish, no new one starts.
    pub interrupt: Option<&'a Interrupt>,
    /// Called as writes progress.
    pub progress: Progress<'a>,
    /// The tenant's lease the run holds: renewed as writes are scheduled, and none is
    /// scheduled once it is lost.
    pub(crate) lease: Option<&'a crate::lease::HeldLease<'a>>,
    /// The existing definitions this run takes over (`--adopt`): remembered as managed with
    /// the ones it creates. Nothing else becomes skillsync's by being listed or added to.
    pub adopt: &'a Adopt,
}

impl<'a> ApplyContext<'a> {
    /// A context without a lease (tests, benches).
    pub fn new(
        journal: Option<JournalRun<'a>>,
        interrupt: Option<&'a Interrupt>,
        progress: Progress<'a>,
    ) -> Self {
        ApplyContext {
            journal,
            interrupt,
            progress,
            lease: None,
            adopt: &ADOPT_NOTHING,
        }
    }
}

/// Runs the plan made from `live`. Ids of created definitions are bound into the plan's resolution. Every
/// write is recorded in `journal` as it completes; every user of the plan ends in the report.
pub async fn apply(
    api: &dyn TenantApi,
    desired: &Desired,
    plan: &mut Plan,
    live: &Live,
    options: ApplyOptions,
    context: ApplyContext<'_>,
) -> ApplyReport {
    let ApplyContext {
        journal,
        interrupt,
        progress,
        lease,
        adopt,
    } = context;
    let started = Instant::now();
    let mut report = ApplyReport::default();
    let mut writer = Writer::new(api, journal, options.write, interrupt, lease);
    writer.listed(&live.users);
    let looked_up = match options.live_read_at {
        Some(at) if at.elapsed() < LIVE_READ_COUNTS_AS_LOOKUP_FOR => LookedUp::Absent,
        _ => LookedUp::No,
    };
    let planned: Vec<UserId> = plan.users.iter().map(|u| u.user_id.clone()).collect();
    let to_create: Vec<(Code, Locale)> = plan
        .definitions
        .iter()
        .filter(|d| d.action == DefinitionActionKind::Create)
        .map(|d| (d.code.clone(), d.locale.clone()))
        .collect();
    if let Err(failed) =
        ensure_definitions(api, plan, &mut report, &writer, progress, looked_up).await
    {
        writer.stop(StopReason::Definition(failed));
    }
    // Bound by this run: created by it, or found already made by another writer since the read.
    let bound_now: HashSet<DefinitionId> = to_create
        .iter()
        .filter_map(
            |(code, locale)| match plan.resolution.definition(code, locale)? {
                DefinitionRef::Existing(id) => Some(id.clone()),
                DefinitionRef::New { .. } => None,
            },
        )
        .collect();
    if let Some(j) = journal
        && let Err(error) = remember_mappings(j, desired, &plan.resolution, &bound_now, adopt).await
    {
        // A journal that cannot take the mapping will not take the writes either.
        writer.stop(StopReason::Journal(crate::explain(&error)));
    }
    let mut rewrite = PlanRewrite::new(
        desired,
        (&plan.resolution, &plan.users),
        options.allow_empty_skills,
        options.lists,
    );
    rewrite.keep_as_read = api.capabilities().per_definition_writes.is_some();
    let bulk = plan.write_mode == WriteMode::Bulk;
    // Users with skill changes carry their proficiency changes in the same write: one request
    // instead of two. Users whose only change is to proficiencies go after every skill write.
    let (skill_users, proficiency_users): (Vec<&UserPlan>, Vec<&UserPlan>) =
        plan.users.iter().partition(|u| u.skills.is_some());
    let as_read: HashMap<&UserId, &UserAssignments> =
        live.users.iter().map(|u| (&u.user_id, u)).collect();
    for (phase, users) in [
        (Phase::Skills, skill_users),
        (Phase::Proficiencies, proficiency_users),
    ] {
        if writer.should_stop().await.is_some() {
            break;
        }
        let mut jobs: Vec<Job> = Vec::with_capacity(users.len());
        for user in users {
            let read = as_read.get(&user.user_id);
            let mut write = rewrite.write_for(user, read.copied());
            if let Some(read) = read
                && holds_any(read, &bound_now)
            {
                // Merged against a definitions listing older than the users read: another
                // writer created a definition the plan meant to create, and the user already
                // held it as someone else's. The plan kept it as unknown to skillsync (and
                // would send it twice, or keep it where the HRIS does not want it); with its id
                // now bound, the same read merges right.
                match rewrite.rewrite(read) {
                    Rewritten::Write(rewritten) => write = rewritten,
                    Rewritten::Current => {
                        writer.settle(&user.user_id, UserOutcome::AlreadyCurrent);
                        continue;
                    }
                    Rewritten::Refused(why) => {
                        let outcome = UserOutcome::failed(FailureKind::Refused, why);
                        writer.settle(&user.user_id, outcome);
                        continue;
                    }
                }
            }
            jobs.push(Job {
                write,
                before: read.map_or(Snapshot::Absent, |read| entries::user_read(read)),
            });
        }
        writer
            .write(
                jobs,
                bulk,
                &rewrite,
                &|done, total| progress(phase, done, total),
                &|done, total| progress(Phase::Conflicts, done, total),
            )
            .await;
    }
    progress(Phase::ReadBack, 0, 1);
    report.users_read_back = crate::read_back::check(
        &writer,
        api,
        &rewrite,
        options.tenant_users,
        options.write.concurrency,
    )
    .await;
    progress(Phase::ReadBack, 1, 1);
    report.written = writer.finish(planned);
    report.elapsed = started.elapsed();
    report
}

/// True when the user, as read, holds one of `ids`.
fn holds_any(read: &UserAssignments, ids: &HashSet<DefinitionId>) -> bool {
    !ids.is_empty()
        && read
            .skills
            .iter()
            .chain(read.proficiencies.iter().flatten())
            .any(|a| ids.contains(&a.definition))
}

/// Re-plans a user from what the tenant holds now, with the plan's resolution.
struct PlanRewrite<'a> {
    desired: &'a Desired,
    resolution: &'a Resolution,
    agents: HashMap<&'a UserId, &'a Agent>,
    /// Users the plan strips of their owned assignments (`absent_agents = "strip"`): after a
    /// conflict they are re-planned the same way, as they are not agents.
    absent: HashSet<&'a UserId>,
    allow_empty_skills: bool,
    lists: crate::Lists,
    /// Whether each write carries a copy of the user as read: only a dialect that writes per
    /// definition sends the difference from it. The others ignore it, and copying 30,000
    /// users' lists at 100,000 agents costs memory and time for nothing.
    keep_as_read: bool,
}

impl<'a> PlanRewrite<'a> {
    fn new(
        desired: &'a Desired,
        (resolution, users): (&'a Resolution, &'a [UserPlan]),
        allow_empty_skills: bool,
        lists: crate::Lists,
    ) -> Self {
        PlanRewrite {
            desired,
            resolution,
            agents: desired.agents.values().map(|a| (&a.user_id, a)).collect(),
            absent: users
                .iter()
                .filter(|u| u.absent_from_hris)
                .map(|u| &u.user_id)
                .collect(),
            allow_empty_skills,
            lists,
            keep_as_read: true,
        }
    }

    fn materialize(&self, list: &[PlannedAssignment]) -> Vec<Assignment> {
        list.iter()
            .filter_map(|p| {
                let id = match &p.definition {
                    DefinitionRef::Existing(id) => id.clone(),
                    DefinitionRef::New { code, locale } => {
                        match self.resolution.definition(code, locale) {
                            Some(DefinitionRef::Existing(id)) => id.clone(),
                            _ => return None,
                        }
                    }
                };
                Some(Assignment {
                    definition: id,
                    level: p.level,
                    active: p.active,
                })
            })
            .collect()
    }

    fn write_for(&self, user: &UserPlan, read: Option<&UserAssignments>) -> UserWrite {
        let (skills, proficiencies) = match self.lists {
            crate::Lists::Both => (true, true),
            crate::Lists::Skills => (true, false),
            crate::Lists::Proficiencies => (false, true),
        };
        UserWrite {
            user_id: user.user_id.clone(),
            version: user.version,
            skills: user
                .skills
                .as_ref()
                .filter(|_| skills)
                .map(|l| self.materialize(&l.after)),
            proficiencies: user
                .proficiencies
                .as_ref()
                .filter(|_| proficiencies)
                .map(|l| self.materialize(&l.after)),
            as_read: read.filter(|_| self.keep_as_read).cloned(),
        }
    }
}

impl Rewrite for PlanRewrite<'_> {
    fn rewrite(&self, live: &UserAssignments) -> Rewritten {
        let replanned = match self.agents.get(&live.user_id) {
            Some(agent) => {
                let empty = Default::default();
                let wanted = self
                    .desired
                    .assignments
                    .get(&agent.employee_id)
                    .unwrap_or(&empty);
                self.resolution
                    .plan_user(agent, wanted, &self.desired.catalog.kinds, live)
            }
            None if self.absent.contains(&live.user_id) => self.resolution.plan_absent_user(live),
            None => return Rewritten::Refused("not an agent of the HRIS".into()),
        };
        match replanned {
            None => Rewritten::Current,
            Some(user)
                if user.left_without_skills
                    && !self.allow_empty_skills
                    && self.lists != crate::Lists::Proficiencies =>
            {
                Rewritten::Refused(
                    "would be left with no skills after re-reading; not written (pass --allow-empty-skills if intended)".into(),
                )
            }
            Some(user) => match self.write_for(&user, Some(live)) {
                // What differs is in the list this run does not write.
                UserWrite {
                    skills: None,
                    proficiencies: None,
                    ..
                } => Rewritten::Current,
                write => Rewritten::Write(write),
            },
        }
    }
}

/// Records the definitions skillsync manages from now on: those this run created (or bound to
/// one another writer made meanwhile) and those it adopts. Each mapping says which tenant
/// definition its (code, locale) is, for later runs' ownership checks and for audits.
async fn remember_mappings(
    journal: JournalRun<'_>,
    desired: &Desired,
    resolution: &Resolution,
    bound_now: &HashSet<DefinitionId>,
    adopt: &Adopt,
) -> Result<(), skillsync_store::StoreError> {
    let now = jiff::Timestamp::now();
    let mappings: Vec<skillsync_store::Mapping> = desired
        .catalog
        .entries
        .values()
        .filter_map(
            |entry| match resolution.definition(&entry.code, &entry.locale)? {
                DefinitionRef::Existing(id)
                    if bound_now.contains(id) || adopt.covers(&entry.code) =>
                {
                    Some(skillsync_store::Mapping {
                        code: entry.code.to_string(),
                        locale: entry.locale.to_string(),
                        kind: entry.kind.noun().to_string(),
                        definition_id: id.to_string(),
                        seen_at: now,
                    })
                }
                _ => None,
            },
        )
        .collect();
    journal.journal.remember_mappings(&mappings).await
}

/// Creates, reactivates and updates definitions; `Err` names the step that failed (the run
/// then writes no user: their writes would refer to it).
/// Where the dialect creates several definitions in one call and the listing just read
/// found them absent: the creates of the plan in as few calls as that allows. Returns the
/// plan's actions done; any other (a refusal, a lost answer) is left to the one-by-one
/// `ensure_definition`, which looks before it posts again.
async fn create_in_batches(
    api: &dyn TenantApi,
    plan: &mut Plan,
    report: &mut ApplyReport,
    writer: &Writer<'_>,
    looked_up: LookedUp,
) -> HashSet<usize> {
    let mut done = HashSet::new();
    let Some(most) = api.capabilities().max_create_batch else {
        return done;
    };
    if looked_up != LookedUp::Absent {
        return done;
    }
    let creates: Vec<(usize, NewDefinition)> = plan
        .definitions
        .iter()
        .enumerate()
        .filter(|(_, a)| a.action == DefinitionActionKind::Create)
        .map(|(at, action)| {
            (
                at,
                NewDefinition {
                    kind: action.kind,
                    name: action.name.clone(),
                    locale: action.locale.clone(),
                    description: action.description.clone(),
                    routing_profile_id: action.routing_profile_id.clone(),
                },
            )
        })
        .collect();
    for batch in creates.chunks(most.max(1)) {
        if writer.should_stop().await.is_some() {
            break;
        }
        let news: Vec<NewDefinition> = batch.iter().map(|(_, n)| n.clone()).collect();
        let outcomes = match api.create_definitions(&news).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::debug!(error = %crate::explain(&error), "batch create failed; creating one by one");
                continue;
            }
        };
        let mut records = Vec::new();
        for ((at, _), outcome) in batch.iter().zip(outcomes) {
            let Ok(definition) = outcome else { continue };
            let action = &plan.definitions[*at];
            let (code, locale) = (action.code.clone(), action.locale.clone());
            plan.resolution.bind(&code, &locale, definition.id.clone());
            records.push(Entry {
                target: WriteTarget::Definition,
                subject: definition.id.to_string(),
                before: Snapshot::Absent,
                after: entries::definition(&definition),
                status: WriteStatus::Applied,
                detail: None,
                routes: false,
            });
            report.definitions_created += 1;
            done.insert(*at);
        }
        writer.record(records).await;
    }
    done
}

async fn ensure_definitions(
    api: &dyn TenantApi,
    plan: &mut Plan,
    report: &mut ApplyReport,
    writer: &Writer<'_>,
    progress: Progress<'_>,
    looked_up: LookedUp,
) -> Result<(), String> {
    let record = async |subject: String, before: Snapshot, after: Snapshot| {
        writer
            .record(vec![Entry {
                target: WriteTarget::Definition,
                subject,
                before,
                after,
                status: WriteStatus::Applied,
                detail: None,
                routes: false,
            }])
            .await;
    };
    let total = plan.definitions.len();
    let created_in_batches = create_in_batches(api, plan, report, writer, looked_up).await;
    for done in 0..total {
        progress(Phase::Definitions, done, total);
        if let Some(why) = writer.should_stop().await {
            return Err(why.to_string());
        }
        if created_in_batches.contains(&done) {
            continue;
        }
        let action = plan.definitions[done].clone();
        let failed = |verb: &str, source: Error| {
            format!(
                "{verb} {} {} ({}) failed: {source}",
                action.kind, action.name, action.locale
            )
        };
        match action.action {
            DefinitionActionKind::Create => {
                let new = NewDefinition {
                    kind: action.kind,
                    name: action.name.clone(),
                    locale: action.locale.clone(),
                    description: action.description.clone(),
                    routing_profile_id: action.routing_profile_id.clone(),
                };
                let ensured = api
                    .ensure_definition_after(&new, looked_up)
                    .await
                    .map_err(|e| failed("create", e))?;
                plan.resolution
                    .bind(&action.code, &action.locale, ensured.definition.id.clone());
                if ensured.created {
                    record(
                        ensured.definition.id.to_string(),
                        Snapshot::Absent,
                        entries::definition(&ensured.definition),
                    )
                    .await;
                }
                report.definitions_created += usize::from(ensured.created);
            }
            DefinitionActionKind::Reactivate | DefinitionActionKind::Update => {
                let verb = if action.action == DefinitionActionKind::Reactivate {
                    "reactivate"
                } else {
                    "update"
                };
                let Some(existing) = &action.existing else {
                    continue;
                };
                let mut wanted = existing.clone();
                wanted.active = true;
                wanted.description = action.description.clone();
                wanted.routing_profile_id = action.routing_profile_id.clone();
                let mut read = existing.clone();
                let written = match api.update_definition(&wanted).await {
                    Ok(written) => written,
                    Err(Error::Conflict { .. }) => {
                        // Someone touched it since we read it: take their version, keep our fields.
                        read = api
                            .find_definitions(action.kind, &action.name, &action.locale)
                            .await
                            .map_err(|e| failed(verb, e))?
                            .into_iter()
                            .find(|d| d.id == existing.id)
                            .ok_or_else(|| {
                                failed(
                                    verb,
                                    Error::NotFound {
                                        what: "definition",
                                        id: existing.id.to_string(),
                                    },
                                )
                            })?;
                        wanted.version = read.version;
                        api.update_definition(&wanted)
                            .await
                            .map_err(|e| failed(verb, e))?
                    }
                    Err(e) => return Err(failed(verb, e)),
                };
                record(
                    existing.id.to_string(),
                    entries::definition(&read),
                    entries::definition(&written),
                )
                .await;
                if action.action == DefinitionActionKind::Reactivate {
                    report.definitions_reactivated += 1;
                } else {
                    report.definitions_updated += 1;
                }
            }
        }
    }
    progress(Phase::Definitions, total, total);
    Ok(())
}
