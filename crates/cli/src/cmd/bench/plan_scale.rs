//! `skillsync bench plan`: the planning core alone at scale. Writes HRIS files for N agents ×
//! M assignments to disk, holds a tenant snapshot in memory that differs for 30% of the agents
//! (the live read is the client's work, measured by `bench sync`), then times what `skillsync
//! plan` does with them: read and validate the files, resolve, plan, render. Peak memory is the
//! process's high-water mark, reset just before the timed part.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{
    Assignment, Definition, DefinitionId, Kind, Level, Live, Locale, PlanOptions, UserAssignments,
    UserId, Version,
};

use crate::args::BenchPlanArgs;
use crate::output::{OutputFormat, outln};

const LOCALES: [&str; 2] = ["en-us", "de-de"];
/// Codes in the catalog; each agent holds `per_agent` consecutive ones.
const CODES: usize = 40;

/// Runs the benchmark and prints its figures.
pub async fn run(args: &BenchPlanArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.per_agent == 0 || args.per_agent > CODES {
        bail!("--per-agent must be between 1 and {CODES}");
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("skillsync-bench-plan-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if args.end_to_end {
        let result = end_to_end(args, &dir).await;
        if args.dir.is_none() {
            std::fs::remove_dir_all(&dir).ok();
        }
        return result;
    }
    let human = args.output == OutputFormat::Human;
    if human {
        outln!("skillsync bench plan");
        outln!(
            "  writing {} agents × {} assignments to {} …",
            args.agents,
            args.per_agent,
            dir.display()
        );
    }
    let bytes = write_files(&dir, args.agents, args.per_agent)?;
    let live = snapshot(args.agents, args.per_agent);
    let changed_agents = (0..args.agents).filter(|a| is_changed(*a)).count();

    let baseline_rss = rss_kib("VmRSS");
    let reset = reset_peak_rss();
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let open = |name: &str| -> anyhow::Result<Source<BufReader<File>>> {
        let path = dir.join(name);
        Ok(Source {
            name: path.display().to_string(),
            reader: BufReader::with_capacity(
                1 << 16,
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?,
            ),
        })
    };
    let loaded = read_desired(
        open("catalog.csv")?,
        open("agents.csv")?,
        open("assignments.csv")?,
    )
    .map_err(|problems| anyhow::anyhow!("the generated files are invalid: {}", problems[0]))?;
    let read_seconds = started.elapsed().as_secs_f64();
    let options = PlanOptions {
        bulk_threshold: 50,
        bulk_batch_size: 100,
        bulk_available: true,
        ..PlanOptions::default()
    };
    let plan = skillsync_core::plan(&loaded.desired, &live, &options)
        .map_err(|problems| anyhow::anyhow!("the plan failed: {}", problems[0]))?;
    let plan_seconds = started.elapsed().as_secs_f64() - read_seconds;
    let text =
        crate::output::plan_text(&plan, skillsync_core::render::Style { color: false }, false);
    let total_seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_started)
        .map(|(end, start)| end - start);
    let peak_kib = rss_kib("VmHWM");
    if plan.totals.users_changed != changed_agents {
        bail!(
            "the plan changes {} users; the scenario changed {changed_agents}",
            plan.totals.users_changed
        );
    }

    let peak_mib = peak_kib.map(|kib| kib as f64 / 1024.0);
    let report = PlanBenchReport {
        schema_version: 1,
        agents: args.agents,
        assignments_per_agent: args.per_agent,
        assignment_rows: args.agents * args.per_agent,
        file_megabytes: bytes as f64 / 1e6,
        users_changed: plan.totals.users_changed,
        read_seconds,
        plan_seconds,
        render_seconds: total_seconds - read_seconds - plan_seconds,
        total_seconds,
        cpu_seconds: cpu,
        peak_rss_mib: peak_mib,
        peak_is_since_reset: reset,
        rss_before_mib: baseline_rss.map(|kib| kib as f64 / 1024.0),
        rendered_bytes: text.len(),
    };
    match args.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Human => {
            outln!(
                "  {} rows ({:.0} MB of CSV); {} agents differ from the tenant",
                args.agents * args.per_agent,
                bytes as f64 / 1e6,
                changed_agents
            );
            outln!(
                "  read and validate {read_seconds:.2} s, plan {plan_seconds:.2} s, render {:.2} s ({:.1} MB of text)",
                total_seconds - read_seconds - plan_seconds,
                text.len() as f64 / 1e6
            );
            outln!(
                "  total {total_seconds:.2} s wall{} (target < 2 s)",
                cpu.map_or(String::new(), |c| format!(", {c:.2} s CPU"))
            );
            match peak_mib {
                Some(peak) => outln!(
                    "  peak memory {peak:.0} MiB{} (target < 1024 MiB; the tenant snapshot held in memory was {:.0} MiB before)",
                    if reset {
                        ""
                    } else {
                        " (whole process: the peak could not be reset)"
                    },
                    baseline_rss.unwrap_or_default() as f64 / 1024.0
                ),
                None => outln!("  peak memory: not measurable on this system"),
            }
        }
    }
    if args.dir.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(crate::output::exit::ok())
}

/// `bench plan --end-to-end`: the files on disk, the tenant served by an in-process simulator
/// with no rate limit and no latency, and `skillsync plan` run as its own process against them,
/// so its time and memory are the command's alone (the simulator's are not in them).
async fn end_to_end(args: &BenchPlanArgs, dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    let human = args.output == OutputFormat::Human;
    let hris = dir.join("hris");
    std::fs::create_dir_all(&hris).with_context(|| format!("cannot create {}", hris.display()))?;
    if human {
        outln!("skillsync bench plan --end-to-end");
        outln!(
            "  writing {} agents × {} assignments to {} and serving the same tenant in-process …",
            args.agents,
            args.per_agent,
            hris.display()
        );
    }
    let bytes = write_files(&hris, args.agents, args.per_agent)?;
    let doc = tenant_doc(&snapshot(args.agents, args.per_agent));
    if args.dir.is_some() {
        // Kept with the files, so a run can be profiled on its own against
        // `skillsync sim --fixture DIR/tenant.json --rate-limit off`.
        let path = dir.join("tenant.json");
        let file =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &doc)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let changed_agents = (0..args.agents).filter(|a| is_changed(*a)).count();
    let knobs = skillsync_sim::Knobs {
        rate_limit: skillsync_sim::Rate::Off,
        latency: skillsync_sim::DurationRange {
            min: std::time::Duration::ZERO,
            max: std::time::Duration::ZERO,
        },
        ..skillsync_sim::Knobs::quiet()
    };
    let tenant = crate::local_tenant::LocalTenant::start(&doc, &knobs).await?;
    drop(doc);
    crate::local_tenant::write_config(
        dir,
        &tenant.base,
        "skillsync bench plan --end-to-end",
        1_000_000.0,
        1_000,
    )?;
    let binary = std::env::current_exe().context("cannot find the skillsync binary")?;
    let config = dir.join("skillsync.toml");
    let output_path = dir.join("plan.json");
    let cache = dir.join(".token-cache");
    let written = output_path.clone();
    let report = dir.join("resources.json");
    let run_plan = move || -> anyhow::Result<super::child::ChildRun> {
        let out = File::create(&written)
            .with_context(|| format!("cannot write {}", written.display()))?;
        super::child::run_measured(
            std::process::Command::new(&binary)
                .args(["plan", "--output", "json", "--config"])
                .arg(&config)
                .env("SKILLSYNC_ADOPT", "all")
                .env("SKILLSYNC_CACHE_DIR", &cache)
                .stdout(out)
                .stderr(std::process::Stdio::null()),
            &report,
        )
    };
    // The first run fetches and caches a token, as a user's first command of the day does.
    let first = tokio::task::spawn_blocking(run_plan.clone()).await??;
    if first.status.code() != Some(2) {
        tenant.stop().await;
        bail!(
            "skillsync plan exited {} (2 expected: changes to make)",
            first.status
        );
    }
    let measured = tokio::task::spawn_blocking(run_plan).await??;
    let (first_seconds, seconds) = (first.wall_seconds, measured.wall_seconds);
    let (peak_mib, cpu_seconds) = (measured.peak_rss_mib, measured.cpu_seconds);
    tenant.stop().await;
    let plan: serde_json::Value = serde_json::from_reader(BufReader::new(
        File::open(&output_path)
            .with_context(|| format!("cannot read {}", output_path.display()))?,
    ))
    .context("skillsync plan printed something other than its JSON document")?;
    let users_changed = plan["totals"]["usersChanged"].as_u64().unwrap_or_default() as usize;
    if users_changed != changed_agents {
        bail!("the plan changes {users_changed} users; the scenario changed {changed_agents}");
    }
    let report = EndToEndReport {
        schema_version: 1,
        agents: args.agents,
        assignments_per_agent: args.per_agent,
        file_megabytes: bytes as f64 / 1e6,
        users_changed,
        first_run_seconds: first_seconds,
        seconds,
        cpu_seconds,
        peak_rss_mib: peak_mib,
    };
    match args.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Human => {
            outln!(
                "  {} rows ({:.0} MB of CSV); {} agents differ from the tenant",
                args.agents * args.per_agent,
                bytes as f64 / 1e6,
                users_changed
            );
            outln!(
                "  skillsync plan: {seconds:.2} s wall{} (target < 2 s; the first run, which also fetched a token, {first_seconds:.2} s)",
                cpu_seconds.map_or(String::new(), |c| format!(", {c:.2} s CPU of its own"))
            );
            match peak_mib {
                Some(peak) => outln!("  peak memory {peak:.0} MiB (target < 600 MiB)"),
                None => outln!("  peak memory: not measurable on this system"),
            }
        }
    }
    Ok(crate::output::exit::ok())
}

/// The simulator's tenant document for the same tenant as [`snapshot`].
fn tenant_doc(live: &Live) -> skillsync_sim::TenantDoc {
    let definition = |d: &Definition| skillsync_sim::Definition {
        id: d.id.to_string(),
        name: d.name.clone(),
        locale: d.locale.to_string(),
        active: d.active,
        description: d.description.clone(),
        routing_profile_id: d.routing_profile_id.clone(),
        version: 1,
        date_modified: jiff::Timestamp::UNIX_EPOCH,
    };
    let held = |list: &[Assignment]| -> Vec<skillsync_sim::Assignment> {
        list.iter()
            .map(|a| skillsync_sim::Assignment {
                id: a.definition.to_string(),
                level: a.level.get(),
                active: a.active,
            })
            .collect()
    };
    skillsync_sim::TenantDoc {
        profiles: live
            .profile_ids
            .iter()
            .map(|id| skillsync_sim::Profile {
                id: id.clone(),
                name: id.clone(),
                skills: Vec::new(),
                proficiencies: Vec::new(),
                version: 1,
            })
            .collect(),
        skills: live
            .definitions
            .iter()
            .filter(|d| d.kind == Kind::Skill)
            .map(definition)
            .collect(),
        proficiencies: live
            .definitions
            .iter()
            .filter(|d| d.kind == Kind::Proficiency)
            .map(definition)
            .collect(),
        users: live
            .users
            .iter()
            .enumerate()
            .map(|(a, u)| skillsync_sim::User {
                id: u.user_id.to_string(),
                first_name: String::new(),
                last_name: String::new(),
                email: String::new(),
                locale: LOCALES[a % 2].to_string(),
                routing_profile_id: "rp-0".into(),
                skills: held(&u.skills),
                proficiencies: held(u.proficiencies.as_deref().unwrap_or_default()),
                version: 1,
                date_modified: jiff::Timestamp::UNIX_EPOCH,
            })
            .collect(),
        ..skillsync_sim::TenantDoc::default()
    }
}

/// `bench plan --end-to-end --output json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EndToEndReport {
    schema_version: u32,
    agents: usize,
    assignments_per_agent: usize,
    file_megabytes: f64,
    users_changed: usize,
    first_run_seconds: f64,
    seconds: f64,
    cpu_seconds: Option<f64>,
    peak_rss_mib: Option<f64>,
}

/// Three agents in ten hold one level different from the HRIS.
fn is_changed(agent: usize) -> bool {
    agent % 10 < 3
}

fn code(agent: usize, k: usize) -> usize {
    (agent + k) % CODES
}

fn kind_of(code: usize) -> Kind {
    if code.is_multiple_of(2) {
        Kind::Skill
    } else {
        Kind::Proficiency
    }
}

fn level(agent: usize, k: usize) -> u8 {
    1 + ((agent + k) % 10) as u8
}

fn user_id(agent: usize) -> String {
    format!("00000000-0000-4000-8000-{agent:012}")
}

fn definition_id(code: usize, locale: &str) -> String {
    format!("def-c{code:03}-{locale}")
}

/// Streams the three files to disk; returns their total size.
fn write_files(dir: &Path, agents: usize, per_agent: usize) -> anyhow::Result<u64> {
    let create = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let path = dir.join(name);
        Ok(BufWriter::with_capacity(
            1 << 16,
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
        ))
    };
    let mut catalog = create("catalog.csv")?;
    writeln!(
        catalog,
        "code,kind,locale,name,description,routing_profile_id"
    )?;
    for c in 0..CODES {
        for locale in LOCALES {
            writeln!(
                catalog,
                "C{c:03},{},{locale},Code {c},A description,rp-{}",
                kind_of(c).noun(),
                c % 4
            )?;
        }
    }
    catalog.flush()?;
    let mut agent_file = create("agents.csv")?;
    let mut assignments = create("assignments.csv")?;
    writeln!(agent_file, "employee_id,user_id,locale")?;
    writeln!(assignments, "employee_id,code,level,active")?;
    for a in 0..agents {
        writeln!(agent_file, "EMP{a:06},{},{}", user_id(a), LOCALES[a % 2])?;
        for k in 0..per_agent {
            writeln!(assignments, "EMP{a:06},C{:03},{},", code(a, k), level(a, k))?;
        }
    }
    agent_file.flush()?;
    assignments.flush()?;
    let size = ["catalog.csv", "agents.csv", "assignments.csv"]
        .iter()
        .map(|name| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len()))
        .sum();
    Ok(size)
}

/// The tenant as a live read would find it: every catalog definition, every agent holding what
/// the files say except one level for the changed ones.
fn snapshot(agents: usize, per_agent: usize) -> Live {
    let mut definitions = Vec::new();
    for c in 0..CODES {
        for locale in LOCALES {
            definitions.push(Definition {
                id: DefinitionId::from(definition_id(c, locale)),
                kind: kind_of(c),
                name: format!("Code {c}"),
                locale: Locale::parse(locale).expect("a valid locale"),
                active: true,
                description: "A description".into(),
                routing_profile_id: format!("rp-{}", c % 4),
                version: Version(1),
            });
        }
    }
    let users = (0..agents)
        .map(|a| {
            let locale = LOCALES[a % 2];
            let mut skills = Vec::new();
            let mut proficiencies = Vec::new();
            for k in 0..per_agent {
                let c = code(a, k);
                let mut held = level(a, k);
                if k == 0 && is_changed(a) {
                    held = held % 10 + 1;
                }
                let assignment = Assignment {
                    definition: DefinitionId::from(definition_id(c, locale)),
                    level: Level::try_from(held).expect("1–10"),
                    active: true,
                };
                match kind_of(c) {
                    Kind::Skill => skills.push(assignment),
                    Kind::Proficiency => proficiencies.push(assignment),
                }
            }
            UserAssignments {
                user_id: UserId::from(user_id(a)),
                skills,
                proficiencies: Some(proficiencies),
                version: Version(1),
                modified_at: None,
                unmapped: Default::default(),
            }
        })
        .collect();
    Live {
        definitions,
        users,
        profile_ids: (0..4).map(|p| format!("rp-{p}")).collect::<BTreeSet<_>>(),
        sees_proficiencies: true,
        without_profiles: false,
    }
}

/// Resets the kernel's high-water mark of this process's resident memory, so the peak read
/// afterwards belongs to the timed part (Linux; false where unsupported).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `/proc/self/status` field in KiB (Linux).
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of the whole process (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// `bench plan --output json`: what planning at scale cost.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanBenchReport {
    schema_version: u32,
    agents: usize,
    assignments_per_agent: usize,
    assignment_rows: usize,
    file_megabytes: f64,
    users_changed: usize,
    read_seconds: f64,
    plan_seconds: f64,
    render_seconds: f64,
    total_seconds: f64,
    cpu_seconds: Option<f64>,
    peak_rss_mib: Option<f64>,
    peak_is_since_reset: bool,
    rss_before_mib: Option<f64>,
    rendered_bytes: usize,
}
