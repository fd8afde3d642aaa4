//! Executing a plan: definitions first (ensured idempotently), then the skills path, then the
//! users whose only change is to proficiencies (the eventual path). A write that meets a
//! conflict, or whose outcome is unknown, is re-read and re-planned from the tenant's current
//! state, so another integration's change made at any moment survives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cxone::{EntryOutcome, Error, NewDefinition, TenantApi, UserWrite};
use futures::StreamExt;
use skillsync_core::plan::{
    DefinitionActionKind, DefinitionRef, PlannedAssignment, UserPlan, WriteMode,
};
use skillsync_core::{Assignment, Desired, Plan, Resolution, UserId};

/// How the run writes.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Users per bulk request.
    pub bulk_batch_size: usize,
    /// Requests in flight at once (the client's cap still applies).
    pub concurrency: usize,
    /// Re-read and re-merge attempts per user after conflicts.
    pub conflict_retries: u32,
    /// Stop scheduling writes once this many users have failed...
    pub max_failures: usize,
    /// ...and they are more than this share of the users attempted.
    pub max_failure_share: f64,
    /// Whether an agent may be left with no skills (the HRIS really says so).
    pub allow_empty_skills: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            bulk_batch_size: 100,
            concurrency: 4,
            conflict_retries: 5,
            max_failures: 20,
            max_failure_share: 0.05,
            allow_empty_skills: false,
        }
    }
}

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
    /// Users whose write was applied.
    pub users_updated: usize,
    /// Users that needed nothing after a re-read (someone else, or an earlier attempt, got there).
    pub users_already_current: usize,
    /// Users that could not be written, with the reason.
    pub users_failed: Vec<(UserId, String)>,
    /// Conflicts met and re-merged.
    pub conflicts: usize,
    /// Why the run stopped early, if it did.
    pub stopped_early: Option<String>,
    /// When the last write was sent (its change settles in the routing cache after the
    /// propagation window).
    pub last_write_at: Option<jiff::Timestamp>,
    /// Elapsed time.
    pub elapsed: std::time::Duration,
}

/// A definition step failed: the run stops before any user write, since user writes would
/// refer to it.
#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name} ({locale}) failed: {source}")]
pub struct DefinitionFailed {
    action: &'static str,
    kind: skillsync_core::Kind,
    name: String,
    locale: skillsync_core::Locale,
    #[source]
    source: Error,
}

/// Runs the plan. `resolution` is the one the plan was made with; ids of created definitions
/// are bound into it.
pub async fn apply(
    api: &dyn TenantApi,
    desired: &Desired,
    plan: &Plan,
    mut resolution: Resolution,
    options: ApplyOptions,
    progress: Progress<'_>,
) -> Result<ApplyReport, DefinitionFailed> {
    let started = Instant::now();
    let mut report = ApplyReport::default();
    ensure_definitions(api, plan, &mut resolution, &mut report, progress).await?;

    let agents: HashMap<&UserId, &skillsync_core::Agent> =
        desired.agents.values().map(|a| (&a.user_id, a)).collect();
    let run = Run {
        api,
        desired,
        resolution: &resolution,
        agents,
        options,
        failed: Mutex::new(Vec::new()),
        updated: AtomicUsize::new(0),
        current: AtomicUsize::new(0),
        conflicts: AtomicUsize::new(0),
        attempted: AtomicUsize::new(0),
        last_write: Mutex::new(None),
    };
    let bulk = plan.write_mode == WriteMode::Bulk && api.capabilities().max_bulk_entries.is_some();
    // Users with skill changes carry their proficiency changes in the same write: one request
    // instead of two. Users whose only change is to proficiencies go after every skill write.
    let (skill_users, proficiency_users): (Vec<&UserPlan>, Vec<&UserPlan>) =
        plan.users.iter().partition(|u| u.skills.is_some());
    let mut retry = Vec::new();
    for (phase, users) in [
        (Phase::Skills, skill_users),
        (Phase::Proficiencies, proficiency_users),
    ] {
        if let Some(reason) = run.should_stop() {
            report.stopped_early = Some(reason);
            break;
        }
        let writes: Vec<UserWrite> = users.iter().map(|u| run.write_for(u)).collect();
        retry.extend(if bulk {
            run.write_bulk(phase, writes, progress).await
        } else {
            run.write_single(phase, writes, progress).await
        });
    }
    if report.stopped_early.is_none() && !retry.is_empty() {
        run.remerge(retry, progress).await;
    }
    report.users_updated = run.updated.load(Ordering::Relaxed);
    report.users_already_current = run.current.load(Ordering::Relaxed);
    report.conflicts = run.conflicts.load(Ordering::Relaxed);
    report.users_failed = run.failed.into_inner().unwrap_or_default();
    report.last_write_at = *run.last_write.lock().expect("not poisoned");
    if report.stopped_early.is_none() {
        report.stopped_early = run_stop_reason(&report, &options);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn run_stop_reason(report: &ApplyReport, options: &ApplyOptions) -> Option<String> {
    (report.users_failed.len() > options.max_failures).then(|| {
        format!(
            "{} users failed; the tenant looks broken",
            report.users_failed.len()
        )
    })
}

async fn ensure_definitions(
    api: &dyn TenantApi,
    plan: &Plan,
    resolution: &mut Resolution,
    report: &mut ApplyReport,
    progress: Progress<'_>,
) -> Result<(), DefinitionFailed> {
    let total = plan.definitions.len();
    for (done, action) in plan.definitions.iter().enumerate() {
        progress(Phase::Definitions, done, total);
        let failed = |verb: &'static str, source: Error| DefinitionFailed {
            action: verb,
            kind: action.kind,
            name: action.name.clone(),
            locale: action.locale.clone(),
            source,
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
                    .ensure_definition(&new)
                    .await
                    .map_err(|e| failed("create", e))?;
                resolution.bind(&action.code, &action.locale, ensured.definition.id.clone());
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
                match api.update_definition(&wanted).await {
                    Ok(_) => {}
                    Err(Error::Conflict { .. }) => {
                        // Someone touched it since we read it: take their version, keep our fields.
                        let fresh = api
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
                        wanted.version = fresh.version;
                        api.update_definition(&wanted)
                            .await
                            .map_err(|e| failed(verb, e))?;
                    }
                    Err(e) => return Err(failed(verb, e)),
                }
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

struct Run<'a> {
    api: &'a dyn TenantApi,
    desired: &'a Desired,
    resolution: &'a Resolution,
    agents: HashMap<&'a UserId, &'a skillsync_core::Agent>,
    options: ApplyOptions,
    failed: Mutex<Vec<(UserId, String)>>,
    updated: AtomicUsize,
    current: AtomicUsize,
    conflicts: AtomicUsize,
    attempted: AtomicUsize,
    last_write: Mutex<Option<jiff::Timestamp>>,
}

impl Run<'_> {
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

    fn write_for(&self, user: &UserPlan) -> UserWrite {
        UserWrite {
            user_id: user.user_id.clone(),
            version: user.version,
            skills: user.skills.as_ref().map(|l| self.materialize(&l.after)),
            proficiencies: user
                .proficiencies
                .as_ref()
                .map(|l| self.materialize(&l.after)),
        }
    }

    fn should_stop(&self) -> Option<String> {
        let failed = self.failed.lock().expect("not poisoned").len();
        let attempted = self.attempted.load(Ordering::Relaxed).max(1);
        (failed > self.options.max_failures && failed as f64 / attempted as f64 > self.options.max_failure_share)
            .then(|| format!("stopped: {failed} of {attempted} users failed, more than the tenant should fail; see the failures below"))
    }

    fn fail(&self, user: &UserId, reason: String) {
        self.failed
            .lock()
            .expect("not poisoned")
            .push((user.clone(), reason));
    }

    fn wrote(&self) {
        *self.last_write.lock().expect("not poisoned") = Some(jiff::Timestamp::now());
    }

    /// Bulk writes; returns the users to re-read and re-merge.
    async fn write_bulk(
        &self,
        phase: Phase,
        writes: Vec<UserWrite>,
        progress: Progress<'_>,
    ) -> Vec<UserId> {
        let total = writes.len();
        let done = &AtomicUsize::new(0);
        let batches: Vec<Vec<UserWrite>> = writes
            .chunks(self.options.bulk_batch_size.max(1))
            .map(<[UserWrite]>::to_vec)
            .collect();
        let outcomes = futures::stream::iter(batches)
            .map(|batch| async move {
                if self.should_stop().is_some() {
                    return Vec::new();
                }
                self.attempted.fetch_add(batch.len(), Ordering::Relaxed);
                let result = self.api.write_users(&batch).await;
                self.wrote();
                let mut retry = Vec::new();
                match result {
                    Ok(outcomes) => {
                        for (write, outcome) in batch.iter().zip(outcomes) {
                            match outcome {
                                EntryOutcome::Applied(_) => {
                                    self.updated.fetch_add(1, Ordering::Relaxed);
                                }
                                EntryOutcome::Conflict => {
                                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                                    retry.push(write.user_id.clone());
                                }
                                EntryOutcome::NotFound => self.fail(
                                    &write.user_id,
                                    "the user no longer exists in the tenant".into(),
                                ),
                                EntryOutcome::Rejected(why) => self.fail(&write.user_id, why),
                            }
                        }
                    }
                    // The batch's outcome is unknown: each user is re-read before anything is sent again.
                    Err(error) if error.is_transient() => {
                        retry.extend(batch.iter().map(|w| w.user_id.clone()))
                    }
                    Err(error) => {
                        for write in &batch {
                            self.fail(&write.user_id, error.to_string());
                        }
                    }
                }
                let now = done.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                progress(phase, now, total);
                retry
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        outcomes.into_iter().flatten().collect()
    }

    /// Single merge updates with `If-Match`; returns the users to re-read and re-merge.
    async fn write_single(
        &self,
        phase: Phase,
        writes: Vec<UserWrite>,
        progress: Progress<'_>,
    ) -> Vec<UserId> {
        let total = writes.len();
        let done = &AtomicUsize::new(0);
        let outcomes = futures::stream::iter(writes)
            .map(|write| async move {
                if self.should_stop().is_some() {
                    return None;
                }
                self.attempted.fetch_add(1, Ordering::Relaxed);
                let result = self.api.write_user(&write).await;
                self.wrote();
                let retry = match result {
                    Ok(_) => {
                        self.updated.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                    Err(Error::Conflict { .. }) => {
                        self.conflicts.fetch_add(1, Ordering::Relaxed);
                        Some(write.user_id.clone())
                    }
                    Err(error) if error.is_transient() => Some(write.user_id.clone()),
                    Err(error) => {
                        self.fail(&write.user_id, error.to_string());
                        None
                    }
                };
                progress(phase, done.fetch_add(1, Ordering::Relaxed) + 1, total);
                retry
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        outcomes.into_iter().flatten().collect()
    }

    /// Re-reads each user, re-plans it from what the tenant holds now (only catalog
    /// definitions change), and writes with the fresh version; bounded per user.
    async fn remerge(&self, users: Vec<UserId>, progress: Progress<'_>) {
        let total = users.len();
        let done = &AtomicUsize::new(0);
        futures::stream::iter(users)
            .map(|user_id| async move {
                self.remerge_one(&user_id).await;
                progress(
                    Phase::Conflicts,
                    done.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                );
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
    }

    async fn remerge_one(&self, user_id: &UserId) {
        let Some(agent) = self.agents.get(user_id) else {
            return;
        };
        let empty = Default::default();
        let wanted = self
            .desired
            .assignments
            .get(&agent.employee_id)
            .unwrap_or(&empty);
        let mut last_error = String::new();
        for _ in 0..self.options.conflict_retries.max(1) {
            let live = match self.api.user(user_id).await {
                Ok(live) => live,
                Err(error) => {
                    last_error = error.to_string();
                    if error.is_transient() {
                        continue;
                    }
                    break;
                }
            };
            let Some(replanned) =
                self.resolution
                    .plan_user(agent, wanted, &self.desired.catalog.kinds, &live)
            else {
                self.current.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if replanned.left_without_skills && !self.options.allow_empty_skills {
                self.fail(user_id, "would be left with no skills after re-reading; not written (pass --allow-empty-skills if intended)".into());
                return;
            }
            match self.api.write_user(&self.write_for(&replanned)).await {
                Ok(_) => {
                    self.wrote();
                    self.updated.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(Error::Conflict { .. }) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    last_error = "the user kept changing under us".into();
                }
                Err(error) if error.is_transient() => last_error = error.to_string(),
                Err(error) => {
                    last_error = error.to_string();
                    break;
                }
            }
        }
        self.fail(user_id, last_error);
    }
}
