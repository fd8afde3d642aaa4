//! `skillsync apply`: read the files, resolve the settings, call the engine's sync, print what
//! it returns.

use std::process::ExitCode;

use serde::Serialize;
use skillsync_core::render::{Style, plan_json};
use skillsync_core::{Adopt, Agent, Desired, Plan, UserId};
use skillsync_engine::{
    FailureKind, Interrupt, Phase, RemovalLimit, SyncHooks, SyncOptions, SyncOutcome, SyncReport,
    UserOutcome,
};

use crate::args::ApplyArgs;
use crate::config::{Config, MaxRemovals};
use crate::inputs::{Opening, Session};
use crate::output::{OutputFormat, exit, out, outln};
use crate::saved_plan::SavedPlan;

/// The version of the `--output json` document (docs/apply-json.md).
const SCHEMA_VERSION: u32 = 1;

/// Runs the command.
pub async fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    run_scoped(args, Target::Everyone).await
}

/// `skillsync sync-agent`: apply scoped to the named agents.
pub async fn run_agents(args: &crate::args::SyncAgentArgs) -> anyhow::Result<ExitCode> {
    run_scoped(&args.apply, Target::Agents(&args.employees)).await
}

/// `skillsync apply PLANFILE`: the saved plan's changes exactly, or a refusal before the
/// first write (`docs/saved-plan.md`).
pub async fn run_saved(args: &ApplyArgs, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match SavedPlan::read(file) {
        Ok(saved) => run_scoped(args, Target::Saved(file, &saved)).await,
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(exit::error())
        }
    }
}

/// What an apply writes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Whatever the HRIS files say, for everyone.
    Everyone,
    /// What they say for these agents (by employee id), read one by one.
    Agents(&'a [String]),
    /// The changes of a saved plan, to its users, as they were planned.
    Saved(&'a std::path::Path, &'a SavedPlan),
}

/// Each employee's tenant user, or the error naming those the files do not have (with the
/// nearest ids they do).
fn users_of(
    desired: &skillsync_core::Desired,
    employees: &[String],
) -> Result<Vec<UserId>, String> {
    let mut users = Vec::new();
    let mut unknown = Vec::new();
    for employee in employees {
        match desired
            .agents
            .get(&skillsync_core::EmployeeId::from(employee.as_str()))
        {
            Some(agent) => users.push(agent.user_id.clone()),
            None => unknown.push(employee.as_str()),
        }
    }
    if unknown.is_empty() {
        users.sort();
        users.dedup();
        return Ok(users);
    }
    let near: Vec<String> = unknown
        .iter()
        .filter_map(|u| {
            skillsync_core::hris::suggestions::closest(u, desired.agents.keys().map(|e| e.as_str()))
        })
        .map(|s| format!("`{s}`"))
        .collect();
    let mut message = format!(
        "no agent {} in the HRIS agents file",
        unknown
            .iter()
            .map(|u| format!("`{u}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !near.is_empty() {
        message.push_str(&format!("\n  hint: did you mean {}?", near.join(" or ")));
    }
    Err(message)
}

async fn run_scoped(args: &ApplyArgs, target: Target<'_>) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let style = Style {
        color: common.color.for_stdout(),
    };
    let Opening {
        config,
        reading,
        api,
    } = match Session::open_reading(common).await? {
        Ok(opening) => opening,
        Err(code) => return Ok(code),
    };
    let config = &config;
    let saved = match target {
        Target::Saved(_, saved) => Some(saved),
        _ => None,
    };
    // Checked before anything else, the tenant included: a plan made from other files or
    // another config is not the one they make now.
    if let Some(saved) = saved {
        match crate::saved_plan::desired_digest(config) {
            Ok(digest) if digest == saved.desired_digest => {}
            Ok(_) => {
                eprintln!(
                    "error: the HRIS files or config changed since the plan was made; nothing written\n  hint: run `skillsync plan --out` again and review the new plan"
                );
                return Ok(exit::error());
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                return Ok(exit::error());
            }
        }
    }
    let employees = match target {
        Target::Agents(employees) => Some(employees),
        _ => None,
    };
    // The whole tenant is read from the catalog while the agents and assignments files are
    // read (under the lease: the engine's `prepare`); a scope of agents needs them first.
    let (scope, files, read_from) = match (employees, saved) {
        (None, Some(saved)) => {
            let loaded = match reading.finish().await {
                Ok(loaded) => loaded,
                Err(problems) => {
                    return Ok(crate::cmd::validate::report_problems(common, &problems));
                }
            };
            // Only the users the plan writes are read again (one by one, or the listing when
            // that takes fewer calls).
            let scope = skillsync_engine::SyncScope::Agents {
                users: saved.user_ids(),
                lists: skillsync_engine::Lists::Both,
            };
            (scope, Files::Read(loaded), None)
        }
        (None, None) => {
            let read_from = reading.catalog.clone();
            (
                skillsync_engine::SyncScope::Everyone,
                Files::Reading(reading),
                read_from,
            )
        }
        (Some(employees), _) => {
            let loaded = match reading.finish().await {
                Ok(loaded) => loaded,
                Err(problems) => {
                    return Ok(crate::cmd::validate::report_problems(common, &problems));
                }
            };
            let scope = match users_of(&loaded.desired, employees) {
                Ok(users) => skillsync_engine::SyncScope::Agents {
                    users,
                    lists: skillsync_engine::Lists::Both,
                },
                Err(message) => {
                    eprintln!("error: {message}");
                    return Ok(exit::error());
                }
            };
            (scope, Files::Read(loaded), None)
        }
    };
    let command = if employees.is_some() {
        "sync-agent"
    } else {
        "apply"
    };
    // A first run's files are read before the journal is created, so that files with errors
    // leave nothing behind; after that the journal (and the lease in it) is there already.
    let (journal, files, read_from) = match (config.existing_journal().await?, files) {
        (Some(journal), files) => (journal, files, read_from),
        (None, Files::Reading(reading)) => match reading.finish().await {
            Ok(loaded) => (config.journal().await?, Files::Read(loaded), None),
            Err(problems) => return Ok(crate::cmd::validate::report_problems(common, &problems)),
        },
        (None, files) => (config.journal().await?, files, read_from),
    };
    let options = SyncOptions {
        run: config.run_label(command, args.wait),
        plan: skillsync_core::PlanOptions {
            // `sync-agent` reads only the named agents' users, each an agent of the HRIS: no
            // user of its scope is absent, and none is stripped. A saved plan's scope is its
            // own users, and those it strips are planned again as they were (by the config).
            absent_agents: match employees {
                None => config.absent_agents,
                Some(_) => skillsync_core::AbsentAgents::Keep,
            },
            ..config.plan_options(api.capabilities().max_bulk_entries.is_some())
        },
        removal_limit: match (args.max_removals.unwrap_or(config.max_removals), saved) {
            (MaxRemovals::Count(n), _) => RemovalLimit::Count(n),
            // A saved plan is planned again from its own users only: a share of their owned
            // assignments is not the share of the tenant's that the saved plan was held to,
            // so the limit is the count that share allowed then.
            (MaxRemovals::Percent(p), Some(saved)) => RemovalLimit::Count(
                (p * saved.owned_assignments_before() as f64 / 100.0).floor() as u64,
            ),
            (MaxRemovals::Percent(p), None) => RemovalLimit::Percent(p),
        },
        allow_empty_skills: args.allow_empty_skills,
        write: config.write_options(),
        window: if args.now { None } else { config.sync_window() },
        scope,
        adopt: Some(Adopt::from_args(&args.adopt.adopt)),
    };
    let interrupt = std::sync::Arc::new(Interrupt::new());
    let _signals =
        crate::terminal::interrupt_on_signal(interrupt.clone(), config.store_connect_url()?);
    let bars = crate::terminal::PhaseBars::new();
    let human = common.output == OutputFormat::Human;
    let confirm = |plan: &Plan| {
        crate::terminal::confirm(
            &format!(
                "Apply {} definition change(s) and {} user change(s) to {}?",
                plan.definitions.len(),
                // Users no longer in the HRIS that the plan strips are written too.
                plan.users.len(),
                config.tenant.api_base
            ),
            "refusing to apply without confirmation: stdin is not a terminal\n  hint: review with `skillsync plan`, then pass --yes",
            "nothing applied",
        )
        .unwrap_or_else(|error| {
            eprintln!("error: {error:#}");
            false
        })
    };
    // Filled by `prepare`: what the report is rendered with.
    let prepared: parking_lot::Mutex<Option<std::sync::Arc<Desired>>> = Default::default();
    let check = |plan: &Plan| match (saved, prepared.lock().as_deref()) {
        (Some(saved), Some(desired)) => saved.matches(plan, desired),
        _ => Ok(()),
    };
    let hooks = SyncHooks {
        check: saved.map(|_| &check as skillsync_engine::PlanCheck<'_>),
        reading: &|_| {},
        planned: &|plan| {
            if human {
                // Its counts are those of the plan's own users, read again, not the tenant's.
                if let Target::Saved(path, saved) = target {
                    outln!(
                        "Saved plan {} (made {}), made again from its {} user(s) as they are now:",
                        path.display(),
                        saved.created_at,
                        saved.users.len()
                    );
                }
                out!("{}", crate::output::plan_text(plan, style, common.summary));
            }
        },
        confirm: if args.yes { None } else { Some(&confirm) },
        progress: &|phase, done, total| bars.show(phase_label(phase), done, total),
        interrupt: Some(&interrupt),
    };
    let files = parking_lot::Mutex::new(Some(files));
    let report = skillsync_engine::sync_prepared(
        api.as_ref(),
        journal.as_ref(),
        &options,
        &hooks,
        read_from.as_ref(),
        async || {
            let files = files.lock().take().expect("prepare runs once");
            let loaded = match files {
                Files::Read(loaded) => loaded,
                Files::Reading(reading) => reading
                    .finish()
                    .await
                    .map_err(skillsync_engine::Error::Invalid)?,
            };
            let ready = crate::inputs::prepared(loaded, journal.as_ref()).await?;
            *prepared.lock() = Some(ready.desired.clone());
            Ok(ready)
        },
        async |_| Ok(()),
    )
    .await;
    bars.clear();
    // Refused before the files were needed (outside the window, the lease held elsewhere):
    // files with errors are still the first thing to say, as `validate` says them.
    let unprepared = files.lock().take();
    if let Some(files) = unprepared {
        let loaded = match files {
            Files::Read(loaded) => loaded,
            Files::Reading(reading) => match reading.finish().await {
                Ok(loaded) => loaded,
                Err(problems) => {
                    return Ok(crate::cmd::validate::report_problems(common, &problems));
                }
            },
        };
        *prepared.lock() = Some(std::sync::Arc::new(loaded.desired));
    }
    let report = match report {
        Ok(report) => report,
        Err(skillsync_engine::Error::Invalid(problems)) => {
            return Ok(crate::cmd::validate::report_problems(common, &problems));
        }
        Err(error) => {
            return crate::output::engine_failed(
                error,
                format!("{command} against {}", config.tenant.api_base),
            );
        }
    };
    let desired = prepared
        .lock()
        .take()
        .expect("the desired state, prepared or read since");
    let code = render(
        &report,
        &Rendering {
            config,
            desired: &desired,
            api: api.as_ref(),
            saved: match target {
                Target::Saved(path, saved) => Some((path, saved)),
                _ => None,
            },
        },
        common,
    );
    // The process ends next: freeing the plan and the HRIS state one list at a time would
    // only delay the exit; the kernel takes the memory back at once.
    std::mem::forget((report, desired));
    code
}

/// The HRIS files of a run: read already (a scope of agents), or still being read.
enum Files {
    Read(skillsync_core::Loaded),
    Reading(crate::inputs::HrisReading),
}

/// What a report is rendered with.
struct Rendering<'a> {
    config: &'a Config,
    desired: &'a Desired,
    api: &'a dyn skillsync_cxone::TenantApi,
    /// The saved plan applied, and its file.
    saved: Option<(&'a std::path::Path, &'a SavedPlan)>,
}

/// Prints what the sync returned and picks the exit code; a journal that failed to record the
/// run's end is reported whatever the outcome.
fn render(
    report: &SyncReport,
    session: &Rendering<'_>,
    common: &crate::args::CommonArgs,
) -> anyhow::Result<ExitCode> {
    let code = render_outcome(report, session, common)?;
    if let Some(error) = &report.journal_error {
        eprintln!("error: {}", skillsync_engine::explain(error));
    }
    Ok(code)
}

fn render_outcome(
    report: &SyncReport,
    session: &Rendering<'_>,
    common: &crate::args::CommonArgs,
) -> anyhow::Result<ExitCode> {
    let (config, desired) = (session.config, session.desired);
    let refused = |why: String| {
        eprintln!("error: {why}");
        Ok(exit::error())
    };
    let applied = match &report.outcome {
        SyncOutcome::OutsideWindow(why) => return refused(why.clone()),
        SyncOutcome::Invalid(problems) | SyncOutcome::Takeover(problems) => {
            return Ok(crate::cmd::validate::report_problems(common, problems));
        }
        SyncOutcome::Refused(refusal) => return refused(refusal.to_string()),
        SyncOutcome::Declined => return Ok(exit::error()),
        SyncOutcome::RetiredMeanwhile => {
            return refused(
                "a code was retired (skillsync retire) while this plan was made; nothing applied\n  hint: run apply again to plan without it"
                    .into(),
            );
        }
        SyncOutcome::NoChanges => None,
        SyncOutcome::Applied(applied) => Some(applied),
    };
    let plan = report.plan.as_ref().expect("a plan was made");
    // Built on first use: a summary that names no user (every write landed) needs none of it.
    let agents: std::cell::OnceCell<std::collections::HashMap<&UserId, &Agent>> =
        std::cell::OnceCell::new();
    let employee = |user: &UserId| {
        agents
            .get_or_init(|| desired.agents.values().map(|a| (&a.user_id, a)).collect())
            .get(user)
            .map(|a| a.employee_id.to_string())
    };
    match common.output {
        OutputFormat::Json => {
            let document = ApplyDocument {
                schema_version: SCHEMA_VERSION,
                plan: plan_json(plan),
                saved_plan: session.saved.map(|(path, saved)| SavedPlanApplied {
                    path: path.display().to_string(),
                    created_at: saved.created_at.clone(),
                    desired_digest: saved.desired_digest.clone(),
                }),
                applied: applied
                    .map(|a| AppliedDocument::new(a, report, session.api.counters(), &employee)),
            };
            crate::output::print_json(&document)?;
        }
        OutputFormat::Human => {
            if let Some(applied) = applied {
                print_summary(applied, report, plan, config, &employee);
                outln!("{}", crate::output::api_calls(&session.api.counters()));
            }
        }
    }
    Ok(if report.interrupted() {
        exit::interrupted()
    } else if report.succeeded() {
        exit::ok()
    } else {
        exit::error()
    })
}

fn print_summary(
    applied: &skillsync_engine::ApplyReport,
    report: &SyncReport,
    plan: &Plan,
    config: &Config,
    employee: &dyn Fn(&UserId) -> Option<String>,
) {
    let written = &applied.written;
    let (updated, current, failed, not_attempted) = written.tally();
    outln!();
    outln!(
        "Applied in {:.1} s: {} definitions created, {} reactivated, {} updated; of {} users to change: {} updated, {} already current, {} failed, {} not attempted; {} re-merged after a conflict; {} unchanged.",
        applied.elapsed.as_secs_f64(),
        applied.definitions_created,
        applied.definitions_reactivated,
        applied.definitions_updated,
        written.users.len(),
        updated,
        current,
        failed,
        not_attempted,
        written.conflicts,
        plan.totals.users_unchanged,
    );
    let who = |user: &UserId| match employee(user) {
        Some(e) => format!("{e} (user {user})"),
        None => format!("user {user}"),
    };
    for (user, kind, why) in written.failed() {
        let label = match kind {
            FailureKind::NotKept => "not kept",
            FailureKind::Unconfirmed => "unconfirmed",
            _ => "failed",
        };
        outln!("  {label}: {}: {why}", who(user));
    }
    for (user, why) in written.not_attempted() {
        outln!("  not attempted: {}: {why}", who(user));
    }
    if let Some(reason) = &written.stopped {
        outln!("{reason}");
    }
    outln!(
        "Read back {} users: {} kept what was written.",
        applied.users_read_back,
        applied.users_read_back
            - written
                .failed()
                .filter(|(_, k, _)| *k == FailureKind::NotKept)
                .count()
    );
    if let Some(run) = report.run {
        outln!("Journal: run {} in {}", run.0, config.store_shown());
    }
    if let Some(at) = report.settles_at {
        outln!(
            "Settles at {} ({} after the last write): routing uses the new skills from then on.",
            at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            humantime::format_duration(config.propagation_window)
        );
    }
}

/// `apply --output json` (docs/apply-json.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplyDocument {
    schema_version: u32,
    plan: serde_json::Value,
    /// `apply PLANFILE`: the saved plan applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_plan: Option<SavedPlanApplied>,
    applied: Option<AppliedDocument>,
}

/// The saved plan an `apply PLANFILE` applied.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedPlanApplied {
    path: String,
    created_at: String,
    desired_digest: String,
}

/// What the run did: every user of the plan in exactly one of the four lists.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppliedDocument {
    run: Option<i64>,
    definitions_created: usize,
    definitions_reactivated: usize,
    definitions_updated: usize,
    users_updated: Vec<UserEntry>,
    users_already_current: Vec<UserEntry>,
    users_failed: Vec<UserEntry>,
    users_not_attempted: Vec<UserEntry>,
    users_read_back: usize,
    conflicts: usize,
    stopped_early: Option<String>,
    elapsed_seconds: f64,
    settles_at: Option<jiff::Timestamp>,
    api: skillsync_cxone::CounterSnapshot,
}

/// One user in a list of [`AppliedDocument`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserEntry {
    user_id: String,
    employee_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl AppliedDocument {
    fn new(
        applied: &skillsync_engine::ApplyReport,
        report: &SyncReport,
        api: skillsync_cxone::CounterSnapshot,
        employee: &dyn Fn(&UserId) -> Option<String>,
    ) -> AppliedDocument {
        let mut document = AppliedDocument {
            run: report.run.map(|r| r.0),
            definitions_created: applied.definitions_created,
            definitions_reactivated: applied.definitions_reactivated,
            definitions_updated: applied.definitions_updated,
            users_updated: Vec::new(),
            users_already_current: Vec::new(),
            users_failed: Vec::new(),
            users_not_attempted: Vec::new(),
            users_read_back: applied.users_read_back,
            conflicts: applied.written.conflicts,
            stopped_early: applied.written.stopped.as_ref().map(ToString::to_string),
            elapsed_seconds: applied.elapsed.as_secs_f64(),
            settles_at: report.settles_at,
            api,
        };
        for (user, outcome) in &applied.written.users {
            let entry = |failure: Option<&'static str>, reason: Option<String>| UserEntry {
                user_id: user.to_string(),
                employee_id: employee(user),
                failure,
                reason,
            };
            match outcome {
                UserOutcome::Updated => document.users_updated.push(entry(None, None)),
                UserOutcome::AlreadyCurrent => {
                    document.users_already_current.push(entry(None, None));
                }
                UserOutcome::Failed { kind, reason } => document
                    .users_failed
                    .push(entry(Some(failure_name(*kind)), Some(reason.clone()))),
                UserOutcome::NotAttempted(why) => document
                    .users_not_attempted
                    .push(entry(None, Some(why.to_string()))),
            }
        }
        document
    }
}

/// The JSON name of a failure kind.
pub fn failure_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Refused => "refused",
        FailureKind::Gone => "gone",
        FailureKind::Unresolved => "unresolved",
        FailureKind::NotKept => "notKept",
        FailureKind::Unconfirmed => "unconfirmed",
    }
}

/// The progress bar's label for each phase.
fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Definitions => "definitions",
        Phase::Skills => "skills",
        Phase::Proficiencies => "proficiencies",
        Phase::Conflicts => "re-merges",
        Phase::ReadBack => "read-back",
    }
}
