//! `skillsync retire`: take a catalog code out of service: strip every reference (users,
//! routing profiles, routing strategies), then deactivate (the default) or delete (`--delete`);
//! or only deactivate, keeping the assignments (`--soft`). Honours `[sync] window` like `apply`
//! (`--now` overrides), is journaled, and is left out of every later plan.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use skillsync_engine::StopReason;
use skillsync_engine::retire::{
    RetireAction, RetireFailure, RetireHooks, RetireOptions, RetireOutcome, RetirePhase,
    RetirePlan, TargetSummary, summarize,
};

use crate::args::RetireArgs;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit, out, outln};

/// Runs the command.
pub async fn run(args: &RetireArgs) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let session = match Session::open(common).await? {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let Session {
        config,
        loaded,
        api,
    } = &session;
    let desired = &loaded.desired;
    let variants = match skillsync_engine::retire::catalog_variants(
        desired,
        &args.code,
        args.locale.as_deref(),
    ) {
        Ok(variants) => variants,
        Err(problem) => return Ok(super::validate::report_problems(common, &[*problem])),
    };
    if args.undo {
        return undo(args, config, &variants).await;
    }
    if args.delete && !api.capabilities().deletes_definitions {
        // Refused before anything is read or written: the dialect could strip the references
        // and then not delete, leaving a half-done retirement.
        eprintln!(
            "error: the {} dialect cannot delete a skill; retire it without --delete (it is made inactive, as the tenant retires skills)",
            config.tenant.dialect.name()
        );
        return Ok(exit::error());
    }
    let mode = if args.soft {
        RetireAction::KeepReferences
    } else if args.delete {
        RetireAction::Delete
    } else {
        RetireAction::Deactivate
    };

    let journal = config.journal().await?;
    let options = RetireOptions {
        bulk_batch_size: config.bulk_batch_size,
        concurrency: config.max_in_flight,
        allow_empty_skills: args.allow_empty_skills,
        propagation_window: config.propagation_window,
        window: if args.now { None } else { config.sync_window() },
        ..RetireOptions::default()
    };
    let interrupt = std::sync::Arc::new(skillsync_engine::Interrupt::new());
    let _signals =
        crate::terminal::interrupt_on_signal(interrupt.clone(), config.store_connect_url()?);
    let reading = spinner("finding what references it");
    let bars = crate::terminal::PhaseBars::new();
    let confirm = |plan: &RetirePlan| {
        confirm(plan, &config.tenant.api_base).unwrap_or_else(|error| {
            eprintln!("error: {error:#}");
            false
        })
    };
    let hooks = RetireHooks {
        planned: &|plan| {
            reading.finish_and_clear();
            if common.output == OutputFormat::Human {
                out!("{}", plan_text(plan, &summarize(plan, desired)));
            }
        },
        confirm: if args.yes { None } else { Some(&confirm) },
        progress: &|phase, done, total| bars.show(phase_label(phase), done, total),
        interrupt: Some(&interrupt),
    };
    let retired = skillsync_engine::retire::run(
        api.as_ref(),
        journal.as_ref(),
        &config.run_label("retire", args.wait),
        desired,
        &variants,
        mode,
        options,
        &hooks,
    )
    .await;
    reading.finish_and_clear();
    bars.clear();
    let (plan, outcome) = match retired {
        Ok(retired) => retired,
        Err(error) => {
            return crate::output::engine_failed(
                error,
                format!("cannot retire {} at {}", args.code, config.tenant.api_base),
            );
        }
    };
    let report = match outcome {
        // Refused like apply's: the reason on stderr, nothing on stdout, exit 1.
        RetireOutcome::OutsideWindow(why) => {
            eprintln!("error: {why}");
            return Ok(exit::error());
        }
        RetireOutcome::Refused(refusal) => {
            eprintln!("error: {refusal}");
            return Ok(exit::error());
        }
        RetireOutcome::Declined => return Ok(exit::error()),
        RetireOutcome::Retired(report) => *report,
    };
    let plan = plan.expect("a retirement that ran was planned");
    let summary = summarize(&plan, desired);
    let run_id = report.run.expect("a journaled retirement has a run");
    let counters = api.counters();
    let settles_at = journal.settles_at(run_id).await?;

    match common.output {
        OutputFormat::Json => {
            let document = RetireDocument {
                schema_version: SCHEMA_VERSION,
                code: plan.code.to_string(),
                kind: plan.kind.noun(),
                mode: mode.as_str(),
                definitions: summary.iter().map(DefinitionEntry::from).collect(),
                retired: Retired {
                    definitions_deleted: report.definitions_deleted,
                    definitions_deactivated: report.definitions_deactivated,
                    users_stripped: report.users_stripped,
                    users_already_clear: report.users_already_clear,
                    users_failed: user_entries(&report.users_failed),
                    users_not_attempted: user_entries(&report.users_not_attempted),
                    profiles_stripped: report.profiles_stripped,
                    strategies_stripped: report.strategies_stripped,
                    conflicts: report.conflicts,
                    deletes_refused: report.deletes_refused,
                    error: report
                        .failure
                        .as_ref()
                        .map(|f| skillsync_engine::explain(f)),
                    elapsed_seconds: report.elapsed.as_secs_f64(),
                    settles_at,
                    run: run_id.0,
                    api: counters,
                },
            };
            crate::output::print_json(&document)?;
        }
        OutputFormat::Human => {
            outln!();
            match mode {
                RetireAction::Delete => outln!(
                    "Retired in {:.1} s: {} users stripped ({} re-merged after a conflict, {} already clear), {} routing profiles and {} routing strategies stripped, {} definitions deleted ({} delete(s) refused as still referenced and retried).",
                    report.elapsed.as_secs_f64(),
                    report.users_stripped,
                    report.conflicts,
                    report.users_already_clear,
                    report.profiles_stripped,
                    report.strategies_stripped,
                    report.definitions_deleted,
                    report.deletes_refused,
                ),
                RetireAction::Deactivate => outln!(
                    "Retired in {:.1} s: {} users stripped ({} re-merged after a conflict, {} already clear), {} routing profiles and {} routing strategies stripped, {} definitions made inactive (kept for reporting; --delete deletes instead).",
                    report.elapsed.as_secs_f64(),
                    report.users_stripped,
                    report.conflicts,
                    report.users_already_clear,
                    report.profiles_stripped,
                    report.strategies_stripped,
                    report.definitions_deactivated,
                ),
                RetireAction::KeepReferences => outln!(
                    "Retired (soft) in {:.1} s: {} definitions made inactive; assignments kept for reporting.",
                    report.elapsed.as_secs_f64(),
                    report.definitions_deactivated,
                ),
            }
            for (user, why) in &report.users_failed {
                outln!("  failed: user {user}: {why}");
            }
            for (user, why) in &report.users_not_attempted {
                outln!("  not attempted: user {user}: {why}");
            }
            outln!("{}", crate::output::api_calls(&counters));
            outln!(
                "Journal: run {} in {}; later plans leave {} alone (`skillsync retire {} --undo` to manage it again).",
                run_id.0,
                config.store_shown(),
                plan.code,
                plan.code
            );
        }
    }
    Ok(match report.failure {
        None => exit::ok(),
        Some(RetireFailure::Stopped(StopReason::Interrupted)) => {
            eprintln!("error: {}", StopReason::Interrupted);
            exit::interrupted()
        }
        Some(failure) => {
            eprintln!("error: {:#}", anyhow::Error::new(failure));
            exit::error()
        }
    })
}

/// The version of the `--output json` documents (docs/retire-json.md).
const SCHEMA_VERSION: u32 = 1;

/// `retire --output json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetireDocument {
    schema_version: u32,
    code: String,
    kind: &'static str,
    mode: &'static str,
    definitions: Vec<DefinitionEntry>,
    retired: Retired,
}

/// One tenant definition retired, as read before writing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionEntry {
    id: String,
    name: String,
    locale: String,
    active: bool,
    duplicate: bool,
    users: usize,
    example_users: Vec<String>,
    profiles: Vec<String>,
    strategies: Vec<String>,
}

impl From<&TargetSummary> for DefinitionEntry {
    fn from(t: &TargetSummary) -> Self {
        DefinitionEntry {
            id: t.id.to_string(),
            name: t.name.clone(),
            locale: t.locale.to_string(),
            active: t.active,
            duplicate: t.duplicate,
            users: t.users,
            example_users: t.example_users.clone(),
            profiles: t.profiles.clone(),
            strategies: t.strategies.clone(),
        }
    }
}

/// What the retirement did.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Retired {
    definitions_deleted: usize,
    definitions_deactivated: usize,
    users_stripped: usize,
    users_already_clear: usize,
    users_failed: Vec<UserEntry>,
    users_not_attempted: Vec<UserEntry>,
    profiles_stripped: usize,
    strategies_stripped: usize,
    conflicts: usize,
    deletes_refused: usize,
    error: Option<String>,
    elapsed_seconds: f64,
    settles_at: Option<jiff::Timestamp>,
    run: i64,
    api: skillsync_cxone::CounterSnapshot,
}

/// A user and why it was not stripped.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserEntry {
    user_id: String,
    reason: String,
}

fn user_entries(users: &[(skillsync_core::UserId, String)]) -> Vec<UserEntry> {
    users
        .iter()
        .map(|(user, reason)| UserEntry {
            user_id: user.to_string(),
            reason: reason.clone(),
        })
        .collect()
}

/// `retire --undo --output json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UndoDocument<'a> {
    schema_version: u32,
    code: &'a str,
    restored: Vec<String>,
}

/// `--undo`: forgets the retirement so that plans manage the code again. Writes nothing to
/// the tenant; the next apply reactivates or recreates what the catalog lists.
async fn undo(
    args: &RetireArgs,
    config: &crate::config::Config,
    variants: &[&skillsync_core::CatalogEntry],
) -> anyhow::Result<ExitCode> {
    let journal = config.journal().await?;
    let mut forgotten = Vec::new();
    for variant in variants {
        if journal
            .forget_retirement(variant.code.as_str(), variant.locale.as_str())
            .await?
        {
            forgotten.push(variant.locale.to_string());
        }
    }
    match args.common.output {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&UndoDocument {
                schema_version: SCHEMA_VERSION,
                code: &args.code,
                restored: forgotten,
            })?
        ),
        OutputFormat::Human if forgotten.is_empty() => {
            outln!("{} was not retired; nothing to undo.", args.code)
        }
        OutputFormat::Human => outln!(
            "{} ({}) is managed again: review with `skillsync plan`; the next apply reactivates or recreates it.",
            args.code,
            forgotten.join(", ")
        ),
    }
    Ok(exit::ok())
}

/// The plan the operator confirms: per definition, who references it.
fn plan_text(plan: &RetirePlan, summary: &[TargetSummary]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let what = match plan.mode {
        RetireAction::Deactivate => "strip every reference, then mark inactive",
        RetireAction::Delete => "strip every reference, then delete",
        RetireAction::KeepReferences => "mark inactive, keep the assignments",
    };
    let locales: Vec<&str> = plan.variants.iter().map(|v| v.locale.as_str()).collect();
    let _ = writeln!(
        out,
        "Retire {} {} ({}): {what}",
        plan.kind,
        plan.code,
        locales.join(", ")
    );
    if summary.is_empty() {
        let _ = writeln!(
            out,
            "  no definition of it exists in the tenant: recorded as retired, so that no plan creates it"
        );
    }
    for t in summary {
        let mut notes = Vec::new();
        if !t.active {
            notes.push("inactive");
        }
        if t.duplicate {
            notes.push("duplicate");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        let examples = if t.example_users.is_empty() {
            String::new()
        } else {
            let more = if t.users > t.example_users.len() {
                ", …"
            } else {
                ""
            };
            format!(" (e.g. {}{more})", t.example_users.join(", "))
        };
        let profiles = if t.profiles.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.profiles.join(", "))
        };
        let strategies = if t.strategies.is_empty() {
            String::new()
        } else {
            format!(
                ", {} routing strategy(ies) ({})",
                t.strategies.len(),
                t.strategies.join(", ")
            )
        };
        let _ = writeln!(
            out,
            "  {} ({}) {}{notes}: {} user(s){examples}, {} routing profile(s){profiles}{strategies}",
            t.name,
            t.locale,
            t.id,
            t.users,
            t.profiles.len()
        );
    }
    let users = plan.users().len();
    let profiles = plan.profiles().len();
    let strategies = plan.strategies().len();
    let _ = match plan.mode {
        RetireAction::Delete => writeln!(
            out,
            "Writes: {users} user(s) lose it (nothing else of theirs changes), {profiles} routing profile(s) and {strategies} routing strategy(ies) stop listing it, {} definition(s) deleted.",
            plan.targets.len()
        ),
        RetireAction::Deactivate => writeln!(
            out,
            "Writes: {users} user(s) lose it (nothing else of theirs changes), {profiles} routing profile(s) and {strategies} routing strategy(ies) stop listing it, {} definition(s) set active:false (kept for reporting).",
            plan.targets.iter().filter(|t| t.definition.active).count()
        ),
        RetireAction::KeepReferences => writeln!(
            out,
            "Writes: {} definition(s) set active:false; {users} user(s) and {profiles} routing profile(s) keep it for reporting.",
            plan.targets.iter().filter(|t| t.definition.active).count()
        ),
    };
    let _ = writeln!(
        out,
        "Later plans leave it alone even while the catalog lists it."
    );
    out
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
fn confirm(plan: &RetirePlan, tenant: &str) -> anyhow::Result<bool> {
    crate::terminal::confirm(
        &format!(
            "Retire {} {} ({}) in {tenant}?",
            plan.kind,
            plan.code,
            plan.mode.as_str()
        ),
        "refusing to retire without confirmation: stdin is not a terminal; nothing changed\n  hint: review the plan above, then pass --yes",
        "nothing changed",
    )
}

fn spinner(message: &'static str) -> ProgressBar {
    let spinner = ProgressBar::with_draw_target(None, crate::terminal::draw_target());
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// The progress bar's label for each phase.
fn phase_label(phase: RetirePhase) -> &'static str {
    match phase {
        RetirePhase::Users => "users",
        RetirePhase::Conflicts => "re-merges",
        RetirePhase::Profiles => "profiles",
        RetirePhase::Strategies => "strategies",
        RetirePhase::Definitions => "definitions",
    }
}
