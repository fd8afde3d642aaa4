//! Command-line arguments, kept apart from the code that runs the commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use skillsync_sim::{DurationRange, Rate};

use crate::output::{ColorChoice, OutputFormat};

/// Keeps CXone agent skills and proficiencies in step with the HR system that owns them.
#[derive(Debug, Parser)]
#[command(name = "skillsync", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print nothing on stdout but a requested --output json document, and no progress bars:
    /// the exit code and stderr's errors say how it went (for cron and scripts).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a simulated CXone tenant (Admin API v2) to develop and test against
    ///
    /// The first line printed gives the base URL and the demo client's id and secret. Explore it
    /// with curl:
    ///
    ///   TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=skillsync-demo \
    ///       -d client_secret=demo-secret-not-for-production \
    ///       http://127.0.0.1:8089/api/v2/oauth/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    ///   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8089/api/v2/routing/skills
    ///
    /// Inspection without auth: /sim/stats, /sim/state, /sim/config, /sim/other-writer;
    /// the API is described at /openapi.json. Ctrl-C stops it.
    #[command(verbatim_doc_comment)]
    Sim(Box<SimArgs>),

    /// Check skillsync.toml and the HRIS files without touching the network.
    ///
    /// Every problem is reported at once, as FILE:LINE:COLUMN with a hint. Exit 0 when valid,
    /// 1 when not.
    Validate(CommonArgs),

    /// Show what `apply` would change, reading the tenant but writing nothing.
    ///
    /// Definitions to create, reactivate or update, then each agent's changes, grouped by agent and
    /// by definition, with the safety counts (removals, agents left with no skills). Only
    /// definitions listed in the catalog are ever touched. Exit 0: no changes; 2: changes; 1: error.
    Plan(PlanArgs),

    /// Reconcile the tenant to the HRIS: the plan, the guards, a confirmation, then the writes.
    ///
    /// Definitions first (created only if absent, never duplicated), then skills, then
    /// proficiencies; bulk above [sync] bulk_threshold users, else merge updates with If-Match.
    /// Another integration's assignments are never touched; a conflict re-reads and re-merges.
    /// Stops before the first write when removals exceed [sync] max_removals or an agent would be
    /// left with no skills. Outside [sync] window (in [tenant] timezone) it refuses before
    /// reading anything, naming when the window next opens, unless --now. Exit 0 when everything
    /// applied, 1 otherwise.
    Apply(ApplyCommandArgs),

    /// Reconcile only these agents to the HRIS files, now (an HR correction to one record)
    ///
    /// The same as apply, scoped: each agent's user is read on its own, both lists are merged
    /// (only the catalog's entries change; another integration's stay) and written with
    /// If-Match, re-reading on conflict; the lease, the journal, the guards (max_removals,
    /// empty skills), the ownership check and [sync] window (unless --now) as apply has them.
    /// No other user is read or written. Exit 0 when everything applied, 1 otherwise.
    ///
    /// Example: skillsync sync-agent E1042 --yes
    SyncAgent(SyncAgentArgs),

    /// List the runs in the journal, newest first: outcome (a killed run shows as
    /// interrupted), writes, and when their changes settle in the routing cache.
    History(HistoryArgs),

    /// Run as the middleware: the nightly full sync, HRIS events over HTTP, metrics.
    ///
    /// One process that syncs the whole tenant at [serve] full_sync_at inside [sync] window (in
    /// the tenant's timezone), takes signed HRIS events on POST /v1/events (a skill change is
    /// written to that agent at once; proficiency changes are gathered and written in bulk every
    /// [serve] proficiency_flush), and answers GET /healthz, /readyz, /metrics (Prometheus) and
    /// /v1/events/{id}. Events are acknowledged (202) only once stored in the journal's
    /// database, so none is lost if the process dies; several processes may share one
    /// PostgreSQL journal. Events are signed with HMAC-SHA256 over "<timestamp>.<body>" with
    /// the secret in [serve] webhook_secret (default: env SKILLSYNC_WEBHOOK_SECRET); see the
    /// README for a curl example. SIGTERM stops intake (503), lets writes in flight finish,
    /// releases the lease and exits 0.
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),

    /// Run the whole job against a simulated tenant, with nothing to configure.
    ///
    /// Starts a simulator in this process (2,000 agents in three locales, mild faults, another
    /// integration writing), writes HRIS files that match it with some differences, then runs
    /// plan, apply and plan again. The files and config stay in a temp folder to read.
    Demo(DemoArgs),

    /// Set one agent's assignment of one code now (e.g. a certification just completed).
    ///
    /// Resolves the code to the agent's own locale variant, creates the definition if it is
    /// missing, then reads the user, changes that one assignment and writes it back with If-Match
    /// (re-reading on conflict). Nothing else on the user changes. Journaled; not bound to the sync
    /// window.
    Assign(AssignArgs),

    /// Take a catalog code out of service: strip every reference, then deactivate it (or --delete)
    ///
    /// The tenant refuses to delete a skill or proficiency while any user, routing profile or
    /// (a proficiency) routing strategy references it (409 REFERENCED). retire resolves CODE to
    /// its definitions (one per locale variant in catalog.csv, duplicates included; --locale
    /// picks one) and shows who references them, then, after confirmation, strips it from every
    /// user (bulk writes, each entry guarded by the user's version; a conflict re-reads and
    /// re-merges; nothing else of the user changes), every routing profile and every routing
    /// strategy (If-Match), and then:
    ///
    ///   (default)   marks it inactive (active:false): the definition is kept for reporting
    ///               history, and nothing is assigned it any more.
    ///   --delete    deletes it. A delete refused because someone referenced it meanwhile
    ///               finds and strips the references again, up to 3 rounds.
    ///   --soft      (instead of stripping) only marks it inactive and keeps its assignments
    ///               for reporting.
    ///
    /// Like apply, outside [sync] window it refuses before reading anything unless --now. The
    /// run is journaled and later plan/apply runs leave the code alone (no reactivation, no
    /// recreation, no assignment added, changed or removed) even while catalog.csv still lists
    /// it; `--undo` hands it back to them. Refuses when a user would be left with no skills,
    /// unless --allow-empty-skills. Exit 0 when done, 1 otherwise. With --output json it prints
    /// one document (and --undo its own): fields in docs/retire-json.md.
    ///
    ///   skillsync retire ACW_SALES --locale de-de        # review, then confirm
    ///   skillsync retire ACW_SALES --delete --yes
    #[command(verbatim_doc_comment)]
    Retire(RetireArgs),

    /// Show where the tenant differs from the HRIS, without writing, with the last write
    /// skillsync journaled for each drifted agent. Exit 0: no drift; 2: drift; 1: error.
    Drift(CommonArgs),

    Export(crate::cmd::export::ExportArgs),

    /// Prove that routing sees a run's skill changes, with test interactions
    ///
    /// A 200 from the API only proves the database changed: the routing engine works from a cache
    /// that catches up after a propagation delay, and reading users back shows the database, not
    /// the cache. So verify:
    ///
    ///   1. picks the run (default: the latest `apply` that changed a skill; see `skillsync history`);
    ///   2. reads from the journal which skills it added, raised or activated, and for whom;
    ///   3. waits until the journal's settles-at time for the run (write time + [sync]
    ///      propagation_window), counting down on stderr, without reading any user;
    ///   4. submits one test interaction to each non-production queue requiring such a skill
    ///      (production queues are never touched).
    ///
    /// Each queue reads:
    ///   routed             an agent with the new assignment got it
    ///   routed to other    another agent got it: before settling, not yet routable; after,
    ///                      inconclusive (that agent outranks ours, the highest level wins,
    ///                      so it proves nothing about our assignment)
    ///   not yet routable   nobody got it, but the change had not settled yet
    ///   failed             nobody got it although the change had settled
    ///
    /// Exit codes: 0 verified (every tested queue routed to an agent of the run); 1 error or
    /// failure; 2 not yet routable (run again after the settle time, or without --no-wait);
    /// 3 nothing to verify (the run changed no skill a non-production queue covers);
    /// 4 inconclusive (no failure, but some queue routed, after settling, to an agent who
    /// outranks the run's: it cannot prove the new assignment).
    /// With --output json it prints one document with the result and every queue's verdict:
    /// fields in docs/verify-json.md.
    ///
    ///   skillsync verify                # the latest apply, after it settles
    ///   skillsync verify --run 42 --no-wait -o json
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),

    Why(crate::cmd::why::WhyArgs),

    /// Measure API calls, wall time and planning at scale (figures in docs/BENCHMARKS.md)
    ///
    /// `bench sync` runs apply, a no-change re-sync and the naive per-user script against
    /// in-process simulators and compares them with the fewest calls any client needs;
    /// `bench plan` times planning 100,000 agents from files on disk. Build with --release:
    ///
    ///   cargo run --release -- bench sync
    ///   cargo run --release -- bench plan
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),

    /// Write a commented skillsync.toml and the HRIS files with their headers, to start from
    ///
    /// Asks nothing: the tenant's api_base and client_id are placeholders to replace, or, with
    /// --from-sim URL, those of a running `skillsync sim`. Refuses to overwrite (nothing
    /// written) unless --force. `skillsync validate` accepts what it writes.
    ///
    /// Example: skillsync init --from-sim http://127.0.0.1:8089
    Init(crate::cmd::init::InitArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    ///
    /// Examples: skillsync completions bash > /etc/bash_completion.d/skillsync;
    /// skillsync completions zsh > "${fpath[1]}/_skillsync"; skillsync completions fish >
    /// ~/.config/fish/completions/skillsync.fish
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff) on stdout
    ///
    /// Example: skillsync man > /usr/local/share/man/man1/skillsync.1 (then `man skillsync`).
    Man,
}

/// Flags of `skillsync bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// apply, a no-change re-sync and the naive script on one scenario, against the lower bound.
    Sync(BenchSyncArgs),
    /// Read, plan and render N agents × M assignments from files on disk; time and peak memory.
    Plan(BenchPlanArgs),
    /// The sync under short tokens, faults, dropped connections and another integration, at
    /// several rate limits: converged?, the other integration's losses, duplicates, calls and
    /// time against the bound. Exit 1 when a rate did not converge or lost anything.
    Chaos(BenchChaosArgs),
    /// `skillsync serve` as a real process against an in-process tenant: events accepted per
    /// second with none lost, skill-event-to-tenant-write latency at the tenant's rate limit,
    /// and the proficiency lane's bulk writes per flush. Exit 1 when an event was lost or not
    /// applied.
    Serve(BenchServeArgs),
    /// The simulator alone as a harness: N keep-alive connections GET one route (by default a
    /// one-user page of /routing/users at random page numbers) for a fixed time against an
    /// in-process tenant with every knob off; requests/s, p50/p99 latency, errors. Exit 1 when
    /// a request failed or none was answered.
    Sim(BenchSimArgs),
}

/// Flags of `skillsync bench sim`.
#[derive(Debug, Args)]
pub struct BenchSimArgs {
    /// Agents in the generated tenant.
    #[arg(long, default_value_t = 100_000)]
    pub agents: usize,

    /// Concurrent keep-alive HTTP/1.1 connections, each one request at a time.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub connections: usize,

    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub duration: std::time::Duration,

    /// Load before measuring (not counted).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub warmup: std::time::Duration,

    /// The request, a path and query under the simulator's root, sent with a valid token;
    /// `{page}` becomes a random page number from 1 to --agents, `{userId}`, `{skillId}` and
    /// `{proficiencyId}` a random id of the tenant's.
    #[arg(
        long,
        default_value = "/api/v2/routing/users?page={page}&pageSize=1",
        value_name = "PATH"
    )]
    pub path: String,

    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print the figures as text or JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// Flags of `skillsync bench serve`.
#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Agents in the generated tenant (HRIS files that match it exactly).
    #[arg(long, default_value_t = 1_000)]
    pub agents: usize,

    /// Intake: signed events sent per batch size.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub events: usize,

    /// Intake: concurrent client connections.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub connections: usize,

    /// Intake: events per request, one measurement (and a fresh service) each (comma-separated).
    #[arg(
        long = "batch",
        default_value = "1,50",
        value_delimiter = ',',
        value_name = "N,N,…"
    )]
    pub batches: Vec<usize>,

    /// Latency: skill events sent one at a time.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub latency_events: usize,

    /// Latency: one skill event every this long (so the lane is not queueing).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub latency_pace: std::time::Duration,

    /// Latency and proficiencies: the tenant's rate limit and the client's, requests per second.
    #[arg(long, default_value_t = 10.0, value_name = "RATE")]
    pub rate_limit: f64,

    /// The tenant's token bucket capacity (and the client's burst).
    #[arg(long, default_value_t = 20)]
    pub burst: u32,

    /// Proficiencies: events sent at once, in batches.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub proficiency_events: usize,

    /// Proficiencies: distinct agents those events are for.
    #[arg(long, default_value_t = 300, value_name = "M")]
    pub proficiency_agents: usize,

    /// Proficiencies: events per request.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub proficiency_batch: usize,

    /// Proficiencies: the service's `[serve] proficiency_flush` (a long one would leave the
    /// last agents, fewer than 100, waiting for it).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub proficiency_flush: std::time::Duration,

    /// A PostgreSQL journal to run against (a fresh schema per measurement, dropped after);
    /// default: SQLite in the benchmark's folder. Give a password through the environment.
    #[arg(
        long,
        env = "SKILLSYNC_BENCH_STORE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub store: Option<String>,

    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,

    /// Where to write the HRIS files, configs and journals (default: a temp folder, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the figures as text or JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// Flags of `skillsync bench chaos`.
#[derive(Debug, Args)]
pub struct BenchChaosArgs {
    /// Agents in the generated tenant (all managed by the HRIS files).
    #[arg(long, default_value_t = 5_000)]
    pub agents: usize,

    /// The tenant's rate limits to run at, requests per second (comma-separated).
    #[arg(
        long,
        default_value = "1,5,10",
        value_delimiter = ',',
        value_name = "R,R,…"
    )]
    pub rates: Vec<f64>,

    /// Share of agents whose assignments change (one skill each).
    #[arg(long, default_value = "30%", value_parser = parse_share, value_name = "P%")]
    pub changed: f64,

    /// New skill codes in the catalog, each created once per locale.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub new_codes: usize,

    /// How long the tenant's tokens live.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub token_ttl: std::time::Duration,

    /// Share of calls answered 500/502/503 before they commit.
    #[arg(long, default_value_t = 0.02, value_name = "P")]
    pub fault_rate: f64,

    /// Share of writes answered 502 after they commit.
    #[arg(long, default_value_t = 0.02, value_name = "P")]
    pub fault_after_commit_rate: f64,

    /// Share of connections dropped.
    #[arg(long, default_value_t = 0.01, value_name = "P")]
    pub drop_rate: f64,

    /// Writes per second of the other integration.
    #[arg(long, default_value_t = 2.0, value_name = "RATE")]
    pub other_writer: f64,

    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,

    /// Where to write the HRIS files, configs and journals (default: a temp folder, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the figures as text or JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// Flags of `skillsync bench sync`.
#[derive(Debug, Args)]
pub struct BenchSyncArgs {
    /// Agents in the generated tenant (all managed by the HRIS files).
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,

    /// Share of agents whose assignments change (one skill each), e.g. 30%.
    #[arg(long, default_value = "30%", value_parser = parse_share, value_name = "P%")]
    pub changed: f64,

    /// Locales the tenant and the HRIS use (1–6).
    #[arg(long, default_value_t = 2)]
    pub locales: usize,

    /// New skill codes in the catalog, each created once per locale.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub new_codes: usize,

    /// The simulated tenant's rate limit, e.g. 10/s; `off` for none.
    #[arg(long, default_value = "10/s", value_name = "RATE")]
    pub rate_limit: Rate,

    /// The tenant's token bucket capacity.
    #[arg(long, default_value_t = 20)]
    pub burst: u32,

    /// Latency of every request: a duration or a uniform range.
    #[arg(long, default_value = "20ms..80ms", value_name = "RANGE")]
    pub latency: DurationRange,

    /// `off`: no rate limit and no latency (`--rate-limit off --latency 0ms`), to measure the
    /// client's own cost.
    #[arg(long, value_enum, value_name = "off", conflicts_with_all = ["rate_limit", "latency"])]
    pub limit: Option<BenchLimit>,

    /// Users the naive baseline runs (spread over the change set; its time for the whole set is
    /// extrapolated from them); 0 skips it. It needs about 0.3 s per user.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub naive_users: usize,

    /// The API the simulated tenant speaks: the Admin API v2 (`routing`) or the CXone Admin API
    /// (`cxone`: assignments per skill, docs/sim-cxone.md; no naive baseline).
    #[arg(long, value_enum, default_value_t = BenchDialect::Routing)]
    pub dialect: BenchDialect,

    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,

    /// Where to write the HRIS files, config and journal (default: a temp folder, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the figures as text or JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// Flags of `skillsync bench plan`.
#[derive(Debug, Args)]
pub struct BenchPlanArgs {
    /// Agents in the HRIS files.
    #[arg(long, default_value_t = 100_000)]
    pub agents: usize,

    /// Assignments per agent (1–40).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub per_agent: usize,

    /// Time `skillsync plan` as a user runs it instead of the planning core alone: a separate
    /// process reading the files and the whole tenant over HTTP from an in-process simulator
    /// (no rate limit, no latency), planning and printing; its wall time and peak memory.
    #[arg(long)]
    pub end_to_end: bool,

    /// Where to write the files, kept (default: a temp folder, removed afterwards); with
    /// --end-to-end also the tenant, as `tenant.json` for `skillsync sim --fixture`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print the figures as text or JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
}

/// A share written as `30%` or `0.3`.
fn parse_share(text: &str) -> Result<f64, String> {
    let share = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("expected a share such as 30% or 0.3, got {text:?}"))?;
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("a share must be between 0% and 100%, got {text:?}"))
    }
}

/// Flags of `skillsync verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The run to verify (an id from `skillsync history`); default: the latest `apply` run that
    /// changed a skill.
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,

    /// Check now instead of waiting for the run's changes to settle; queues nobody is routed to
    /// yet then read "not yet routable" (exit 2), not "failed".
    #[arg(long)]
    pub no_wait: bool,
}

/// Flags of `skillsync assign`.
#[derive(Debug, Args)]
pub struct AssignArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The agent: an employee_id or user_id from agents.csv.
    pub employee: String,

    /// The HRIS code from catalog.csv.
    pub code: String,

    /// Level 1–10.
    pub level: i64,

    /// Assign it inactive (kept, but not routed).
    #[arg(long)]
    pub inactive: bool,

    /// If another skillsync is writing to this tenant (it holds the tenant's lease), wait up to
    /// this long (e.g. 5m) for it instead of refusing at once with exit code 75.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
}

/// Flags of `skillsync retire`.
#[derive(Debug, Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The HRIS code from catalog.csv.
    pub code: String,

    /// Only this locale's variant (default: every variant of the code).
    #[arg(long, value_name = "LOCALE")]
    pub locale: Option<String>,

    /// Strip every reference (users, routing profiles, routing strategies), then delete the
    /// definition instead of marking it inactive (the default keeps it, `active: false`, for
    /// reporting history). `--hard` is an older spelling.
    #[arg(long, alias = "hard", conflicts_with = "soft")]
    pub delete: bool,

    /// Only mark it inactive, keeping its assignments and references for reporting.
    #[arg(long)]
    pub soft: bool,

    /// Manage the code again: forget its retirement (the next apply reactivates or recreates
    /// it). Writes nothing to the tenant.
    #[arg(long, conflicts_with_all = ["soft", "delete"])]
    pub undo: bool,

    /// Retire without asking (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Allow users whose only skill it is to be left with none (out of every queue).
    #[arg(long)]
    pub allow_empty_skills: bool,

    /// Retire now even outside [sync] window (like `apply --now`).
    #[arg(long)]
    pub now: bool,

    /// If another skillsync is writing to this tenant (it holds the tenant's lease), wait up to
    /// this long (e.g. 5m) for it instead of refusing at once with exit code 75.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
}

/// Flags of `skillsync serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (SPEC section 3); `[serve]` holds the service's settings.
    #[arg(
        long,
        short = 'c',
        env = "SKILLSYNC_CONFIG",
        default_value = "skillsync.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// Address to listen on, overriding [serve] listen (default 127.0.0.1:8787; port 0 picks
    /// a free port, printed on the first line).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,

    /// Log lines as readable text, or as one JSON object per line for log pipelines.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub adopt: AdoptArgs,
}

/// `bench sync --limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchLimit {
    /// No rate limit and no latency.
    Off,
}

impl BenchSyncArgs {
    /// The tenant's rate limit, `--limit off` included.
    pub fn rate(&self) -> Rate {
        match self.limit {
            Some(BenchLimit::Off) => Rate::Off,
            None => self.rate_limit,
        }
    }

    /// The tenant's latency, `--limit off` included.
    pub fn latency(&self) -> DurationRange {
        match self.limit {
            Some(BenchLimit::Off) => DurationRange {
                min: std::time::Duration::ZERO,
                max: std::time::Duration::ZERO,
            },
            None => self.latency,
        }
    }
}

/// How `serve` writes its log.
/// The dialect `bench sync` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchDialect {
    /// The Admin API v2: whole lists per user, bulk writes of 100 users.
    Routing,
    /// The CXone Admin API: one write per (skill, operation) per 100 agents.
    Cxone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Flags of `skillsync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Agents in the simulated tenant.
    #[arg(long, default_value_t = 2000)]
    pub agents: usize,

    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,

    /// Colour: auto, always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Flags of `skillsync history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// Flags of `skillsync apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Apply without asking (for schedulers and CI).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Override [sync] max_removals for this run: a count (500) or a share ("15%").
    #[arg(long, value_name = "N|P%", value_parser = crate::config::parse_max_removals_arg)]
    pub max_removals: Option<crate::config::MaxRemovals>,

    /// Allow agents to be left with no skills at all (they drop out of every queue).
    #[arg(long)]
    pub allow_empty_skills: bool,

    /// Apply now even outside [sync] window (an urgent fix during business hours).
    #[arg(long)]
    pub now: bool,

    /// If another skillsync is writing to this tenant (it holds the tenant's lease), wait up to
    /// this long (e.g. 5m) for it instead of refusing at once with exit code 75.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,

    #[command(flatten)]
    pub adopt: AdoptArgs,
}

/// Flags of `skillsync apply`: those of every apply, and a saved plan to apply instead of
/// planning anew.
#[derive(Debug, Args)]
pub struct ApplyCommandArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// A plan saved by `skillsync plan --out FILE`: apply exactly its changes, or refuse
    /// before the first write when the HRIS files, the config or its users changed since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
}

/// Flags of `skillsync sync-agent`.
#[derive(Debug, Args)]
pub struct SyncAgentArgs {
    /// The agents, by employee id as in agents.csv (one or more).
    #[arg(value_name = "EMPLOYEE_ID", required = true)]
    pub employees: Vec<String>,

    #[command(flatten)]
    pub apply: ApplyArgs,
}

/// Flags of `skillsync plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Also save the plan to FILE, for `skillsync apply FILE` to apply exactly (no secret or
    /// token is written; format: docs/saved-plan.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub adopt: AdoptArgs,
}

/// Taking over definitions that exist in the tenant but that skillsync did not make.
#[derive(Debug, Clone, Default, Args)]
pub struct AdoptArgs {
    /// Take over the tenant definitions of this catalog code (repeatable; `all` for every one)
    /// although skillsync neither created nor adopted them: without it, a plan that would
    /// remove or change their assignments is refused, as they may be another integration's.
    /// Adoption is remembered in the journal; review what it takes with `plan --adopt CODE`.
    #[arg(
        long,
        value_name = "CODE|all",
        value_delimiter = ',',
        env = "SKILLSYNC_ADOPT"
    )]
    pub adopt: Vec<String>,
}

/// Flags shared by the sync commands.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The configuration file (SPEC section 3).
    #[arg(
        long,
        short = 'c',
        env = "SKILLSYNC_CONFIG",
        default_value = "skillsync.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// Print the result as readable text or as one JSON document with a schemaVersion (schemas:
    /// docs/plan-json.md, docs/drift-json.md, docs/history-json.md, docs/retire-json.md,
    /// docs/verify-json.md).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// Colour: auto (terminal, unless NO_COLOR is set), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Show only the plan's headline, safety and writes lines, not every agent.
    #[arg(long)]
    pub summary: bool,
}

/// Flags of `skillsync sim` (SPEC 1.6).
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,

    /// Serve HTTPS with a freshly minted CA, written to --ca-file for clients to trust.
    #[arg(long)]
    pub tls: bool,

    /// Where --tls writes the CA certificate (PEM).
    #[arg(long, value_name = "FILE", default_value_os_t = default_ca_file())]
    pub ca_file: PathBuf,

    #[command(flatten, next_help_heading = "Gateway")]
    pub gateway: GatewayArgs,

    #[command(flatten, next_help_heading = "Faults")]
    pub faults: FaultArgs,

    #[command(flatten, next_help_heading = "Tenant contents")]
    pub tenant: TenantArgs,
}

/// Throttling, latency and timing.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Tenant-wide token bucket rate, e.g. 10/s or 600/m; `off` disables throttling.
    #[arg(long, default_value = "10/s", value_name = "RATE")]
    pub rate_limit: Rate,

    /// Token bucket capacity.
    #[arg(long, default_value_t = 20)]
    pub burst: u32,

    /// The token endpoint's own limit.
    #[arg(long, default_value = "5/m", value_name = "RATE")]
    pub token_rate_limit: Rate,

    /// Requests one client may have in flight; 0 = no cap. Over it → 429.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_in_flight: u32,

    /// Latency added to each request: a duration or a uniform range.
    #[arg(long, default_value = "20ms..80ms", value_name = "RANGE")]
    pub latency: DurationRange,

    /// Delay before a committed skill change reaches the routing cache.
    #[arg(long, default_value = "15s..30s", value_name = "RANGE")]
    pub propagation: DurationRange,

    /// Lifetime of access tokens.
    #[arg(long, default_value = "1h", value_parser = humantime_duration, value_name = "DURATION")]
    pub token_ttl: std::time::Duration,
}

/// Hostility on demand.
#[derive(Debug, Args)]
pub struct FaultArgs {
    /// Probability of answering 500/502/503 before applying anything.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_rate: f64,

    /// Probability of applying a write, then answering 502 (a blind retry duplicates).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_after_commit_rate: f64,

    /// Probability of closing the connection without an answer.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub drop_rate: f64,

    /// Probability that a user write (PUT of a user, each bulk entry) answers success but is not
    /// kept: a read-back shows the old assignments.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub lose_write_rate: f64,

    /// Probability that a user write (PUT of a user, each bulk entry) that passed every check is
    /// refused with 400 and not applied, while reads keep working.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub reject_write_rate: f64,

    /// Writes per second by another integration that owns the Ext_ definitions (0 = off).
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub other_writer: f64,
}

/// A generated tenant, or a fixture file.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Agents (users) to generate.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub agents: usize,

    /// Skill names to generate, each in every locale.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub skills: usize,

    /// Proficiency names to generate, each in every locale.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub proficiencies: usize,

    /// Locales, comma separated, lowercase BCP-47.
    #[arg(
        long,
        default_value = "en-us,de-de",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub locales: Vec<String>,

    /// Routing profiles to generate.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub profiles: usize,

    /// Seed: the same flags and seed always give the same tenant.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Load the tenant from a JSON file (the shape of GET /sim/state) instead of generating one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["agents", "skills", "proficiencies", "locales", "profiles", "seed"])]
    pub fixture: Option<PathBuf>,
}

fn default_ca_file() -> PathBuf {
    std::env::temp_dir().join("skillsync-sim").join("ca.pem")
}

fn humantime_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 90s, 1h)"))
}
