//! Executing a plan: definitions first (ensured idempotently), then the skills path, then the
//! users whose only change is to proficiencies (the eventual path). A write that meets a
//! conflict, or whose outcome is unknown, is re-read and re-planned from the tenant's current
//! state, so another integration's change made at any moment survives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::json;
use skillsync_core::plan::{
    DefinitionActionKind, DefinitionRef, PlannedAssignment, UserPlan, WriteMode,
};
use skillsync_core::{Assignment, Desired, Plan, Resolution, UserId};
use skillsync_cxone::{EntryOutcome, Error, LookedUp, NewDefinition, TenantApi, UserWrite};
use skillsync_store::{Journal, RunId, WriteRecord, WriteStatus, WriteTarget};

use crate::fan_out::fan_out;

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
    /// How long a skill change takes to reach the routing cache (for settles-at).
    pub propagation_window: std::time::Duration,
    /// When the live read the plan came from started (its definitions listing came after). A
    /// read this recent already looked every definition to create up, so creates skip a second
    /// look-up (see [`LIVE_READ_COUNTS_AS_LOOKUP_FOR`]); `None` looks each one up again.
    pub live_read_at: Option<Instant>,
    /// When the sync window closes: no user write is scheduled from then on, and the users not
    /// yet written are left for the next window. `None` when there is no window (or `--now`).
    pub write_until: Option<jiff::Timestamp>,
}

/// How long a live read stands in for the look-up before a create. Long enough for the plan
/// and the guards between read and write; short enough that a run paused at its confirmation
/// prompt looks again.
pub const LIVE_READ_COUNTS_AS_LOOKUP_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            bulk_batch_size: 100,
            concurrency: 4,
            conflict_retries: 5,
            max_failures: 20,
            max_failure_share: 0.05,
            allow_empty_skills: false,
            propagation_window: std::time::Duration::from_secs(30),
            live_read_at: None,
            write_until: None,
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

/// Where the run's writes are journaled.
#[derive(Clone, Copy)]
pub struct JournalRun<'a> {
    /// The journal.
    pub journal: &'a dyn Journal,
    /// The run the writes belong to.
    pub run: RunId,
}

/// Runs the plan. `resolution` is the one the plan was made with; ids of created definitions
/// are bound into it. Every write is recorded in `journal` as it completes.
pub async fn apply(
    api: &dyn TenantApi,
    desired: &Desired,
    plan: &Plan,
    mut resolution: Resolution,
    options: ApplyOptions,
    journal: Option<JournalRun<'_>>,
    progress: Progress<'_>,
) -> Result<ApplyReport, DefinitionFailed> {
    let started = Instant::now();
    let mut report = ApplyReport::default();
    let looked_up = match options.live_read_at {
        Some(at) if at.elapsed() < LIVE_READ_COUNTS_AS_LOOKUP_FOR => LookedUp::Absent,
        _ => LookedUp::No,
    };
    ensure_definitions(
        api,
        plan,
        &mut resolution,
        &mut report,
        journal,
        progress,
        looked_up,
    )
    .await?;
    if let Some(j) = journal {
        remember_mappings(j, desired, &resolution);
    }
    let changes: HashMap<UserId, serde_json::Value> = plan
        .users
        .iter()
        .map(|u| (u.user_id.clone(), json!(u.changes().collect::<Vec<_>>())))
        .collect();

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
        unknown: AtomicUsize::new(0),
        last_write: Mutex::new(None),
        journal,
        journal_failed: Mutex::new(None),
        changes,
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
    // The same rule that stopped scheduling (journal failure, or failures past the threshold)
    // labels the report, so it never says "stopped" for a run that went to the end.
    if report.stopped_early.is_none() {
        report.stopped_early = run.should_stop();
    }
    report.users_updated = run.updated.load(Ordering::Relaxed);
    report.users_already_current = run.current.load(Ordering::Relaxed);
    report.conflicts = run.conflicts.load(Ordering::Relaxed);
    report.users_failed = run.failed.into_inner().unwrap_or_default();
    report.last_write_at = *run.last_write.lock().expect("not poisoned");
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Records which tenant definition each (code, locale) resolved to, so later runs and audits
/// can see the mapping without re-deriving it.
fn remember_mappings(journal: JournalRun<'_>, desired: &Desired, resolution: &Resolution) {
    let now = jiff::Timestamp::now();
    let mappings: Vec<skillsync_store::Mapping> = desired
        .catalog
        .entries
        .values()
        .filter_map(
            |entry| match resolution.definition(&entry.code, &entry.locale)? {
                DefinitionRef::Existing(id) => Some(skillsync_store::Mapping {
                    code: entry.code.to_string(),
                    locale: entry.locale.to_string(),
                    kind: entry.kind.noun().to_string(),
                    definition_id: id.to_string(),
                    seen_at: now,
                }),
                DefinitionRef::New { .. } => None,
            },
        )
        .collect();
    if let Err(error) = journal.journal.remember_mappings(&mappings) {
        tracing::error!(%error, "cannot journal the definition mapping");
    }
}

async fn ensure_definitions(
    api: &dyn TenantApi,
    plan: &Plan,
    resolution: &mut Resolution,
    report: &mut ApplyReport,
    journal: Option<JournalRun<'_>>,
    progress: Progress<'_>,
    looked_up: LookedUp,
) -> Result<(), DefinitionFailed> {
    let record = |subject: String, before: serde_json::Value, after: serde_json::Value| {
        if let Some(j) = journal {
            let entry = WriteRecord {
                run: j.run,
                target: WriteTarget::Definition,
                subject,
                before,
                after,
                status: WriteStatus::Applied,
                detail: None,
                at: jiff::Timestamp::now(),
                settles_at: None,
            };
            if let Err(error) = j.journal.record_writes(&[entry]) {
                tracing::error!(%error, "cannot journal a definition write");
            }
        }
    };
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
                    .ensure_definition_after(&new, looked_up)
                    .await
                    .map_err(|e| failed("create", e))?;
                resolution.bind(&action.code, &action.locale, ensured.definition.id.clone());
                if ensured.created {
                    record(
                        ensured.definition.id.to_string(),
                        serde_json::Value::Null,
                        json!(ensured.definition),
                    );
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
                record(existing.id.to_string(), json!(existing), json!(wanted));
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
    /// Writes that stayed unknown after every retry (re-read later).
    unknown: AtomicUsize,
    last_write: Mutex<Option<jiff::Timestamp>>,
    journal: Option<JournalRun<'a>>,
    journal_failed: Mutex<Option<String>>,
    /// Per user, the plan's changes (each with its before and after), journaled as `before`.
    changes: HashMap<UserId, serde_json::Value>,
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

    /// Journals user writes; a journal that cannot be written stops the run, since an
    /// unrecorded write is one an auditor cannot account for.
    fn record(&self, writes: &[(&UserWrite, WriteStatus, Option<String>)]) {
        let Some(j) = self.journal else { return };
        let at = jiff::Timestamp::now();
        let settles =
            jiff::SignedDuration::try_from(self.options.propagation_window).unwrap_or_default();
        let entries: Vec<WriteRecord> = writes
            .iter()
            .map(|(write, status, detail)| WriteRecord {
                run: j.run,
                target: if write.skills.is_some() { WriteTarget::UserSkills } else { WriteTarget::UserProficiencies },
                subject: write.user_id.to_string(),
                before: self.changes.get(&write.user_id).cloned().unwrap_or_default(),
                after: json!({ "version": write.version, "skills": write.skills, "proficiencies": write.proficiencies }),
                status: *status,
                detail: detail.clone(),
                at,
                // Only skills route, so only they have anything to settle.
                settles_at: (*status == WriteStatus::Applied && write.skills.is_some())
                    .then(|| at.checked_add(settles).ok())
                    .flatten(),
            })
            .collect();
        if let Err(error) = j.journal.record_writes(&entries) {
            tracing::error!(%error, "cannot journal writes");
            self.journal_failed
                .lock()
                .expect("not poisoned")
                .get_or_insert(format!("stopped: the journal cannot be written ({error})"));
        }
    }

    fn should_stop(&self) -> Option<String> {
        if let Some(why) = self.journal_failed.lock().expect("not poisoned").clone() {
            return Some(why);
        }
        if let Some(until) = self.options.write_until
            && jiff::Timestamp::now() >= until
        {
            return Some(format!(
                "stopped: the sync window closed at {}; the users not yet written are left for the next window (apply again then, or with --now)",
                until.strftime("%Y-%m-%d %H:%M UTC")
            ));
        }
        // Writes whose outcome stayed unknown after every retry count too: a tenant answering
        // only 5xx is as broken as one refusing every write.
        let failed =
            self.failed.lock().expect("not poisoned").len() + self.unknown.load(Ordering::Relaxed);
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
        let batches: Vec<Vec<UserWrite>> = writes
            .chunks(self.options.bulk_batch_size.max(1))
            .map(<[UserWrite]>::to_vec)
            .collect();
        let outcomes = fan_out(
            batches,
            self.options.concurrency,
            Vec::len,
            |done| progress(phase, done, total),
            |batch| async move {
                if self.should_stop().is_some() {
                    return Vec::new();
                }
                self.attempted.fetch_add(batch.len(), Ordering::Relaxed);
                let result = self.api.write_users(&batch).await;
                self.wrote();
                let mut retry = Vec::new();
                let mut journal = Vec::with_capacity(batch.len());
                match result {
                    Ok(outcomes) => {
                        for (write, outcome) in batch.iter().zip(outcomes) {
                            match outcome {
                                EntryOutcome::Applied(_) => {
                                    self.updated.fetch_add(1, Ordering::Relaxed);
                                    journal.push((write, WriteStatus::Applied, None));
                                }
                                EntryOutcome::Conflict => {
                                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                                    retry.push(write.user_id.clone());
                                    journal.push((
                                        write,
                                        WriteStatus::Conflict,
                                        Some("412: re-read and re-merged".to_string()),
                                    ));
                                }
                                EntryOutcome::NotFound => {
                                    let why = "the user no longer exists in the tenant".to_string();
                                    self.fail(&write.user_id, why.clone());
                                    journal.push((write, WriteStatus::Failed, Some(why)));
                                }
                                EntryOutcome::Rejected(why) => {
                                    self.fail(&write.user_id, why.clone());
                                    journal.push((write, WriteStatus::Failed, Some(why)));
                                }
                            }
                        }
                    }
                    // The batch's outcome is unknown: each user is re-read before anything is sent again.
                    Err(error) if error.is_transient() => {
                        for write in &batch {
                            retry.push(write.user_id.clone());
                            self.unknown.fetch_add(1, Ordering::Relaxed);
                            journal.push((write, WriteStatus::Unknown, Some(error.to_string())));
                        }
                    }
                    Err(error) => {
                        for write in &batch {
                            self.fail(&write.user_id, error.to_string());
                            journal.push((write, WriteStatus::Failed, Some(error.to_string())));
                        }
                    }
                }
                self.record(&journal);
                retry
            },
        )
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
        let outcomes = fan_out(
            writes,
            self.options.concurrency,
            |_| 1,
            |done| progress(phase, done, total),
            |write| async move {
                if self.should_stop().is_some() {
                    return None;
                }
                self.attempted.fetch_add(1, Ordering::Relaxed);
                let result = self.api.write_user(&write).await;
                self.wrote();
                let (retry, status, detail) = match result {
                    Ok(_) => {
                        self.updated.fetch_add(1, Ordering::Relaxed);
                        (None, WriteStatus::Applied, None)
                    }
                    Err(Error::Conflict { .. }) => {
                        self.conflicts.fetch_add(1, Ordering::Relaxed);
                        (
                            Some(write.user_id.clone()),
                            WriteStatus::Conflict,
                            Some("stale version: re-read and re-merged".to_string()),
                        )
                    }
                    Err(error) if error.is_transient() => {
                        self.unknown.fetch_add(1, Ordering::Relaxed);
                        (
                            Some(write.user_id.clone()),
                            WriteStatus::Unknown,
                            Some(error.to_string()),
                        )
                    }
                    Err(error) => {
                        self.fail(&write.user_id, error.to_string());
                        (None, WriteStatus::Failed, Some(error.to_string()))
                    }
                };
                self.record(&[(&write, status, detail)]);
                retry
            },
        )
        .await;
        outcomes.into_iter().flatten().collect()
    }

    /// Re-reads each user, re-plans it from what the tenant holds now (only catalog
    /// definitions change), and writes with the fresh version; bounded per user.
    async fn remerge(&self, users: Vec<UserId>, progress: Progress<'_>) {
        let total = users.len();
        fan_out(
            users,
            self.options.concurrency,
            |_| 1,
            |done| progress(Phase::Conflicts, done, total),
            |user_id| async move {
                self.remerge_one(&user_id).await;
            },
        )
        .await;
    }

    async fn remerge_one(&self, user_id: &UserId) {
        let Some(agent) = self.agents.get(user_id) else {
            return;
        };
        if let Some(reason) = self.should_stop() {
            self.fail(user_id, format!("not retried: {reason}"));
            return;
        }
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
                // The tenant already holds what the HRIS says: the earlier write whose outcome
                // was unknown did land (or matched someone else's). Journal the confirmation so
                // the journal accounts for the change.
                let confirmed = UserWrite {
                    user_id: live.user_id.clone(),
                    version: live.version,
                    skills: Some(live.skills.clone()),
                    proficiencies: live.proficiencies.clone(),
                };
                self.record(&[(
                    &confirmed,
                    WriteStatus::Applied,
                    Some("confirmed by re-reading the user".to_string()),
                )]);
                self.current.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if replanned.left_without_skills && !self.options.allow_empty_skills {
                self.fail(user_id, "would be left with no skills after re-reading; not written (pass --allow-empty-skills if intended)".into());
                return;
            }
            let write = self.write_for(&replanned);
            let result = self.api.write_user(&write).await;
            self.wrote();
            match result {
                Ok(_) => {
                    self.record(&[(&write, WriteStatus::Applied, Some("re-merged".to_string()))]);
                    self.updated.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(Error::Conflict { .. }) => {
                    self.record(&[(
                        &write,
                        WriteStatus::Conflict,
                        Some("stale version again".to_string()),
                    )]);
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    last_error = "the user kept changing under us".into();
                }
                Err(error) if error.is_transient() => {
                    self.record(&[(&write, WriteStatus::Unknown, Some(error.to_string()))]);
                    last_error = error.to_string();
                }
                Err(error) => {
                    self.record(&[(&write, WriteStatus::Failed, Some(error.to_string()))]);
                    last_error = error.to_string();
                    break;
                }
            }
        }
        self.fail(user_id, last_error);
    }
}
