//! The engine's front door: one sync, from the desired state to a report. The CLI's `apply`,
//! `demo` and `bench sync` call it and only render what it returns; the service will call the
//! same function with no confirmation hook.
//!
//! Order: window → live read → plan → (show the plan) → guards → confirmation → window again
//! and retirements again (either may have changed while a person read the plan) → run started
//! in the journal → definitions, skills, proficiencies, read-back → run finished with its
//! counts (interrupted when a signal stopped it).

use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use skillsync_core::plan::WriteMode;
use skillsync_core::{Adopt, Desired, Ownership, Plan, PlanOptions, Problem, UserId, Window};
use skillsync_cxone::TenantApi;
use skillsync_store::{Journal, RunCounts, RunId, RunOutcome};

use crate::apply::{ApplyContext, ApplyOptions, ApplyReport, Progress, apply};
use crate::guard::{Refusal, RemovalLimit};
use crate::live::{LiveProgress, read_agents, read_live};
use crate::write::{Interrupt, JournalRun, StopReason, WriteOptions};
use crate::{Error, retirements};

/// When writes are allowed: a daily window in the tenant's time zone.
#[derive(Debug, Clone)]
pub struct SyncWindow {
    /// The window.
    pub window: Window,
    /// The tenant's time zone.
    pub zone: TimeZone,
    /// The zone's name, for messages (`Europe/Berlin`).
    pub zone_name: String,
}

impl SyncWindow {
    /// Why writing at `now` is not allowed, or `None` inside the window.
    pub fn refusal(&self, now: Timestamp) -> Option<String> {
        self.refusal_to("apply", now)
    }

    /// [`SyncWindow::refusal`] for another writing command (`retire`).
    pub fn refusal_to(&self, command: &str, now: Timestamp) -> Option<String> {
        self.window
            .outside(now, &self.zone, &self.zone_name, &TimeZone::system())
            .map(|why| format!("{why}. Use --now to {command} anyway"))
    }

    /// When the window open at `now` closes.
    pub fn closes(&self, now: Timestamp) -> Option<Timestamp> {
        Some(self.window.current(now, &self.zone)?.closes.timestamp())
    }
}

/// Which of an agent's lists a sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lists {
    /// Skills and proficiencies (a full sync; an agent's whole record).
    #[default]
    Both,
    /// Skills only: the strict path, one `If-Match` update per agent, at once.
    Skills,
    /// Proficiencies only: the eventual path, in bulk.
    Proficiencies,
}

/// Which agents a sync covers.
#[derive(Debug, Clone, Default)]
pub enum SyncScope {
    /// Every agent of the HRIS, from one read of the whole tenant.
    #[default]
    Everyone,
    /// These agents only (each read on its own), and of them only `lists`: the service's
    /// event paths.
    Agents {
        /// The agents' tenant user ids.
        users: Vec<UserId>,
        /// The lists written.
        lists: Lists,
    },
}

impl SyncScope {
    fn lists(&self) -> Lists {
        match self {
            SyncScope::Everyone => Lists::Both,
            SyncScope::Agents { lists, .. } => *lists,
        }
    }
}

/// What the journal's run is labelled with.
#[derive(Debug, Clone)]
pub struct RunLabel {
    /// The command, e.g. `apply`.
    pub command: String,
    /// A hash of the resolved configuration.
    pub config_hash: String,
    /// `routing` or `users`.
    pub dialect: String,
    /// The tenant's lease the command takes before it reads the tenant; `None` takes none.
    pub lease: Option<crate::LeaseOptions>,
}

/// Everything a sync is told besides the desired state.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How the run is journaled.
    pub run: RunLabel,
    /// How the planner batches.
    pub plan: PlanOptions,
    /// The removal guard.
    pub removal_limit: RemovalLimit,
    /// Whether an agent may be left with no skills.
    pub allow_empty_skills: bool,
    /// The write path's settings (`write_until` is set from the window).
    pub write: WriteOptions,
    /// The sync window; `None` writes at any time (no window, or `--now`).
    pub window: Option<SyncWindow>,
    /// What the run may take over of definitions the journal does not know as skillsync's;
    /// `None` does not check (a caller with no history to check against).
    pub adopt: Option<Adopt>,
    /// Which agents and lists.
    pub scope: SyncScope,
}

/// The caller's say in a sync: progress, the plan shown, the confirmation, a stop signal.
pub struct SyncHooks<'a> {
    /// Called as the live read progresses.
    pub reading: &'a (dyn Fn(LiveProgress) + Sync),
    /// Called with the plan as soon as it is made (the CLI prints it).
    pub planned: &'a (dyn Fn(&Plan) + Sync),
    /// Asked before the first write; `None` proceeds (the service, `--yes`).
    pub confirm: Option<&'a (dyn Fn(&Plan) -> bool + Sync)>,
    /// Called as writes progress.
    pub progress: Progress<'a>,
    /// Raised by a signal: writes in flight finish, no new one starts.
    pub interrupt: Option<&'a Interrupt>,
    /// Asked with the plan before it is shown, guarded or written: an error refuses the run
    /// with that reason (`apply PLANFILE`: the tenant changed since the saved plan). `None`
    /// checks nothing.
    pub check: Option<PlanCheck<'a>>,
}

/// A caller's check of the plan before anything is shown or written ([`SyncHooks::check`]).
pub type PlanCheck<'a> = &'a (dyn Fn(&Plan) -> Result<(), String> + Sync);

impl SyncHooks<'static> {
    /// No progress, no confirmation, no interruption.
    pub fn quiet() -> SyncHooks<'static> {
        SyncHooks {
            reading: &|_| {},
            planned: &|_| {},
            confirm: None,
            progress: &|_, _, _| {},
            interrupt: None,
            check: None,
        }
    }
}

/// How a sync ended.
#[derive(Debug)]
pub enum SyncOutcome {
    /// Outside the sync window: nothing was read or written.
    OutsideWindow(String),
    /// The plan is blocked by these problems (with any warnings); nothing was written.
    Invalid(Vec<Problem>),
    /// The plan would take over definitions skillsync neither created nor adopted (errors
    /// naming them, with any warnings); nothing was written.
    Takeover(Vec<Problem>),
    /// The tenant already matches the HRIS.
    NoChanges,
    /// A guard refused the plan before the first write.
    Refused(Refusal),
    /// The confirmation was declined.
    Declined,
    /// A code was retired (`skillsync retire`) while the plan was made; nothing written.
    RetiredMeanwhile,
    /// The plan was applied (fully or not: see the report).
    Applied(ApplyReport),
}

/// What a sync did.
#[derive(Debug)]
pub struct SyncReport {
    /// The plan, once made.
    pub plan: Option<Plan>,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// The journal's run: every sync that got past the first window check and took the lease has one.
    pub run: Option<RunId>,
    /// When the routing cache will have settled on the run's writes.
    pub settles_at: Option<Timestamp>,
    /// The journal failed to record the run's end: the report stands, the journal is short.
    pub journal_error: Option<Error>,
    /// Users of a scoped sync the tenant does not have (the plan skipped their agents).
    pub absent: Vec<UserId>,
}

impl SyncReport {
    fn ended_as(plan: Option<Plan>, outcome: SyncOutcome) -> SyncReport {
        SyncReport {
            plan,
            outcome,
            run: None,
            settles_at: None,
            journal_error: None,
            absent: Vec::new(),
        }
    }

    /// True when the run changed everything it meant to (or there was nothing to change).
    pub fn succeeded(&self) -> bool {
        if self.journal_error.is_some() {
            return false;
        }
        match &self.outcome {
            SyncOutcome::NoChanges => true,
            SyncOutcome::Applied(report) => report.written.complete(),
            _ => false,
        }
    }

    /// True when a signal stopped the writes.
    pub fn interrupted(&self) -> bool {
        matches!(&self.outcome, SyncOutcome::Applied(report)
            if report.written.stopped == Some(StopReason::Interrupted))
    }
}

/// Syncs the tenant to `desired`. `warnings` are the HRIS files' own, shown with the plan's.
pub async fn sync(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    desired: &Desired,
    warnings: &[Problem],
    options: &SyncOptions,
    hooks: &SyncHooks<'_>,
) -> Result<SyncReport, Error> {
    // Checked before reading the tenant: outside the window, even reads are load it should
    // not carry in its busy hours.
    if let Some(why) = outside(options) {
        return Ok(SyncReport::ended_as(None, SyncOutcome::OutsideWindow(why)));
    }
    // The run's requests include the read it was planned from.
    let requests_before = api.counters().total_requests();
    // Taken before the read: the plan is made from a tenant no other skillsync writes to.
    crate::lease::holding(journal, &options.run, hooks.interrupt, async |lease| {
        let run = crate::lease::begin_run(journal, &options.run, lease).await?;
        under_lease(
            api,
            journal,
            (desired, warnings),
            options,
            hooks,
            requests_before,
            (lease, run),
            None,
        )
        .await
    })
    .await
}

/// The tenant as read while the desired state was prepared, and when that read started.
struct EarlyRead {
    live: skillsync_cxone::Result<skillsync_core::Live>,
    started: Instant,
}

/// What [`sync_prepared`]'s `prepare` gives, computed under the lease.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The desired state (shared: the caller may render the report with it).
    pub desired: std::sync::Arc<Desired>,
    /// Its warnings.
    pub warnings: Vec<Problem>,
    /// For a scope of agents: who they are, as `desired` has them now (an agent added by an
    /// event another holder applied is known only under the lease); replaces the scope's
    /// users. `None` keeps them.
    pub users: Option<Vec<UserId>>,
}

/// The front door for a caller whose desired state is not ready when the lease is taken: it
/// depends on what other holders of the lease did (the service: events another process
/// applied), or its files are still being read (`apply`). `prepare` runs once the lease is
/// held and gives the desired state and its warnings, or [`Error::Invalid`]; the run is
/// journaled from when it succeeds. With `read_from` (a scope of everyone), the tenant is read
/// from that catalog while `prepare` runs, and read again should the desired state's catalog
/// differ; otherwise it is read after. `settle` runs with the report while the lease is still
/// held, so what it records (events applied) is seen by the next holder's `prepare`.
#[allow(clippy::too_many_arguments)]
pub async fn sync_prepared(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    options: &SyncOptions,
    hooks: &SyncHooks<'_>,
    read_from: Option<&skillsync_core::Catalog>,
    prepare: impl AsyncFnOnce() -> Result<Prepared, Error>,
    settle: impl AsyncFnOnce(&SyncReport) -> Result<(), Error>,
) -> Result<SyncReport, Error> {
    if let Some(why) = outside(options) {
        return Ok(SyncReport::ended_as(None, SyncOutcome::OutsideWindow(why)));
    }
    let requests_before = api.counters().total_requests();
    crate::lease::holding(journal, &options.run, hooks.interrupt, async |lease| {
        let prepared_and_begun = async {
            let prepared = prepare().await?;
            let run = crate::lease::begin_run(journal, &options.run, lease).await?;
            Ok::<_, Error>((prepared, run))
        };
        let early = match (read_from, &options.scope) {
            (Some(catalog), SyncScope::Everyone) => Some(catalog),
            _ => None,
        };
        // A prepare that fails drops the read (its requests are cancelled): nothing is written
        // and no run is journaled for input refused before the run began.
        let ((prepared, run), early) = match early {
            Some(catalog) => {
                let read = async {
                    let started = Instant::now();
                    let live = read_live(api, catalog, hooks.reading).await;
                    Ok((catalog, live, started))
                };
                let (begun, read) = futures::future::try_join(prepared_and_begun, read).await?;
                (begun, Some(read))
            }
            None => (prepared_and_begun.await?, None),
        };
        let early = early.and_then(|(catalog, live, started)| {
            // Read from another catalog than the files now name: read again, from theirs.
            (*catalog == prepared.desired.catalog).then_some(EarlyRead { live, started })
        });
        let scoped;
        let options = match (prepared.users, &options.scope) {
            (Some(users), SyncScope::Agents { lists, .. }) => {
                scoped = SyncOptions {
                    scope: SyncScope::Agents {
                        users,
                        lists: *lists,
                    },
                    ..options.clone()
                };
                &scoped
            }
            _ => options,
        };
        let report = under_lease(
            api,
            journal,
            (&prepared.desired, &prepared.warnings),
            options,
            hooks,
            requests_before,
            (lease, run),
            early,
        )
        .await?;
        settle(&report).await?;
        Ok(report)
    })
    .await
}

/// The sync once the lease (if any) is held. The run is journaled from here, not from its
/// first write: one killed while it reads the tenant or waits at the prompt still shows in
/// `history` (as interrupted), and one that ends without writing says why.
#[allow(clippy::too_many_arguments)]
async fn under_lease(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    (desired, warnings): (&Desired, &[Problem]),
    options: &SyncOptions,
    hooks: &SyncHooks<'_>,
    requests_before: u64,
    (lease, run): (Option<&crate::lease::HeldLease<'_>>, RunId),
    early: Option<EarlyRead>,
) -> Result<SyncReport, Error> {
    let result = read_plan_apply(
        api, journal, desired, warnings, options, hooks, run, lease, early,
    )
    .await;
    let requests = api.counters().total_requests() - requests_before;
    let (outcome, counts) = match &result {
        Ok(report) => ended(&report.outcome, requests),
        Err(error) => (
            RunOutcome::Failed,
            RunCounts {
                requests,
                stopped: Some(crate::explain(error)),
                ..RunCounts::default()
            },
        ),
    };
    // Once writes have started the report is never dropped: a journal that fails now is
    // reported beside the users, not instead of them.
    let journaled = match journal
        .finish_run(run, outcome, &counts, Timestamp::now())
        .await
    {
        Ok(()) => journal.settles_at(run).await,
        Err(error) => Err(error),
    };
    let mut report = result?;
    report.run = Some(run);
    match journaled {
        Ok(settles_at) => report.settles_at = settles_at,
        Err(error) => report.journal_error = Some(Error::Journal(error)),
    }
    Ok(report)
}

/// How a sync that ended this way is journaled.
fn ended(outcome: &SyncOutcome, requests: u64) -> (RunOutcome, RunCounts) {
    let why = |text: String| RunCounts {
        requests,
        stopped: Some(text),
        ..RunCounts::default()
    };
    match outcome {
        SyncOutcome::Applied(report) => {
            let outcome = match &report.written.stopped {
                Some(StopReason::Interrupted) => RunOutcome::Interrupted,
                _ if report.written.complete() => RunOutcome::Succeeded,
                _ => RunOutcome::Failed,
            };
            (outcome, run_counts(report, requests))
        }
        SyncOutcome::NoChanges => (
            RunOutcome::Succeeded,
            RunCounts {
                requests,
                ..RunCounts::default()
            },
        ),
        SyncOutcome::Invalid(problems) => {
            let errors = problems.iter().filter(|p| p.is_error()).count();
            (
                RunOutcome::Failed,
                why(format!(
                    "the plan is invalid: {errors} problem(s) with the HRIS files against the tenant; nothing written"
                )),
            )
        }
        SyncOutcome::Takeover(problems) => {
            let definitions = problems.iter().filter(|p| p.is_error()).count();
            (
                RunOutcome::Refused,
                why(format!(
                    "the plan would take over {definitions} definition(s) that skillsync neither created nor adopted (another integration's?); nothing written; adopt them with --adopt CODE"
                )),
            )
        }
        SyncOutcome::Refused(refusal) => (RunOutcome::Refused, why(refusal.to_string())),
        SyncOutcome::Declined => (
            RunOutcome::Refused,
            why("declined at the confirmation prompt; nothing written".into()),
        ),
        SyncOutcome::OutsideWindow(reason) => (RunOutcome::Refused, why(reason.clone())),
        SyncOutcome::RetiredMeanwhile => (
            RunOutcome::Refused,
            why("a code was retired while the plan was made; nothing written".into()),
        ),
    }
}

/// Read, plan, check, write, read back, inside the journal's `run`.
#[allow(clippy::too_many_arguments)]
async fn read_plan_apply(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    desired: &Desired,
    warnings: &[Problem],
    options: &SyncOptions,
    hooks: &SyncHooks<'_>,
    run: RunId,
    lease: Option<&crate::lease::HeldLease<'_>>,
    early: Option<EarlyRead>,
) -> Result<SyncReport, Error> {
    // Stamped before the read: its definitions listing is then no older than this.
    let mut live_read_at = Instant::now();
    let scoped;
    let (desired, live) = match (&options.scope, early) {
        (SyncScope::Everyone, Some(early)) => {
            live_read_at = early.started;
            (desired, early.live)
        }
        (SyncScope::Everyone, None) => (
            desired,
            read_live(api, &desired.catalog, hooks.reading).await,
        ),
        (SyncScope::Agents { users, .. }, _) => {
            scoped = only_agents(desired, users);
            // Each agent on its own costs a call; the listing, a page per PAGE_SIZE users (the
            // HRIS's agents, at least). Many agents at once are cheaper, and sooner, from it.
            let pages = desired.agents.len().div_ceil(skillsync_cxone::PAGE_SIZE);
            let live = if users.len() > 2 * pages.max(1) {
                read_live(api, &desired.catalog, hooks.reading)
                    .await
                    .map(|mut live| {
                        let wanted: std::collections::HashSet<&UserId> = users.iter().collect();
                        live.users.retain(|u| wanted.contains(&u.user_id));
                        live
                    })
            } else {
                read_agents(api, &desired.catalog, users).await
            };
            (&scoped, live)
        }
    };
    let live = live.map_err(|e| Error::ReadTenant(Box::new(e)))?;
    let absent: Vec<UserId> = match &options.scope {
        SyncScope::Everyone => Vec::new(),
        SyncScope::Agents { users, .. } => {
            let read: std::collections::HashSet<&UserId> =
                live.users.iter().map(|u| &u.user_id).collect();
            users
                .iter()
                .filter(|u| !read.contains(u))
                .cloned()
                .collect()
        }
    };
    let mut report = plan_and_apply(
        api,
        journal,
        (desired, warnings),
        (&live, live_read_at),
        options,
        hooks,
        run,
        lease,
    )
    .await?;
    report.absent = absent;
    // Freeing 100,000 users' lists takes a tenth of a second that nothing needs to wait for.
    std::thread::spawn(move || drop(live));
    Ok(report)
}

/// Plan, check, write, read back, once the tenant is read.
#[allow(clippy::too_many_arguments)]
async fn plan_and_apply(
    api: &dyn TenantApi,
    journal: &dyn Journal,
    (desired, warnings): (&Desired, &[Problem]),
    (live, live_read_at): (&skillsync_core::Live, Instant),
    options: &SyncOptions,
    hooks: &SyncHooks<'_>,
    run: RunId,
    lease: Option<&crate::lease::HeldLease<'_>>,
) -> Result<SyncReport, Error> {
    let mut plan = match skillsync_core::plan(desired, live, &options.plan) {
        Ok(mut plan) => {
            plan.warnings.splice(0..0, warnings.iter().cloned());
            plan
        }
        Err(mut problems) => {
            problems.splice(0..0, warnings.iter().cloned());
            return Ok(SyncReport::ended_as(None, SyncOutcome::Invalid(problems)));
        }
    };
    if let Some(adopt) = &options.adopt {
        let ownership = Ownership {
            managed: crate::managed_definitions(journal).await?,
            adopt: adopt.clone(),
        };
        match skillsync_core::check_takeovers(&plan, desired, &ownership) {
            Ok(adoptions) => plan.warnings.extend(adoptions),
            Err(mut conflicts) => {
                conflicts.splice(0..0, plan.warnings.iter().cloned());
                return Ok(SyncReport::ended_as(
                    Some(plan),
                    SyncOutcome::Takeover(conflicts),
                ));
            }
        }
    }
    only_lists(
        &mut plan,
        options.scope.lists(),
        api.capabilities().max_bulk_entries.is_some(),
    );
    if let Some(check) = hooks.check
        && let Err(why) = check(&plan)
    {
        return Ok(SyncReport::ended_as(
            Some(plan),
            SyncOutcome::Refused(Refusal::Outdated(why)),
        ));
    }
    (hooks.planned)(&plan);
    if plan.is_empty() {
        return Ok(SyncReport::ended_as(Some(plan), SyncOutcome::NoChanges));
    }
    if let Err(refusal) =
        crate::guard::check(&plan, options.removal_limit, options.allow_empty_skills)
    {
        return Ok(SyncReport::ended_as(
            Some(plan),
            SyncOutcome::Refused(refusal),
        ));
    }
    if let Some(confirm) = hooks.confirm
        && !confirm(&plan)
    {
        return Ok(SyncReport::ended_as(Some(plan), SyncOutcome::Declined));
    }
    // Asked again: the window may have closed while the plan was read or the prompt waited.
    if let Some(why) = outside(options) {
        return Ok(SyncReport::ended_as(
            Some(plan),
            SyncOutcome::OutsideWindow(why),
        ));
    }
    // A code retired meanwhile is no longer skillsync's to write: this plan may still assign it.
    if retirements(journal).await? != desired.retired {
        return Ok(SyncReport::ended_as(
            Some(plan),
            SyncOutcome::RetiredMeanwhile,
        ));
    }

    crate::lease::start_writing(hooks.interrupt).await;
    crate::lease::still_ours(lease).await?;
    let apply_options = ApplyOptions {
        write: WriteOptions {
            write_until: options
                .window
                .as_ref()
                .and_then(|w| w.closes(Timestamp::now())),
            ..options.write
        },
        allow_empty_skills: options.allow_empty_skills,
        live_read_at: Some(live_read_at),
        tenant_users: live.users.len(),
        lists: options.scope.lists(),
    };
    // Unchecked ownership (benches) manages every definition the catalog resolves, as before
    // ownership was checked.
    let unchecked = Adopt::All;
    let report = apply(
        api,
        desired,
        &mut plan,
        live,
        apply_options,
        ApplyContext {
            journal: Some(JournalRun { journal, run }),
            interrupt: hooks.interrupt,
            progress: hooks.progress,
            lease,
            adopt: options.adopt.as_ref().unwrap_or(&unchecked),
        },
    )
    .await;
    Ok(SyncReport::ended_as(
        Some(plan),
        SyncOutcome::Applied(report),
    ))
}

/// The desired state of these users' agents only.
fn only_agents(desired: &Desired, users: &[UserId]) -> Desired {
    let users: std::collections::HashSet<&UserId> = users.iter().collect();
    let agents: std::collections::BTreeMap<_, _> = desired
        .agents
        .iter()
        .filter(|(_, a)| users.contains(&a.user_id))
        .map(|(e, a)| (e.clone(), a.clone()))
        .collect();
    Desired {
        assignments: desired
            .assignments
            .iter()
            .filter(|(e, _)| agents.contains_key(*e))
            .map(|(e, w)| (e.clone(), w.clone()))
            .collect(),
        agents,
        ..desired.clone()
    }
}

/// Keeps only the changes to `lists`. Skills go by one `If-Match` update per agent (each is
/// routing, and waits for nothing); proficiencies in bulk where the dialect has it (they only
/// feed reporting).
fn only_lists(plan: &mut Plan, lists: Lists, bulk: bool) {
    match lists {
        Lists::Both => return,
        Lists::Skills => {
            for user in &mut plan.users {
                user.proficiencies = None;
            }
            plan.write_mode = WriteMode::Single;
        }
        Lists::Proficiencies => {
            for user in &mut plan.users {
                user.skills = None;
                user.left_without_skills = false;
            }
            if bulk {
                plan.write_mode = WriteMode::Bulk;
            }
        }
    }
    plan.users
        .retain(|u| u.skills.is_some() || u.proficiencies.is_some());
}

fn outside(options: &SyncOptions) -> Option<String> {
    options.window.as_ref()?.refusal(Timestamp::now())
}

/// The counts a finished run is journaled with.
pub fn run_counts(report: &ApplyReport, requests: u64) -> RunCounts {
    let n = |count: usize| count as u64;
    RunCounts {
        definitions_created: n(report.definitions_created),
        definitions_reactivated: n(report.definitions_reactivated),
        definitions_updated: n(report.definitions_updated),
        requests,
        ..report.written.run_counts()
    }
}
