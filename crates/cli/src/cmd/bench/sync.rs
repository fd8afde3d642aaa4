//! `skillsync bench sync`: one scenario, three clients. skillsync's apply and a no-change
//! re-sync on one simulator, the naive script on a fresh copy of the same tenant, each measured
//! by the simulator's own counters, against the lower bound.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use skillsync_sim::{GenerateOptions, Knobs, Rate, TenantDoc};

use super::bound::{CxoneWork, LowerBound, SyncWork, TenantLimits, cxone_lower_bound, lower_bound};
use super::naive::{self, NaiveRun};
use super::scenario::{self, Scenario};
use crate::args::{BenchDialect, BenchSyncArgs, CommonArgs};
use crate::config::Config;
use crate::inputs::{Opening, Session};
use crate::local_tenant::{LocalTenant, write_config};
use crate::output::{ColorChoice, OutputFormat, outln};
use skillsync_cxone::TenantApi;

/// The token endpoint, which the simulator counts but which writes nothing.
const TOKEN_ROUTE: &str = "/api/v2/oauth/token";

/// The locales a scenario draws from, in order.
const LOCALES: [&str; 6] = ["en-us", "de-de", "fr-fr", "es-es", "it-it", "nl-nl"];

/// What the simulator counted for one client's run.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measured {
    /// Every API call, the token included, 429s included.
    pub calls: u64,
    /// `POST`, `PUT`, `PATCH` and `DELETE` calls other than the token.
    pub writes: u64,
    /// Answers 429.
    pub throttled: u64,
    /// Calls by `METHOD route`.
    pub by_kind: BTreeMap<String, u64>,
    /// Wall time.
    pub seconds: f64,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: &BenchSyncArgs) -> anyhow::Result<std::process::ExitCode> {
    if !(0.0..=1.0).contains(&args.changed) {
        bail!("--changed must be a share between 0% and 100%");
    }
    if args.locales == 0 || args.locales > LOCALES.len() {
        bail!("--locales must be between 1 and {}", LOCALES.len());
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("skillsync-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: args.agents,
        skills: 12,
        proficiencies: 5,
        locales: LOCALES[..args.locales]
            .iter()
            .map(|l| l.to_string())
            .collect(),
        profiles: 4,
        seed: args.seed,
    });
    let cxone = (args.dialect == BenchDialect::Cxone)
        .then(|| skillsync_sim::cxone::CxoneTenant::from_doc(&doc));
    let scenario =
        scenario::write_hris_for(&dir, &doc, args.changed, args.new_codes, cxone.as_ref())?;
    let (rate, latency) = (args.rate(), args.latency());
    let knobs = Knobs {
        rate_limit: rate,
        burst: args.burst,
        latency,
        ..Knobs::default()
    };
    let limits = TenantLimits {
        requests_per_second: match rate {
            Rate::PerSecond(rate) => Some(rate),
            Rate::Off => None,
        },
        burst: args.burst,
        min_latency_seconds: latency.min.as_secs_f64(),
    };
    let work = SyncWork {
        skill_definitions: doc.skills.len(),
        proficiency_definitions: doc.proficiencies.len(),
        tenant_users: doc.users.len(),
        managed_users: scenario.agents,
        definitions_to_create: scenario.new_definitions.len(),
        users_to_write: scenario.changes.len(),
    };
    let (bound, resync_bound) = match &cxone {
        None => (
            lower_bound(&work),
            lower_bound(&SyncWork {
                definitions_to_create: 0,
                users_to_write: 0,
                skill_definitions: work.skill_definitions + scenario.new_definitions.len(),
                ..work
            }),
        ),
        Some(tenant) => cxone_bounds(tenant, &scenario),
    };
    let human = args.output == OutputFormat::Human;
    if human {
        outln!("skillsync bench sync");
        outln!(
            "  scenario: {} agents in {}; {} changed ({:.0}%), one skill each; {} new codes → {} definitions to create",
            scenario.agents,
            LOCALES[..args.locales].join(", "),
            scenario.changes.len(),
            args.changed * 100.0,
            args.new_codes,
            scenario.new_definitions.len()
        );
        outln!(
            "  tenant:   simulated in-process, {} dialect; rate limit {}, burst {}, latency {}; no faults",
            match args.dialect {
                BenchDialect::Routing => "routing",
                BenchDialect::Cxone => "cxone",
            },
            rate_text(rate),
            args.burst,
            range_text(latency)
        );
        outln!("  files:    {}", dir.display());
    }

    let tenant = LocalTenant::start(&doc, &knobs).await?;
    // The client's limiter follows the tenant's published limit; an unthrottled tenant gets one
    // far above anything the benchmark can send.
    let client_rate = limits.requests_per_second.unwrap_or(1_000_000.0);
    write_config(
        &dir,
        &tenant.base,
        "skillsync bench sync",
        client_rate,
        args.burst,
    )?;
    if cxone.is_some() {
        crate::local_tenant::speak_cxone(&dir, &tenant.base)?;
    }
    if human {
        outln!(
            "\n1. apply ({} users to write), in this process: calls, and the journal's share of skillsync's CPU",
            scenario.changes.len()
        );
    }
    let (apply, applied) = measure(&tenant, || sync_once(&dir)).await?;
    if applied.users_written != scenario.changes.len()
        || applied.definitions_created != scenario.new_definitions.len()
    {
        bail!(
            "apply wrote {} users and created {} definitions; the scenario asks for {} and {}",
            applied.users_written,
            applied.definitions_created,
            scenario.changes.len(),
            scenario.new_definitions.len()
        );
    }
    if human {
        print_measured(&apply, &bound, &limits);
        outln!(
            "   journal: {:.2} s CPU ({:.2} user, {:.2} system) in {} calls = {:.1}% of skillsync's {:.2} s CPU (the simulator's threads not counted)",
            applied.journal.cpu_seconds,
            applied.journal.user_seconds,
            applied.journal.system_seconds,
            applied.journal.calls,
            applied.journal.share * 100.0,
            applied.journal.client_cpu_seconds,
        );
        let methods: Vec<String> = applied
            .journal
            .by_method
            .iter()
            .map(|m| format!("{} ×{} {:.2} s", m.method, m.calls, m.cpu_seconds))
            .collect();
        outln!("            {}", methods.join(", "));
    }

    // A new client starts with the tenant's bucket as the last one left it; let it refill so
    // the re-sync is measured from the same start as the apply.
    tokio::time::sleep(refill_time(&limits)).await;
    if human {
        outln!("\n2. re-sync with nothing to change");
    }
    let (resync, resynced) = measure(&tenant, || sync_once(&dir)).await?;
    if resynced.users_written != 0 || resynced.definitions_created != 0 {
        tenant.stop().await;
        bail!(
            "the re-sync wrote {} users and created {} definitions; it should find nothing to do",
            resynced.users_written,
            resynced.definitions_created
        );
    }
    if human {
        print_measured(&resync, &resync_bound, &limits);
        outln!(
            "\n3. the same apply as its own process (`skillsync apply --yes --summary`, the tenant reset, an empty journal): wall time and peak memory"
        );
    }
    // The in-process runs share this process's memory and CPU with the simulator; a process
    // of its own shows the command's time and peak memory as a user meets them. Its journal
    // share cannot be told apart from outside, so that figure stays the in-process one.
    tenant.reset().await?;
    for name in ["skillsync.db", "skillsync.db-wal", "skillsync.db-shm"] {
        std::fs::remove_file(dir.join(name)).ok();
    }
    // An empty journal, as a scheduled deployment has from its first run (or `serve`): the
    // files are then read while the tenant is. A first run ever reads them before it creates
    // the journal, so that refused files leave none behind, which is measured in BENCHMARKS.
    drop(skillsync_store::open(&format!("sqlite://{}", dir.join("skillsync.db").display())).await?);
    let process = measure(&tenant, || apply_process(&dir)).await;
    tenant.stop().await;
    let (process, usage) = process?;
    if process.writes != apply.writes {
        bail!(
            "the apply process made {} writes where the in-process apply made {}",
            process.writes,
            apply.writes
        );
    }
    let process = ApplyProcess {
        time_ratio: process.seconds / bound.seconds(&limits),
        cpu_seconds: usage.cpu_seconds,
        peak_rss_mib: usage.peak_rss_mib,
        measured: process,
    };
    if human {
        print_measured(&process.measured, &bound, &limits);
        outln!(
            "   {}; {}",
            process
                .cpu_seconds
                .map_or("CPU not measurable".into(), |c| format!("{c:.2} s CPU")),
            process.peak_rss_mib.map_or(
                "peak memory not measurable on this system".into(),
                |p| format!("peak memory {p:.0} MiB")
            )
        );
    }

    // The naive script speaks the Admin API v2 only.
    let naive = if args.naive_users > 0 && cxone.is_none() {
        if human {
            outln!("\n3. naive baseline (the second source document's script)");
        }
        Some(run_naive(&doc, &knobs, &scenario, args.naive_users).await?)
    } else {
        None
    };
    let naive_estimate = naive
        .as_ref()
        .map(|(run, _)| estimate_naive(run, scenario.changes.len()));
    if let (true, Some((run, measured)), Some(estimate)) = (human, &naive, naive_estimate) {
        outln!(
            "   {} users in {:.1} s ({:.0} ms each, {} calls, {} throttled, {} failed)",
            run.users,
            run.per_users.as_secs_f64(),
            run.per_user().as_secs_f64() * 1000.0,
            measured.calls,
            measured.throttled,
            run.failed,
        );
        if run.users < scenario.changes.len() {
            outln!(
                "   scaled down: {} of {} users run; the whole change set extrapolates to {:.0} s",
                run.users,
                scenario.changes.len(),
                estimate
            );
        }
    }

    let call_ratio = apply.calls as f64 / bound.calls() as f64;
    let resync_call_ratio = resync.calls as f64 / resync_bound.calls().max(1) as f64;
    let time_ratio = apply.seconds / bound.seconds(&limits);
    let speedup = naive_estimate.map(|naive| naive / apply.seconds);
    let report = SyncBenchReport {
        schema_version: 1,
        scenario: ScenarioReport {
            agents: scenario.agents,
            locales: LOCALES[..args.locales].to_vec(),
            changed_agents: scenario.changes.len(),
            definitions_to_create: scenario.new_definitions.len(),
            rate_limit_per_second: limits.requests_per_second,
            burst: args.burst,
            latency_ms: [
                latency.min.as_millis() as u64,
                latency.max.as_millis() as u64,
            ],
            seed: args.seed,
        },
        apply: apply.clone(),
        apply_journal: applied.journal.clone(),
        lower_bound: BoundReport {
            calls: bound.calls(),
            writes: bound.writes(),
            by_kind: bound,
            seconds: bound.seconds(&limits),
        },
        call_ratio,
        time_ratio,
        apply_process: process.clone(),
        resync: resync.clone(),
        resync_call_ratio,
        resync_lower_bound: ResyncBound {
            calls: resync_bound.calls(),
            seconds: resync_bound.seconds(&limits),
        },
        naive: naive.as_ref().map(|(run, measured)| NaiveReport {
            users_run: run.users,
            seconds_per_user: run.per_user().as_secs_f64(),
            setup_seconds: run.setup.as_secs_f64(),
            calls: measured.calls,
            throttled: measured.throttled,
            failed: run.failed,
            estimated_seconds: naive_estimate,
            extrapolated: run.users < scenario.changes.len(),
        }),
        speedup_over_naive: speedup,
    };
    match args.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Human => {
            outln!("\nSummary");
            outln!(
                "  apply:   {} calls vs a lower bound of {} → {call_ratio:.3}× (target at 10,000 agents: ≤ 1.05×)",
                apply.calls,
                bound.calls(),
            );
            // Without a rate limit the bound's time is only the round trips it counts: zero
            // without latency, and no ratio to speak of.
            let versus_bound = |ratio: f64| {
                if ratio.is_finite() {
                    format!("{ratio:.3}× the bound's {:.2} s", bound.seconds(&limits))
                } else {
                    "no time bound without a rate limit or latency".to_string()
                }
            };
            outln!(
                "           {:.2} s in this process → {} (target at 10,000 agents: ≤ 1.15×)",
                apply.seconds,
                versus_bound(time_ratio),
            );
            outln!(
                "  journal: {:.1}% of skillsync's CPU in the in-process apply (target < 10%)",
                applied.journal.share * 100.0
            );
            outln!(
                "  apply as its own process: {:.2} s wall → {}; {} (targets at 100,000 agents, no limit: < 2.0 s, < 400 MiB)",
                process.measured.seconds,
                versus_bound(process.time_ratio),
                process
                    .peak_rss_mib
                    .map_or("peak memory not measurable".into(), |p| format!(
                        "peak memory {p:.0} MiB"
                    )),
            );
            outln!(
                "  re-sync: {} calls, {} writes (bound {} calls, reads only) → {resync_call_ratio:.3}×",
                resync.calls,
                resync.writes,
                resync_bound.calls()
            );
            if let Some(speedup) = speedup {
                outln!(
                    "  naive:   {:.0} s for the same change set → skillsync is {speedup:.0}× faster (target ≥ 100×)",
                    naive_estimate.unwrap_or_default()
                );
            }
        }
    }
    Ok(crate::output::exit::ok())
}

/// The CXone dialect's lower bounds of the apply and of the re-sync after it, from the
/// dialect's tenant and the scenario's changes (an existing skill's level is one update; a new
/// code's variant, one assign).
fn cxone_bounds(
    tenant: &skillsync_sim::cxone::CxoneTenant,
    scenario: &Scenario,
) -> (LowerBound, LowerBound) {
    use std::collections::BTreeSet;
    let catalog: BTreeSet<u64> = tenant
        .skills()
        .filter(|s| !s.skill_name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|s| s.skill_id)
        .collect();
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for a in tenant.assignments() {
        if catalog.contains(&a.skill_id) {
            *rows.entry(a.skill_id.to_string()).or_default() += 1;
        }
    }
    let skill_of: BTreeMap<&str, u64> = tenant
        .skills()
        .filter_map(|s| Some((s.definition_id.as_deref()?, s.skill_id)))
        .collect();
    let mut writes: BTreeMap<(String, &str), usize> = BTreeMap::new();
    // New skills sort after the tenant's: their ids are the next ones.
    let mut new_skills: BTreeMap<String, usize> = BTreeMap::new();
    for change in &scenario.changes {
        match &change.skill {
            scenario::SkillTarget::Existing(definition) => {
                let skill = skill_of
                    .get(definition.as_str())
                    .copied()
                    .unwrap_or_default();
                *writes.entry((skill.to_string(), "update")).or_default() += 1;
            }
            scenario::SkillTarget::New { code, locale } => {
                let skill = format!("{code}_{locale}");
                *writes.entry((skill.clone(), "assign")).or_default() += 1;
                *new_skills.entry(skill).or_default() += 1;
            }
        }
    }
    let chunked = |rows: Vec<usize>| -> Vec<usize> {
        rows.chunks(100).map(|chunk| chunk.iter().sum()).collect()
    };
    let catalog_rows: Vec<usize> = catalog
        .iter()
        .map(|id| rows.get(&id.to_string()).copied().unwrap_or(0))
        .collect();
    let written_existing: BTreeSet<&String> = writes
        .keys()
        .filter(|(skill, _)| !new_skills.contains_key(skill))
        .map(|(skill, _)| skill)
        .collect();
    let written_rows: Vec<usize> = written_existing
        .iter()
        .map(|skill| rows.get(*skill).copied().unwrap_or(0))
        .chain(new_skills.values().copied())
        .collect();
    let apply = cxone_lower_bound(&CxoneWork {
        skills: tenant.skills().len(),
        agents: tenant.agents().len(),
        catalog_rows_per_chunk: chunked(catalog_rows.clone()),
        skills_to_create: scenario.new_definitions.len(),
        agents_per_write: writes.values().copied().collect(),
        written_rows_per_chunk: chunked(written_rows),
    });
    let resync = cxone_lower_bound(&CxoneWork {
        skills: tenant.skills().len() + scenario.new_definitions.len(),
        agents: tenant.agents().len(),
        catalog_rows_per_chunk: chunked(
            catalog_rows
                .into_iter()
                .chain(new_skills.values().copied())
                .collect(),
        ),
        skills_to_create: 0,
        agents_per_write: Vec::new(),
        written_rows_per_chunk: Vec::new(),
    });
    (apply, resync)
}

/// What one in-process sync did.
struct Synced {
    users_written: usize,
    definitions_created: usize,
    journal: JournalCost,
}

/// What the journal cost one sync, against the whole process's CPU meanwhile.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JournalCost {
    /// CPU time inside the journal's calls.
    cpu_seconds: f64,
    /// Of which in the process's own code (SQLite, serialization).
    user_seconds: f64,
    /// Of which in the kernel (file writes and reads, page faults).
    system_seconds: f64,
    /// How many calls.
    calls: u64,
    /// The costliest kinds of call: method, calls, CPU seconds.
    by_method: Vec<MethodCost>,
    /// CPU time of the client during the sync (the process's, less the in-process
    /// simulator's threads).
    client_cpu_seconds: f64,
    /// `cpu_seconds` over `client_cpu_seconds`.
    share: f64,
}

/// One kind of journal call's cost.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct MethodCost {
    method: &'static str,
    calls: u64,
    cpu_seconds: f64,
}

/// The apply run as a process of its own: what the simulator counted, and what the kernel
/// accounted to the process.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplyProcess {
    #[serde(flatten)]
    measured: Measured,
    /// Wall time over the lower bound's.
    time_ratio: f64,
    /// CPU time of the process (user and system).
    cpu_seconds: Option<f64>,
    /// Its peak resident memory.
    peak_rss_mib: Option<f64>,
}

/// Runs `skillsync apply --yes --summary` on the benchmark's folder as a child process (this
/// binary), its output kept in the folder; fails unless it applied everything (exit 0).
async fn apply_process(dir: &Path) -> anyhow::Result<super::child::ChildRun> {
    let binary = std::env::current_exe().context("cannot find the skillsync binary")?;
    let config = dir.join("skillsync.toml");
    // A token cache of its own, so it fetches a token as a first command of the day does.
    let cache = dir.join(".token-cache-apply-process");
    std::fs::remove_dir_all(&cache).ok();
    let (stdout, stderr) = (dir.join("apply-process.out"), dir.join("apply-process.err"));
    let (out, err) = (stdout.clone(), stderr.clone());
    let report = dir.join("apply-process.resources.json");
    let run = tokio::task::spawn_blocking(move || {
        super::child::run_measured(
            std::process::Command::new(&binary)
                .args([
                    "apply",
                    "--yes",
                    "--summary",
                    "--color",
                    "never",
                    "--config",
                ])
                .arg(&config)
                // The tenant's definitions were there before this journal: a first run adopts
                // them.
                .env("SKILLSYNC_ADOPT", "all")
                .env("SKILLSYNC_CACHE_DIR", &cache)
                .stdout(std::fs::File::create(&out)?)
                .stderr(std::fs::File::create(&err)?),
            &report,
        )
    })
    .await??;
    if !run.status.success() {
        bail!(
            "skillsync apply exited {}; see {} and {}",
            run.status,
            stdout.display(),
            stderr.display()
        );
    }
    Ok(run)
}

/// What `apply` opens on the benchmark's folder: the config, the client, and the files
/// being read.
pub(super) async fn open(dir: &Path) -> anyhow::Result<Opening> {
    let common = CommonArgs {
        config: dir.join("skillsync.toml"),
        output: OutputFormat::Json,
        color: ColorChoice::Never,
        summary: true,
    };
    match Session::open_reading(&common).await? {
        Ok(opening) => Ok(opening),
        Err(_) => bail!("the benchmark's own config is invalid (see above)"),
    }
}

/// `apply --yes`'s options.
fn sync_options(config: &Config, api: &dyn TenantApi) -> skillsync_engine::SyncOptions {
    skillsync_engine::SyncOptions {
        run: config.run_label("bench", None),
        plan: config.plan_options(api.capabilities().max_bulk_entries.is_some()),
        removal_limit: skillsync_engine::RemovalLimit::Percent(10.0),
        allow_empty_skills: false,
        write: config.write_options(),
        window: None,
        // The benchmark's tenant is generated for it: nobody else's to protect.
        scope: skillsync_engine::SyncScope::Everyone,
        adopt: None,
    }
}

/// `apply --yes` without its printing, on the command's own path: the tenant read from the
/// catalog while the agents and assignments files are read (under the lease), then plan,
/// guards, writes and the journal's record of them.
pub(super) async fn apply_once(
    opening: Opening,
    journal: &dyn skillsync_store::Journal,
) -> anyhow::Result<skillsync_engine::SyncReport> {
    let Opening {
        config,
        reading,
        api,
    } = opening;
    let options = sync_options(&config, api.as_ref());
    let read_from = reading.catalog.clone();
    let reading = parking_lot::Mutex::new(Some(reading));
    let report = skillsync_engine::sync_prepared(
        api.as_ref(),
        journal,
        &options,
        &skillsync_engine::SyncHooks::quiet(),
        read_from.as_ref(),
        async || {
            let reading = reading.lock().take().expect("prepare runs once");
            let loaded = reading
                .finish()
                .await
                .map_err(skillsync_engine::Error::Invalid)?;
            crate::inputs::prepared(loaded, journal).await
        },
        async |_| Ok(()),
    )
    .await;
    match report {
        Ok(report) => Ok(report),
        Err(skillsync_engine::Error::Invalid(problems)) => bail!(
            "the benchmark's own files are invalid: {}",
            problems
                .iter()
                .take(3)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Err(error) => Err(error.into()),
    }
}

/// [`apply_once`], with the journal's CPU measured.
async fn sync_once(dir: &Path) -> anyhow::Result<Synced> {
    let opening = open(dir).await?;
    let journal = super::timed_journal::timed(opening.config.journal().await?);
    let cpu_before = super::timed_journal::client_cpu();
    let report = apply_once(opening, &journal).await?;
    let (journal_cpu, journal_calls) = journal.hook.spent();
    let client_cpu_seconds = super::timed_journal::client_cpu()
        .saturating_sub(cpu_before)
        .as_secs_f64();
    let by_method = journal
        .hook
        .by_method()
        .into_iter()
        .take(3)
        .map(|(method, cost)| MethodCost {
            method,
            calls: cost.calls,
            cpu_seconds: cost.cpu.total().as_secs_f64(),
        })
        .collect();
    let journal = JournalCost {
        cpu_seconds: journal_cpu.total().as_secs_f64(),
        user_seconds: journal_cpu.user.as_secs_f64(),
        system_seconds: journal_cpu.system.as_secs_f64(),
        calls: journal_calls,
        by_method,
        client_cpu_seconds,
        share: journal_cpu.total().as_secs_f64() / client_cpu_seconds.max(f64::EPSILON),
    };
    let applied = match report.outcome {
        skillsync_engine::SyncOutcome::NoChanges => {
            return Ok(Synced {
                users_written: 0,
                definitions_created: 0,
                journal,
            });
        }
        skillsync_engine::SyncOutcome::Applied(applied) => applied,
        other => bail!("the benchmark's sync did not run: {other:?}"),
    };
    if !applied.written.complete() {
        let failed: Vec<_> = applied.written.failed().take(3).collect();
        bail!(
            "the benchmark's sync did not finish: {:?}; first failures: {failed:?}",
            applied.written.stopped
        );
    }
    Ok(Synced {
        users_written: applied.written.tally().0,
        definitions_created: applied.definitions_created,
        journal,
    })
}

/// Runs the script on a fresh copy of the tenant, for at most `sample` users spread over the
/// change set.
async fn run_naive(
    doc: &TenantDoc,
    knobs: &Knobs,
    scenario: &Scenario,
    sample: usize,
) -> anyhow::Result<(NaiveRun, Measured)> {
    let every = scenario.changes.len().div_ceil(sample).max(1);
    let changes: Vec<_> = scenario.changes.iter().step_by(every).cloned().collect();
    let tenant = LocalTenant::start(doc, knobs).await?;
    let base = tenant.base.clone();
    let result = measure(&tenant, || {
        naive::run(&base, &scenario.new_definitions, &changes)
    })
    .await;
    tenant.stop().await;
    let (measured, run) = result?;
    Ok((run, measured))
}

/// The naive script's time for the whole change set: its setup plus its mean time per user.
fn estimate_naive(run: &NaiveRun, users: usize) -> f64 {
    run.setup.as_secs_f64() + run.per_user().as_secs_f64() * users as f64
}

/// How long an emptied bucket takes to fill, and a second more so that the next run surely
/// starts from a full one.
pub(super) fn refill_time(limits: &TenantLimits) -> Duration {
    match limits.requests_per_second {
        Some(rate) => Duration::from_secs_f64(f64::from(limits.burst) / rate + 1.0),
        None => Duration::ZERO,
    }
}

/// Runs `work` and returns what the simulator counted meanwhile.
pub(super) async fn measure<T, F, Fut>(
    tenant: &LocalTenant,
    work: F,
) -> anyhow::Result<(Measured, T)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let before = tenant.inspect("/sim/stats").await?;
    let started = Instant::now();
    let result = work().await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = tenant.inspect("/sim/stats").await?;
    let mut measured = difference(&before, &after);
    measured.seconds = seconds;
    Ok((measured, result))
}

/// The calls counted between two `/sim/stats` answers.
fn difference(before: &Value, after: &Value) -> Measured {
    let rows = |stats: &Value| -> BTreeMap<(String, String, u64), u64> {
        stats["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                (
                    (
                        row["method"].as_str().unwrap_or_default().to_string(),
                        row["route"].as_str().unwrap_or_default().to_string(),
                        row["status"].as_u64().unwrap_or_default(),
                    ),
                    row["count"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let earlier = rows(before);
    let mut measured = Measured::default();
    for ((method, route, status), count) in rows(after) {
        let count = count
            - earlier
                .get(&(method.clone(), route.clone(), status))
                .copied()
                .unwrap_or(0);
        if count == 0 {
            continue;
        }
        measured.calls += count;
        if status == 429 {
            measured.throttled += count;
        }
        if method != "GET" && route != TOKEN_ROUTE {
            measured.writes += count;
        }
        let kind = if status < 400 {
            format!("{method} {route}")
        } else {
            format!("{method} {route} → {status}")
        };
        *measured.by_kind.entry(kind).or_default() += count;
    }
    measured
}

fn print_measured(measured: &Measured, bound: &LowerBound, limits: &TenantLimits) {
    outln!(
        "   {} calls ({} writes, {} throttled) in {:.2} s; lower bound {} calls ({} writes) in {:.2} s",
        measured.calls,
        measured.writes,
        measured.throttled,
        measured.seconds,
        bound.calls(),
        bound.writes(),
        bound.seconds(limits)
    );
    for (kind, count) in &measured.by_kind {
        outln!("     {count:>6}  {kind}");
    }
}

fn rate_text(rate: Rate) -> String {
    match rate {
        Rate::PerSecond(rate) => format!("{rate}/s"),
        Rate::Off => "off".into(),
    }
}

fn range_text(range: skillsync_sim::DurationRange) -> String {
    format!("{}–{} ms", range.min.as_millis(), range.max.as_millis())
}

/// `bench sync --output json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncBenchReport {
    schema_version: u32,
    scenario: ScenarioReport,
    /// The in-process apply.
    apply: Measured,
    apply_journal: JournalCost,
    /// The same apply as a process of its own, on the reset tenant.
    apply_process: ApplyProcess,
    lower_bound: BoundReport,
    call_ratio: f64,
    time_ratio: f64,
    resync: Measured,
    resync_call_ratio: f64,
    resync_lower_bound: ResyncBound,
    naive: Option<NaiveReport>,
    speedup_over_naive: Option<f64>,
}

/// The scenario measured.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ScenarioReport {
    agents: usize,
    locales: Vec<&'static str>,
    changed_agents: usize,
    definitions_to_create: usize,
    rate_limit_per_second: Option<f64>,
    burst: u32,
    latency_ms: [u64; 2],
    seed: u64,
}

/// The lower bound of the apply.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BoundReport {
    calls: usize,
    writes: usize,
    by_kind: LowerBound,
    seconds: f64,
}

/// The lower bound of the re-sync.
#[derive(serde::Serialize)]
struct ResyncBound {
    calls: usize,
    seconds: f64,
}

/// The naive script's run.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NaiveReport {
    users_run: usize,
    seconds_per_user: f64,
    setup_seconds: f64,
    calls: u64,
    throttled: u64,
    failed: usize,
    estimated_seconds: Option<f64>,
    extrapolated: bool,
}
