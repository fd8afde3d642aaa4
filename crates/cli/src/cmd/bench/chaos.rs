//! `skillsync bench chaos`: the sync under everything at once, at several rate limits. Tokens
//! that expire mid-run, faults before and after commit, dropped connections and another
//! integration writing to the same users; skillsync runs `apply` until a run finds nothing
//! left to do, and the benchmark prints whether it converged (owned assignments = desired),
//! whether the other integration lost anything, duplicates, and calls and time against the
//! lower bound of the same work on a quiet tenant.

use anyhow::bail;
use skillsync_sim::{GenerateOptions, Knobs, Rate};

use super::bound::{SyncWork, TenantLimits, lower_bound};
use super::scenario;
use super::sync::{Measured, apply_once, measure, open};
use crate::args::BenchChaosArgs;
use crate::local_tenant::{LocalTenant, write_config};
use crate::output::{OutputFormat, outln};

/// Most runs of `apply` the benchmark allows before it calls the sync unconverged.
const MAX_RUNS: usize = 4;

/// One rate's figures.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ChaosRow {
    requests_per_second: f64,
    /// Runs of `apply` until one found nothing to do (that last run included).
    runs: usize,
    /// Calls of that last run, which only confirmed there was nothing left.
    confirming_calls: Option<u64>,
    converged: bool,
    /// Users the first run left failed or not attempted (the next run took them).
    first_run_unfinished: usize,
    /// Calls of the runs that wrote (the confirming run not included).
    calls: u64,
    bound_calls: usize,
    seconds: f64,
    bound_seconds: f64,
    throttled: u64,
    /// Calls answered 401 (a token the tenant no longer took).
    unauthorized: u64,
    faults_before_commit: u64,
    faults_after_commit: u64,
    dropped_connections: u64,
    tokens_issued: u64,
    other_writer_writes: u64,
    other_writer_assignments_lost: usize,
    duplicates_created: u64,
    /// Calls of the writing runs by `METHOD route` (and status, when not a success).
    by_kind: std::collections::BTreeMap<String, u64>,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: &BenchChaosArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("skillsync-chaos-{}", std::process::id())),
    };
    let human = args.output == OutputFormat::Human;
    if human {
        outln!("skillsync bench chaos");
        outln!(
            "  scenario: {} agents, {:.0}% changed, {} new codes; tokens live {}; faults {:.0}% before and {:.0}% after commit, {:.0}% dropped connections; another integration writing {}/s",
            args.agents,
            args.changed * 100.0,
            args.new_codes,
            humantime::format_duration(args.token_ttl),
            args.fault_rate * 100.0,
            args.fault_after_commit_rate * 100.0,
            args.drop_rate * 100.0,
            args.other_writer
        );
        outln!("  files:    {}", dir.display());
    }
    let mut rows = Vec::new();
    for &rate in &args.rates {
        let row = one_rate(args, rate, &dir.join(format!("rate-{rate}"))).await?;
        if human {
            print_row(&row);
        }
        rows.push(row);
    }
    if !human {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "schemaVersion": 1, "rates": rows })
            )?
        );
    }
    let all_good = rows
        .iter()
        .all(|r| r.converged && r.other_writer_assignments_lost == 0 && r.duplicates_created == 0);
    Ok(if all_good {
        crate::output::exit::ok()
    } else {
        std::process::ExitCode::FAILURE
    })
}

async fn one_rate(
    args: &BenchChaosArgs,
    rate: f64,
    dir: &std::path::Path,
) -> anyhow::Result<ChaosRow> {
    std::fs::create_dir_all(dir)?;
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: args.agents,
        skills: 12,
        proficiencies: 5,
        locales: vec!["en-us".into(), "de-de".into()],
        profiles: 4,
        seed: args.seed,
    });
    let scenario = scenario::write_hris(dir, &doc, args.changed, args.new_codes)?;
    let burst = (rate * 2.0).ceil().max(1.0) as u32;
    let knobs = Knobs {
        rate_limit: Rate::PerSecond(rate),
        burst,
        token_ttl: args.token_ttl,
        fault_rate: args.fault_rate,
        fault_after_commit_rate: args.fault_after_commit_rate,
        drop_rate: args.drop_rate,
        other_writer: args.other_writer,
        ..Knobs::default()
    };
    let limits = TenantLimits {
        requests_per_second: Some(rate),
        burst,
        min_latency_seconds: knobs.latency.min.as_secs_f64(),
    };
    let bound = lower_bound(&SyncWork {
        skill_definitions: doc.skills.len(),
        proficiency_definitions: doc.proficiencies.len(),
        tenant_users: doc.users.len(),
        managed_users: scenario.agents,
        definitions_to_create: scenario.new_definitions.len(),
        users_to_write: scenario.changes.len(),
    });
    let tenant = LocalTenant::start(&doc, &knobs).await?;
    write_config(dir, &tenant.base, "skillsync bench chaos", rate, burst)?;
    let done = converge(&tenant, dir).await?;
    let stats = tenant.inspect("/sim/stats").await?;
    let lost = tenant.other_writer_losses().await?;
    tenant.stop().await;
    let count = |key: &str| stats[key].as_u64().unwrap_or(0);
    // The work is the runs that wrote; the last, converged run only confirms there is none left.
    let writing = if done.converged {
        &done.runs[..done.runs.len() - 1]
    } else {
        &done.runs[..]
    };
    let sum = |f: &dyn Fn(&Measured) -> u64| writing.iter().map(f).sum::<u64>();
    let unauthorized = sum(&|m| {
        m.by_kind
            .iter()
            .filter(|(kind, _)| kind.ends_with("→ 401"))
            .map(|(_, n)| n)
            .sum()
    });
    Ok(ChaosRow {
        requests_per_second: rate,
        runs: done.runs.len(),
        converged: done.converged,
        first_run_unfinished: done.first_unfinished,
        calls: sum(&|m| m.calls),
        bound_calls: bound.calls(),
        seconds: writing.iter().map(|m| m.seconds).sum(),
        bound_seconds: bound.seconds(&limits),
        confirming_calls: done
            .converged
            .then(|| done.runs.last().map_or(0, |m| m.calls)),
        throttled: sum(&|m| m.throttled),
        unauthorized,
        faults_before_commit: count("faultsBeforeCommit"),
        faults_after_commit: count("faultsAfterCommit"),
        dropped_connections: count("droppedConnections"),
        tokens_issued: count("tokensIssued"),
        other_writer_writes: lost.writes,
        other_writer_assignments_lost: lost.lost,
        duplicates_created: count("duplicatesCreated"),
        by_kind: writing.iter().flat_map(|m| m.by_kind.iter()).fold(
            Default::default(),
            |mut all, (kind, n)| {
                *all.entry(kind.clone()).or_default() += n;
                all
            },
        ),
    })
}

/// What the runs until convergence did.
struct Converged {
    /// Calls and time of each run, the last (finding nothing to do, when converged) included.
    runs: Vec<Measured>,
    converged: bool,
    /// Users the first run did not finish (failed or not attempted).
    first_unfinished: usize,
}

/// Runs the sync until a run finds nothing to change.
async fn converge(tenant: &LocalTenant, dir: &std::path::Path) -> anyhow::Result<Converged> {
    let mut done = Converged {
        runs: Vec::new(),
        converged: false,
        first_unfinished: 0,
    };
    for run in 1..=MAX_RUNS {
        let (measured, outcome) = measure(tenant, || async {
            let opening = open(dir).await?;
            let journal = opening.config.journal().await?;
            Ok(apply_once(opening, journal.as_ref()).await?.outcome)
        })
        .await?;
        done.runs.push(measured);
        match outcome {
            skillsync_engine::SyncOutcome::NoChanges => {
                done.converged = true;
                return Ok(done);
            }
            skillsync_engine::SyncOutcome::Applied(applied) => {
                if run == 1 {
                    let (_, _, failed, not_attempted) = applied.written.tally();
                    done.first_unfinished = failed + not_attempted;
                }
            }
            other => bail!("the chaos sync did not run: {other:?}"),
        }
    }
    Ok(done)
}

fn print_row(row: &ChaosRow) {
    outln!(
        "\n  {}/s: {} after {} writing run(s){}; {} calls vs a bound of {} ({:.2}×), {:.1} s vs {:.1} s ({:.2}×)",
        row.requests_per_second,
        if row.converged {
            "converged"
        } else {
            "NOT converged"
        },
        row.runs - usize::from(row.converged),
        row.confirming_calls
            .map(|c| format!(" (a further run found nothing to do: {c} calls)"))
            .unwrap_or_default(),
        row.calls,
        row.bound_calls,
        row.calls as f64 / row.bound_calls as f64,
        row.seconds,
        row.bound_seconds,
        row.seconds / row.bound_seconds,
    );
    outln!(
        "     {} throttled, {} answered 401, {} tokens issued; faults {} before / {} after commit, {} dropped; first run left {} users for the next",
        row.throttled,
        row.unauthorized,
        row.tokens_issued,
        row.faults_before_commit,
        row.faults_after_commit,
        row.dropped_connections,
        row.first_run_unfinished,
    );
    outln!(
        "     other integration: {} writes, {} of its assignments lost; {} duplicate definitions",
        row.other_writer_writes,
        row.other_writer_assignments_lost,
        row.duplicates_created,
    );
}
