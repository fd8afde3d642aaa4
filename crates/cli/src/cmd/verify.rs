//! `skillsync verify`: proves with test interactions that routing sees a run's skill changes.
//!
//! Everything it needs to know about the run comes from the journal; the tenant is asked only
//! for its queues and for test interactions. Users are never read: the user API shows the
//! database, not the routing cache, so reading it back would prove nothing and cost requests.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use serde::Serialize;
use skillsync_core::{DefinitionId, UserId};
use skillsync_engine::verify::{self, Coverage, NotCovered, Outcome, QueueCheck, Verdict};
use skillsync_store::{Journal, RunId, RunSummary};

use crate::args::VerifyArgs;
use crate::config::Config;
use crate::output::{OutputFormat, exit, out, print_json};

/// Some tested queue could not be judged yet: the run's changes had not settled.
fn not_routable_yet() -> ExitCode {
    ExitCode::from(2)
}

/// The run changed no skill that a non-production queue covers.
fn nothing_to_verify() -> ExitCode {
    ExitCode::from(3)
}

/// Some queue routed, after settling, to an agent this run did not change, who outranks ours:
/// it cannot prove that routing sees our assignment.
fn inconclusive() -> ExitCode {
    ExitCode::from(4)
}

/// Runs the command.
pub async fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.common.config) {
        Ok(config) => config,
        Err(problems) => return Ok(super::validate::report_problems(&args.common, &problems)),
    };
    let Some(journal) = config.existing_journal().await? else {
        match args.run {
            Some(id) => bail!(
                "there is no run {id}: there is no journal at {} yet; `skillsync history` lists the runs",
                config.store_shown()
            ),
            None => bail!(
                "there is no journal at {} yet, so no `apply` run to verify; run `skillsync apply` first",
                config.store_shown()
            ),
        }
    };
    let run = pick_run(journal.as_ref(), args.run, &config.store_shown()).await?;
    let writes = journal.writes(run.id).await?;
    let mappings = journal.mappings().await?;
    let mut grants = verify::grants(&writes);
    // The journal records ids; the mappings know which code each id stands for.
    let labels: HashMap<&str, String> = mappings
        .iter()
        .map(|m| {
            (
                m.definition_id.as_str(),
                format!("{} ({})", m.code, m.locale),
            )
        })
        .collect();
    for grant in &mut grants {
        if grant.label.is_none() {
            grant.label = labels.get(grant.skill.as_str()).cloned();
        }
    }
    let settles_at = journal.settles_at(run.id).await?;

    let report = Report {
        run: &run,
        settles_at,
        grant_count: grants.len(),
        agents: {
            let mut users: Vec<&str> = grants.iter().map(|g| g.user.as_str()).collect();
            users.sort_unstable();
            users.dedup();
            users.len()
        },
    };
    if grants.is_empty() {
        report.print(&args.common.output, &Coverage::default(), &[], None);
        return Ok(nothing_to_verify());
    }

    let settings = match config.client_settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(super::validate::report_problems(&args.common, &problems)),
    };
    let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
    let queues = api
        .queues()
        .await
        .with_context(|| format!("cannot read the queues of {}", config.tenant.api_base))?;
    let coverage = verify::coverage(&grants, &queues);
    if coverage.checks.is_empty() {
        report.print(&args.common.output, &coverage, &[], None);
        return Ok(nothing_to_verify());
    }

    if !args.no_wait
        && let Some(settles_at) = settles_at
    {
        wait_until(settles_at).await;
    }
    let mut verdicts = Vec::with_capacity(coverage.checks.len());
    for check in &coverage.checks {
        let asked_at = Timestamp::now();
        let verdict = match api.test_interaction(&check.queue.id).await {
            Ok(answer) => verify::classify(check, &answer, asked_at),
            Err(error) => Verdict::Unanswered {
                error: skillsync_engine::explain(&error),
            },
        };
        verdicts.push(verdict);
    }
    let outcome = verify::outcome(&verdicts);
    report.print(
        &args.common.output,
        &coverage,
        &verdicts,
        Some(Timestamp::now()),
    );
    Ok(match outcome {
        Outcome::Verified => exit::ok(),
        Outcome::NotYetRoutable => not_routable_yet(),
        Outcome::Failed => exit::error(),
        Outcome::NothingToVerify => nothing_to_verify(),
        Outcome::Inconclusive => inconclusive(),
    })
}

/// The run named by `--run`, or the latest `apply` that changed a skill (the only kind of
/// write routing can show: a run with a settle time).
async fn pick_run(
    journal: &dyn Journal,
    requested: Option<i64>,
    store_url: &str,
) -> anyhow::Result<RunSummary> {
    if let Some(id) = requested {
        return match journal.run(RunId(id)).await? {
            Some(run) => Ok(run),
            None => bail!(
                "there is no run {id} in the journal ({store_url}); `skillsync history` lists the runs"
            ),
        };
    }
    match journal
        .runs(usize::MAX)
        .await?
        .into_iter()
        .find(|run| run.command == "apply" && run.settles_at.is_some())
    {
        Some(run) => Ok(run),
        None => bail!(
            "no `apply` run in the journal ({store_url}) has changed a skill yet, so there is nothing \
             to verify; run `skillsync apply`, or pass --run ID (see `skillsync history`)"
        ),
    }
}

/// Sleeps until the routing cache will have settled on the run, counting down on stderr. The
/// settle time comes from the journal; nothing is polled.
async fn wait_until(settles_at: Timestamp) {
    let remaining = || {
        Duration::try_from(Timestamp::now().duration_until(settles_at)).unwrap_or(Duration::ZERO)
    };
    let total = remaining();
    if total.is_zero() {
        return;
    }
    let until = clock(settles_at);
    if !std::io::stderr().is_terminal() {
        eprintln!(
            "waiting {} for the routing cache to settle (until {until} UTC; --no-wait checks now)",
            humantime::format_duration(round_up(total))
        );
        // A log gets a line every few seconds rather than a redrawn bar.
        loop {
            let left = remaining();
            if left.is_zero() {
                return;
            }
            let step = left.min(Duration::from_secs(10));
            tokio::time::sleep(step).await;
            if step < left {
                eprintln!(
                    "  {} left",
                    humantime::format_duration(round_up(left - step))
                );
            }
        }
    }
    let bar =
        ProgressBar::with_draw_target(Some(total.as_millis() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "waiting for the routing cache to settle [{bar:30}] {msg} (--no-wait checks now)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    loop {
        let left = remaining();
        bar.set_position((total - left.min(total)).as_millis() as u64);
        bar.set_message(format!(
            "{} left, until {until} UTC",
            humantime::format_duration(round_up(left))
        ));
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_millis(250))).await;
    }
    bar.finish_and_clear();
}

/// Whole seconds, rounded up, so a countdown never shows "0s left" while still waiting.
fn round_up(duration: Duration) -> Duration {
    Duration::from_secs(duration.as_secs() + u64::from(duration.subsec_nanos() > 0))
}

fn clock(at: Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

/// The version of the `--output json` document: fields are only added within it.
const SCHEMA_VERSION: u64 = 1;

/// The `--output json` document; its schema is `docs/verify-json.md`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyDocument<'a> {
    schema_version: u64,
    run: i64,
    command: &'a str,
    run_outcome: &'static str,
    started_at: Timestamp,
    settles_at: Option<Timestamp>,
    checked_at: Option<Timestamp>,
    skills_granted: usize,
    agents: usize,
    result: &'static str,
    exit_code: u8,
    queues: Vec<QueueEntry<'a>>,
    uncovered: Vec<UncoveredEntry<'a>>,
}

/// One tested queue. The fields that do not apply to its `result` are absent, not `null`;
/// `routedTo` and `reason` are present but `null` when they apply and the tenant named nobody
/// or gave no reason (hence `Option<Option<_>>`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueEntry<'a> {
    queue_id: &'a str,
    queue_name: &'a str,
    skill_id: &'a DefinitionId,
    skill: Option<&'a str>,
    min_level: u8,
    expected_users: Vec<ExpectedUser<'a>>,
    settles_at: Option<Timestamp>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    routed_to: Option<Option<&'a UserId>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExpectedUser<'a> {
    user_id: &'a UserId,
    level: u8,
}

/// A granted skill no test queue can prove.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UncoveredEntry<'a> {
    skill_id: &'a DefinitionId,
    skill: Option<&'a str>,
    users: &'a [UserId],
    reason: String,
    why: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    production_queues: Option<&'a [String]>,
}

/// What is printed about the run, whatever the result.
struct Report<'a> {
    run: &'a RunSummary,
    settles_at: Option<Timestamp>,
    grant_count: usize,
    agents: usize,
}

impl Report<'_> {
    /// `checked_at` is `None` when no test interaction was submitted.
    fn print(
        &self,
        format: &OutputFormat,
        coverage: &Coverage,
        verdicts: &[Verdict],
        checked_at: Option<Timestamp>,
    ) {
        let outcome = verify::outcome(verdicts);
        match format {
            OutputFormat::Json => {
                let document = self.json(coverage, verdicts, outcome, checked_at);
                print_json(&document).expect("the verify document serializes");
            }
            OutputFormat::Human => out!("{}", self.human(coverage, verdicts, outcome)),
        }
    }

    fn json<'c>(
        &'c self,
        coverage: &'c Coverage,
        verdicts: &'c [Verdict],
        outcome: Outcome,
        checked_at: Option<Timestamp>,
    ) -> VerifyDocument<'c> {
        let queues = coverage
            .checks
            .iter()
            .zip(verdicts)
            .map(|(check, verdict)| {
                let mut entry = QueueEntry {
                    queue_id: &check.queue.id,
                    queue_name: &check.queue.name,
                    skill_id: &check.queue.skill_id,
                    skill: check.label.as_deref(),
                    min_level: check.queue.min_level,
                    expected_users: check
                        .expected
                        .iter()
                        .map(|(user_id, level)| ExpectedUser {
                            user_id,
                            level: *level,
                        })
                        .collect(),
                    settles_at: check.settles_at,
                    result: verdict.name(),
                    routed_to: None,
                    settled: None,
                    reason: None,
                    error: None,
                };
                match verdict {
                    Verdict::Routed { user } => entry.routed_to = Some(Some(user)),
                    Verdict::RoutedToOther { user, settled } => {
                        entry.routed_to = Some(user.as_ref());
                        entry.settled = Some(*settled);
                    }
                    Verdict::NotYetRoutable { reason } | Verdict::Failed { reason } => {
                        entry.reason = Some(reason.as_deref());
                    }
                    Verdict::Unanswered { error } => entry.error = Some(error),
                }
                entry
            })
            .collect();
        let uncovered = coverage
            .uncovered
            .iter()
            .map(|u| UncoveredEntry {
                skill_id: &u.skill,
                skill: u.label.as_deref(),
                users: &u.users,
                reason: uncovered_reason(&u.why),
                why: u.why.name(),
                production_queues: match &u.why {
                    NotCovered::ProductionOnly { queues } => Some(queues),
                    _ => None,
                },
            })
            .collect();
        VerifyDocument {
            schema_version: SCHEMA_VERSION,
            run: self.run.id.0,
            command: &self.run.command,
            run_outcome: self.run.outcome.as_str(),
            started_at: self.run.started_at,
            settles_at: self.settles_at,
            checked_at,
            skills_granted: self.grant_count,
            agents: self.agents,
            result: outcome.name(),
            exit_code: exit_code(outcome),
            queues,
            uncovered,
        }
    }

    fn human(&self, coverage: &Coverage, verdicts: &[Verdict], outcome: Outcome) -> String {
        let mut out = format!(
            "Run {} ({}, {}, started {} UTC): {} skill assignment(s) added, raised or activated for {} agent(s)",
            self.run.id,
            self.run.command,
            self.run.outcome.as_str(),
            self.run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            self.grant_count,
            self.agents,
        );
        match self.settles_at {
            Some(at) => out.push_str(&format!("; routing settles at {} UTC.\n", clock(at))),
            None => out.push_str(".\n"),
        }
        if self.grant_count == 0 {
            out.push_str(
                "Nothing to verify: this run added, raised or activated no skill (only skills route).\n",
            );
            return out;
        }
        if !coverage.checks.is_empty() {
            out.push('\n');
            let rows: Vec<[String; 4]> = coverage
                .checks
                .iter()
                .zip(verdicts)
                .map(|(check, verdict)| {
                    [
                        check.queue.name.clone(),
                        check
                            .label
                            .clone()
                            .unwrap_or_else(|| check.queue.skill_id.to_string()),
                        agents_cell(check),
                        describe(check, verdict),
                    ]
                })
                .collect();
            let header = ["queue", "skill", "agents of this run", "result"].map(String::from);
            let widths: Vec<usize> = (0..3)
                .map(|i| {
                    rows.iter()
                        .chain([&header])
                        .map(|r| r[i].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in [&header].into_iter().chain(&rows) {
                out.push_str(&format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
                    row[0],
                    row[1],
                    row[2],
                    row[3],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                ));
            }
        }
        if !coverage.uncovered.is_empty() {
            out.push_str("\nNot covered by any non-production queue (no test interaction can prove these):\n");
            for u in &coverage.uncovered {
                out.push_str(&format!(
                    "  {}: {} agent(s); {}\n",
                    u.label.clone().unwrap_or_else(|| u.skill.to_string()),
                    u.users.len(),
                    uncovered_reason(&u.why)
                ));
            }
        }
        out.push('\n');
        out.push_str(&match outcome {
            Outcome::Verified => format!(
                "Verified: all {} queue(s) routed to an agent of this run.\n",
                coverage.checks.len()
            ),
            Outcome::Inconclusive => {
                let to_others = verdicts
                    .iter()
                    .filter(|v| matches!(v, Verdict::RoutedToOther { .. }))
                    .count();
                let to_ours = verdicts
                    .iter()
                    .filter(|v| matches!(v, Verdict::Routed { .. }))
                    .count();
                let ours = if to_ours == 0 {
                    String::new()
                } else {
                    format!("; {to_ours} other queue(s) routed to an agent of this run")
                };
                format!(
                    "Inconclusive: {to_others} queue(s) routed, after settling, to another agent who holds the \
                     skill at least as high as ours and so outranks them: that can be right, but it cannot \
                     prove that routing sees this run's assignment{ours} (exit 4).\n"
                )
            }
            Outcome::NotYetRoutable => match self.settles_at {
                Some(at) => format!(
                    "Not yet routable: the routing cache settles at {} UTC; check again then with `skillsync verify --run {}`, which waits for it (exit 2).\n",
                    clock(at),
                    self.run.id
                ),
                None => "Not yet routable (exit 2).\n".to_string(),
            },
            Outcome::Failed => {
                "Failed: routing does not route as this run intended (exit 1).\n".to_string()
            }
            Outcome::NothingToVerify => {
                "Nothing to verify: no non-production queue covers a skill this run changed; add a test queue for it (exit 3).\n"
                    .to_string()
            }
        });
        out
    }
}

fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Verified => 0,
        Outcome::Failed => 1,
        Outcome::NotYetRoutable => 2,
        Outcome::NothingToVerify => 3,
        Outcome::Inconclusive => 4,
    }
}

fn agents_cell(check: &QueueCheck) -> String {
    match check.expected.as_slice() {
        [(user, level)] => format!("{user} (level {level})"),
        [(user, level), rest @ ..] => format!("{user} (level {level}) +{}", rest.len()),
        [] => "-".to_string(),
    }
}

fn describe(check: &QueueCheck, verdict: &Verdict) -> String {
    let settles = check
        .settles_at
        .map_or_else(String::new, |at| format!(" (settles at {} UTC)", clock(at)));
    match verdict {
        Verdict::Routed { user } => format!("routed to {user}"),
        Verdict::RoutedToOther { user, settled } => {
            let who = user
                .as_ref()
                .map_or("an agent the tenant did not name".to_string(), |u| {
                    u.to_string()
                });
            let ours = check.expected.first().map_or(0, |(_, level)| *level);
            if *settled {
                format!(
                    "inconclusive: routed to another agent, {who} (the highest level wins, so {who} holds it at level {ours} or above); it does not prove ours"
                )
            } else {
                format!("routed to another agent, {who}: ours may not be visible yet{settles}")
            }
        }
        Verdict::NotYetRoutable { reason } => format!(
            "not yet routable{settles}{}",
            reason
                .as_ref()
                .map_or_else(String::new, |r| format!(": {r}"))
        ),
        Verdict::Failed { reason } => format!(
            "failed: nobody routed after settling{}",
            reason
                .as_ref()
                .map_or_else(String::new, |r| format!(" ({r})"))
        ),
        Verdict::Unanswered { error } => format!("error: {error}"),
    }
}

fn uncovered_reason(why: &NotCovered) -> String {
    match why {
        NotCovered::NoQueue => "no queue requires it".to_string(),
        NotCovered::ProductionOnly { queues } => format!(
            "only production queues require it ({}), and they take no test interactions",
            queues.join(", ")
        ),
        NotCovered::BelowMinLevel {
            queue,
            min_level,
            highest,
        } => format!(
            "non-production queue {queue} requires level {min_level}; this run gave at most level {highest}"
        ),
    }
}
