//! `skillsync history`: the runs in the journal, newest first, with their outcome.

use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;
use skillsync_store::RunSummary;

use crate::args::HistoryArgs;
use crate::config::Config;
use crate::output::{OutputFormat, exit, outln, print_json};

/// The version of the `--output json` document: fields are only added within it.
const SCHEMA_VERSION: u64 = 1;

/// The `--output json` document; its schema is `docs/history-json.md`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryDocument<'a> {
    schema_version: u64,
    runs: Vec<RunEntry<'a>>,
}

/// One run of the document: the journal's [`RunSummary`], named in camelCase.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunEntry<'a> {
    id: i64,
    command: &'a str,
    outcome: &'static str,
    started_at: Timestamp,
    ended_at: Option<Timestamp>,
    writes: u64,
    settles_at: Option<Timestamp>,
    config_hash: &'a str,
    dialect: &'a str,
    /// What the run did, journaled when it finished; `None` for a run that never finished.
    counts: Option<&'a skillsync_store::RunCounts>,
}

impl<'a> From<&'a RunSummary> for RunEntry<'a> {
    fn from(run: &'a RunSummary) -> Self {
        RunEntry {
            id: run.id.0,
            command: &run.command,
            outcome: run.outcome.as_str(),
            started_at: run.started_at,
            ended_at: run.ended_at,
            writes: run.writes,
            settles_at: run.settles_at,
            config_hash: &run.config_hash,
            dialect: &run.dialect,
            counts: run.counts.as_ref(),
        }
    }
}

/// Runs the command.
pub async fn run(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.common.config) {
        Ok(config) => config,
        Err(problems) => return Ok(super::validate::report_problems(&args.common, &problems)),
    };
    // Read-only: no journal yet is a journal with no runs, and is not created.
    let runs = match config.existing_journal().await? {
        Some(journal) => journal.runs(args.limit).await?,
        None => Vec::new(),
    };
    if args.common.output == OutputFormat::Json {
        print_json(&HistoryDocument {
            schema_version: SCHEMA_VERSION,
            runs: runs.iter().map(RunEntry::from).collect(),
        })?;
        return Ok(exit::ok());
    }
    if runs.is_empty() {
        outln!("No runs yet in {}.", config.store_shown());
        return Ok(exit::ok());
    }
    let time = |t: &Timestamp| t.strftime("%Y-%m-%d %H:%M:%S").to_string();
    outln!(
        "{:>5}  {:<19}  {:<8}  {:<11}  {:>7}  {:<19}  summary",
        "run",
        "started (UTC)",
        "command",
        "outcome",
        "writes",
        "settles at (UTC)"
    );
    for run in runs {
        let summary = summary(&run);
        outln!(
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

/// The last column of the listing: what the run's counts say, in a few words.
fn summary(run: &RunSummary) -> String {
    let Some(counts) = &run.counts else {
        return "killed or still running: the next run converges from the tenant's state"
            .to_string();
    };
    let mut parts = Vec::new();
    let mut count = |n: u64, what: &str| {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    };
    count(counts.definitions_created, "definitions created");
    count(counts.definitions_reactivated, "reactivated");
    count(counts.definitions_updated, "definitions updated");
    count(counts.definitions_deactivated, "deactivated");
    count(counts.definitions_deleted, "deleted");
    count(counts.users_updated, "users updated");
    count(counts.users_already_current, "already current");
    count(counts.users_failed, "failed");
    count(counts.users_not_attempted, "not attempted");
    count(counts.profiles_updated, "profiles updated");
    count(counts.requests, "requests");
    let mut text = parts.join(", ");
    if let Some(why) = &counts.stopped {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(why);
    }
    text
}
