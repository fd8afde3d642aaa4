//! `skillsync assign`: one agent, one code, now (a certification event), touching nothing else.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use skillsync_core::{Code, EmployeeId, Level, Problem};
use skillsync_engine::{AssignRequest, UserOutcome};

use super::validate::report_problems;
use crate::args::AssignArgs;
use crate::config::Config;
use crate::inputs::read_hris;
use crate::output::{OutputFormat, exit, outln, print_json};

/// Runs the command.
pub async fn run(args: &AssignArgs) -> anyhow::Result<ExitCode> {
    let common = &args.common;
    let config = match Config::load(&common.config) {
        Ok(config) => config,
        Err(problems) => return Ok(report_problems(common, &problems)),
    };
    let loaded = match read_hris(&config) {
        Ok(loaded) => loaded,
        Err(problems) => return Ok(report_problems(common, &problems)),
    };
    let desired = &loaded.desired;
    let agent = desired
        .agents
        .get(&EmployeeId(args.employee.clone()))
        .or_else(|| {
            desired
                .agents
                .values()
                .find(|a| a.user_id.as_str() == args.employee)
        });
    let Some(agent) = agent else {
        let problem = Problem::error(
            &desired.files.agents,
            format!(
                "no agent `{}` (neither an employee id nor a user id)",
                args.employee
            ),
        )
        .hint("assign takes an employee_id or user_id listed in agents.csv");
        return Ok(report_problems(common, &[problem]));
    };
    let code = Code(args.code.clone());
    let Some(entry) = desired.catalog.entry(&code, &agent.locale) else {
        let locales: Vec<String> = desired
            .catalog
            .locales_of(&code)
            .iter()
            .map(ToString::to_string)
            .collect();
        let problem =
            if locales.is_empty() {
                Problem::error(
                    &desired.files.catalog,
                    format!("code `{}` is not in the catalog", args.code),
                )
            } else {
                Problem::error(&desired.files.catalog, format!(
                "code `{}` has no variant in {}, the locale of {} (it has {})",
                args.code, agent.locale, agent.employee_id, locales.join(", ")
            ))
            .hint("add a catalog row for that locale; skillsync never falls back to another locale")
            };
        return Ok(report_problems(common, &[problem]));
    };
    // A retired code stays out of service: assigning it would reactivate or recreate it.
    if let Some(retired) = crate::inputs::Session::retirements(&config)
        .await?
        .iter()
        .find(|r| r.code == entry.code && r.locale == entry.locale)
    {
        let problem = Problem::error(
            &desired.files.catalog,
            format!(
                "{} {} ({}) was retired ({}) in run {}; not assigned",
                entry.kind,
                entry.name,
                entry.locale,
                retired.mode.as_str(),
                retired.run
            ),
        )
        .at_line(entry.line)
        .hint(format!(
            "`skillsync retire {} --locale {} --undo` manages it again",
            entry.code, entry.locale
        ));
        return Ok(report_problems(common, &[problem]));
    }
    // Checked before any request: the dialect must be able to carry what is asked.
    if let Some(problem) = skillsync_core::uncarried_assignment(
        &crate::inputs::carries(&config),
        &agent.employee_id,
        &entry.code,
        entry.kind,
        !args.inactive,
    ) {
        return Ok(report_problems(common, &[problem]));
    }
    let level =
        Level::new(args.level).map_err(|e| anyhow::anyhow!("{e}; give a level from 1 to 10"))?;
    let settings = match config.client_settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(report_problems(common, &problems)),
    };
    let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
    let journal = config.journal().await?;
    let interrupt = std::sync::Arc::new(skillsync_engine::Interrupt::new());
    let _signals =
        crate::terminal::interrupt_on_signal(interrupt.clone(), config.store_connect_url()?);
    let assigned = skillsync_engine::assign(
        api.as_ref(),
        journal.as_ref(),
        &config.run_label("assign", args.wait),
        AssignRequest {
            agent,
            entry,
            level,
            active: !args.inactive,
        },
        config.write_options(),
        Some(&interrupt),
    )
    .await;
    let assigned = match assigned {
        Ok(assigned) => assigned,
        Err(error) => {
            return crate::output::engine_failed(
                error,
                format!("cannot assign {} to {}", args.code, agent.employee_id),
            );
        }
    };
    let code = match assigned.run_outcome() {
        skillsync_store::RunOutcome::Succeeded => exit::ok(),
        skillsync_store::RunOutcome::Interrupted => exit::interrupted(),
        _ => exit::error(),
    };
    if common.output == OutputFormat::Json {
        let (outcome, failure, reason) = match &assigned.outcome {
            UserOutcome::Updated => ("updated", None, None),
            UserOutcome::AlreadyCurrent => ("alreadyCurrent", None, None),
            UserOutcome::Failed { kind, reason } => (
                "failed",
                Some(super::apply::failure_name(*kind)),
                Some(reason.clone()),
            ),
            UserOutcome::NotAttempted(why) => ("notAttempted", None, Some(why.to_string())),
        };
        print_json(&AssignDocument {
            schema_version: SCHEMA_VERSION,
            employee_id: agent.employee_id.to_string(),
            user_id: agent.user_id.to_string(),
            code: entry.code.to_string(),
            kind: entry.kind.noun(),
            name: entry.name.clone(),
            locale: entry.locale.to_string(),
            before: assigned.before.map(|(level, active)| Slot {
                level: level.get(),
                active,
            }),
            after: Slot {
                level: level.get(),
                active: !args.inactive,
            },
            outcome,
            failure,
            reason,
            created_definition: assigned.created_definition,
            run: assigned.run.0,
            requests: api.counters().total_requests(),
        })?;
        return Ok(code);
    }
    let what = format!("{} {} ({})", entry.kind, entry.name, entry.locale);
    let now = format!(
        "level {level}{}",
        if args.inactive { ", inactive" } else { "" }
    );
    if assigned.created_definition {
        outln!("(created {what} first: it did not exist in the tenant)");
    }
    match (&assigned.outcome, assigned.before) {
        (UserOutcome::AlreadyCurrent, _) => outln!(
            "{} already has {what} at {now}: nothing written",
            agent.employee_id
        ),
        (UserOutcome::Updated, None) => outln!("{}: + {what} {now}", agent.employee_id),
        (UserOutcome::Updated, Some((before, _))) => {
            outln!("{}: ~ {what} level {before} → {now}", agent.employee_id)
        }
        (UserOutcome::Failed { reason, .. }, _) => eprintln!(
            "error: {what} not assigned to {}: {reason}",
            agent.employee_id
        ),
        (UserOutcome::NotAttempted(why), _) => {
            eprintln!("error: {what} not assigned to {}: {why}", agent.employee_id)
        }
    }
    eprintln!(
        "{} requests; journal run {}",
        api.counters().total_requests(),
        assigned.run.0
    );
    Ok(code)
}

/// The version of the `--output json` document (docs/assign-json.md).
const SCHEMA_VERSION: u32 = 1;

/// `assign --output json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignDocument {
    schema_version: u32,
    employee_id: String,
    user_id: String,
    code: String,
    kind: &'static str,
    name: String,
    locale: String,
    before: Option<Slot>,
    after: Slot,
    outcome: &'static str,
    failure: Option<&'static str>,
    reason: Option<String>,
    created_definition: bool,
    run: i64,
    requests: u64,
}

/// A level and whether it is active.
#[derive(Serialize)]
struct Slot {
    level: u8,
    active: bool,
}
