//! `skillsync apply`: plan, check the guards, confirm, then reconcile the tenant.

use std::process::ExitCode;

use skillsync_core::render::{Style, plan_json};
use skillsync_engine::{ApplyOptions, Phase, RemovalLimit};

use crate::args::ApplyArgs;
use crate::config::MaxRemovals;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit};

/// Runs the command.
pub async fn run(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let style = Style {
        color: common.color.for_stdout(),
    };
    let session = match Session::open(common)? {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let Session {
        config,
        loaded,
        api,
    } = &session;
    // Checked before reading the tenant: outside the window, even reads are load it should not
    // carry in its busy hours.
    if refused_outside_window(config, args) {
        return Ok(exit::error());
    }
    // Stamped before the read: its definitions listing is then no older than this.
    let live_read_at = std::time::Instant::now();
    let live = session.read_live(&|_| {}).await?;
    let (resolution, _, _) = skillsync_core::resolve(&loaded.desired, &live);
    let plan = match session.plan(&live, common) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    if common.output == OutputFormat::Human {
        print!("{}", crate::output::plan_text(&plan, style, common.summary));
    }
    if plan.is_empty() {
        if common.output == OutputFormat::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "plan": plan_json(&plan), "applied": null })
                )?
            );
        }
        return Ok(exit::ok());
    }

    let limit = match args.max_removals.or(Some(config.max_removals)) {
        Some(MaxRemovals::Count(n)) => RemovalLimit::Count(n),
        Some(MaxRemovals::Percent(p)) => RemovalLimit::Percent(p),
        None => RemovalLimit::Percent(10.0),
    };
    if let Err(refusal) = skillsync_engine::check_guards(&plan, limit, args.allow_empty_skills) {
        eprintln!("error: {refusal}");
        return Ok(exit::error());
    }
    if !args.yes
        && !confirm(
            &config.tenant.api_base,
            plan.totals.users_changed,
            plan.definitions.len(),
        )?
    {
        return Ok(exit::error());
    }
    // Asked again: the window may have closed while the plan was read or the prompt waited.
    if refused_outside_window(config, args) {
        return Ok(exit::error());
    }
    // A code retired meanwhile is no longer skillsync's to write: this plan may still assign it.
    if Session::retirements(config)? != loaded.desired.retired {
        eprintln!(
            "error: a code was retired (skillsync retire) while this plan was made; nothing applied\n  hint: run apply again to plan without it"
        );
        return Ok(exit::error());
    }

    let (journal, run_id) = config.start_run("apply")?;

    let bars = crate::terminal::PhaseBars::new();
    let apply_options = ApplyOptions {
        bulk_batch_size: config.bulk_batch_size,
        concurrency: config.max_in_flight,
        allow_empty_skills: args.allow_empty_skills,
        propagation_window: config.propagation_window,
        live_read_at: Some(live_read_at),
        write_until: window_closes(config, args),
        ..ApplyOptions::default()
    };
    let journal_run = skillsync_engine::JournalRun {
        journal: journal.as_ref(),
        run: run_id,
    };
    let applied = skillsync_engine::apply(
        api.as_ref(),
        &loaded.desired,
        &plan,
        resolution,
        apply_options,
        Some(journal_run),
        &|phase, done, total| bars.show(phase_label(phase), done, total),
    )
    .await;
    bars.clear();
    let report = match applied {
        Ok(report) => report,
        Err(failed) => {
            let counts = serde_json::json!({ "error": failed.to_string() });
            journal.finish_run(
                run_id,
                skillsync_store::RunOutcome::Failed,
                &counts,
                jiff::Timestamp::now(),
            )?;
            return Err(anyhow::Error::new(failed).context("stopped before writing any user"));
        }
    };
    let outcome = if report.users_failed.is_empty() && report.stopped_early.is_none() {
        skillsync_store::RunOutcome::Succeeded
    } else {
        skillsync_store::RunOutcome::Failed
    };
    let counts = serde_json::json!({
        "definitionsCreated": report.definitions_created,
        "definitionsReactivated": report.definitions_reactivated,
        "definitionsUpdated": report.definitions_updated,
        "usersUpdated": report.users_updated,
        "usersAlreadyCurrent": report.users_already_current,
        "usersFailed": report.users_failed.len(),
        "conflicts": report.conflicts,
        "requests": api.counters().total_requests(),
    });
    journal.finish_run(run_id, outcome, &counts, jiff::Timestamp::now())?;

    let counters = api.counters();
    let settles_at = journal.settles_at(run_id)?;
    match common.output {
        OutputFormat::Json => {
            let body = serde_json::json!({
                "plan": plan_json(&plan),
                "applied": {
                    "definitionsCreated": report.definitions_created,
                    "definitionsReactivated": report.definitions_reactivated,
                    "definitionsUpdated": report.definitions_updated,
                    "usersUpdated": report.users_updated,
                    "usersAlreadyCurrent": report.users_already_current,
                    "usersFailed": report.users_failed.iter().map(|(u, why)| serde_json::json!({"userId": u, "reason": why})).collect::<Vec<_>>(),
                    "conflicts": report.conflicts,
                    "stoppedEarly": report.stopped_early,
                    "elapsedSeconds": report.elapsed.as_secs_f64(),
                    "settlesAt": settles_at,
                    "api": counters,
                },
            });
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        OutputFormat::Human => {
            println!();
            println!(
                "Applied in {:.1} s: {} definitions created, {} reactivated, {} updated; {} users updated, {} unchanged, {} already current, {} failed; {} re-merged after a conflict.",
                report.elapsed.as_secs_f64(),
                report.definitions_created,
                report.definitions_reactivated,
                report.definitions_updated,
                report.users_updated,
                plan.totals.users_unchanged,
                report.users_already_current,
                report.users_failed.len(),
                report.conflicts
            );
            for (user, why) in &report.users_failed {
                println!("  failed: user {user}: {why}");
            }
            if let Some(reason) = &report.stopped_early {
                println!("{reason}");
            }
            let by_kind: Vec<String> = counters
                .requests
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            println!(
                "API calls: {} ({}); {} throttled (429), {} retries, {} token fetches.",
                counters.total_requests(),
                by_kind.join(", "),
                counters.throttled,
                counters.retries,
                counters.token_fetches
            );
            println!("Journal: run {} in {}", run_id.0, config.store_url);
            if let Some(at) = settles_at {
                println!(
                    "Settles at {} ({} after the last write): routing uses the new skills from then on.",
                    at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    humantime::format_duration(config.propagation_window)
                );
            }
        }
    }
    Ok(
        if report.users_failed.is_empty() && report.stopped_early.is_none() {
            exit::ok()
        } else {
            exit::error()
        },
    )
}

/// Whether `[sync] window` forbids writing now (and `--now` does not override it); the refusal
/// is printed.
fn refused_outside_window(config: &crate::config::Config, args: &ApplyArgs) -> bool {
    if args.now {
        return false;
    }
    match config.outside_window(jiff::Timestamp::now()) {
        Some(why) => {
            eprintln!("error: {why}. Use --now to apply anyway.");
            true
        }
        None => false,
    }
}

/// When the current sync window closes, so that a run that overruns it stops writing into the
/// tenant's busy hours; `None` with no window or with `--now`.
fn window_closes(config: &crate::config::Config, args: &ApplyArgs) -> Option<jiff::Timestamp> {
    if args.now {
        return None;
    }
    let opening = config
        .window?
        .current(jiff::Timestamp::now(), &config.tenant.time_zone)?;
    Some(opening.closes.timestamp())
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
fn confirm(tenant: &str, users: usize, definitions: usize) -> anyhow::Result<bool> {
    crate::terminal::confirm(
        &format!(
            "Apply {definitions} definition change(s) and {users} user change(s) to {tenant}?"
        ),
        "refusing to apply without confirmation: stdin is not a terminal\n  hint: review with `skillsync plan`, then pass --yes",
        "nothing applied",
    )
}

/// The progress bar's label for each phase.
fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Definitions => "definitions",
        Phase::Skills => "skills",
        Phase::Proficiencies => "proficiencies",
        Phase::Conflicts => "re-merges",
    }
}
