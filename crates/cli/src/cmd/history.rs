//! `skillsync history`: the runs in the journal, newest first, with their outcome.

use std::process::ExitCode;

use crate::args::HistoryArgs;
use crate::config::Config;
use crate::output::{OutputFormat, exit};

/// Runs the command.
pub fn run(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.common.config) {
        Ok(config) => config,
        Err(problems) => return Ok(super::validate::report_problems(&args.common, &problems)),
    };
    let journal = config.journal()?;
    let runs = journal.runs(args.limit)?;
    if args.common.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(exit::ok());
    }
    if runs.is_empty() {
        println!("No runs yet in {}.", config.store_url);
        return Ok(exit::ok());
    }
    let time = |t: &jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M:%S").to_string();
    println!(
        "{:>5}  {:<19}  {:<8}  {:<11}  {:>7}  {:<19}  summary",
        "run", "started (UTC)", "command", "outcome", "writes", "settles at (UTC)"
    );
    for run in runs {
        let summary = match run.counts.as_object() {
            Some(counts) if counts.contains_key("usersUpdated") => format!(
                "{} users updated, {} failed, {} definitions created",
                counts["usersUpdated"], counts["usersFailed"], counts["definitionsCreated"]
            ),
            Some(counts) if counts.contains_key("error") => {
                counts["error"].as_str().unwrap_or_default().to_string()
            }
            _ => "killed or still running: the next run converges from the tenant's state"
                .to_string(),
        };
        println!(
            "{:>5}  {:<19}  {:<8}  {:<11}  {:>7}  {:<19}  {summary}",
            run.id.0,
            time(&run.started_at),
            run.command,
            run.outcome.as_str(),
            run.writes,
            run.settles_at.as_ref().map_or("-".to_string(), time),
        );
    }
    Ok(exit::ok())
}
