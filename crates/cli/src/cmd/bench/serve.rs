//! `skillsync bench serve`: the service as a real process (`serve`, spawned from this very
//! binary) against an in-process tenant, measured from outside as an HRIS would see it:
//!
//! 1. **Intake**: signed events accepted per second over loopback from several connections,
//!    none lost (every id answered 202, the service's own count of accepted events the same,
//!    a sample read back). The events are proficiencies for fewer than 100 agents and the flush
//!    is an hour away, so neither lane works meanwhile: the figure is the intake's alone.
//! 2. **Latency**: skill events one at a time at the tenant's rate limit, each from its 202 to
//!    its `settledAt` as `applied` (the tenant written and read back), and the tenant calls
//!    each cost.
//! 3. **Proficiency batching**: many proficiency events for many agents at once; the tenant's
//!    calls by kind, and bulk writes against ceil(agents / 100) per flush (flushes are the
//!    journal's `serve-proficiencies` runs, read with `skillsync history --output json`).
//!
//! Each measurement gets a fresh tenant, folder and journal (SQLite, or a fresh schema of the
//! PostgreSQL database `--store` names).

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use skillsync_sim::{GenerateOptions, Knobs, Rate, TenantDoc};

use super::sync::measure;
use crate::args::BenchServeArgs;
use crate::local_tenant::{LocalTenant, write_config};
use crate::output::{OutputFormat, outln};

/// Agents the intake's events are for: fewer than the 100 that make the proficiency lane
/// flush early, so the lanes stay idle while intake is measured.
const INTAKE_AGENTS: usize = 99;
/// Events read back one by one after the intake run.
const SAMPLE: usize = 100;
/// Agents per bulk write, and the waiting agents that flush the proficiency lane (SPEC).
const PER_BULK: usize = 100;
/// How long the benchmark waits for events to settle before calling them lost.
const SETTLE_DEADLINE: Duration = Duration::from_secs(300);
/// How often an event's state is polled while its latency is measured.
const POLL: Duration = Duration::from_millis(10);
/// The environment variable the service gets a PostgreSQL password from (never the config).
const PASSWORD_VAR: &str = "SKILLSYNC_BENCH_STORE_PASSWORD";

/// Runs the benchmark and prints its figures.
pub async fn run(args: &BenchServeArgs) -> anyhow::Result<ExitCode> {
    check_args(args)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("skillsync-bench-serve-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: args.agents,
        skills: 12,
        proficiencies: 5,
        locales: vec!["en-us".into()],
        profiles: 4,
        seed: args.seed,
    });
    let proficiency = doc
        .proficiencies
        .iter()
        .find(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .map(|d| (d.name.clone(), d.id.clone()))
        .context("the generated tenant has no proficiency of the catalog")?;
    let nonce = format!(
        "{:x}-{:x}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let bench = Bench {
        args,
        dir: dir.clone(),
        doc,
        proficiency,
        secret: format!("bench-serve-{nonce}"),
        nonce,
        store: args.store.as_deref().map(Postgres::new).transpose()?,
    };
    let command = command_line();
    let human = args.output == OutputFormat::Human;
    if human {
        outln!("skillsync bench serve");
        outln!("  command:  {command}");
        outln!(
            "  tenant:   {} agents in en-us, simulated in-process; `skillsync serve` spawned as a child process on 127.0.0.1",
            args.agents
        );
        outln!(
            "  journal:  {}",
            match &bench.store {
                Some(pg) => format!("PostgreSQL {} (a fresh schema per measurement)", pg.shown),
                None => "SQLite in each measurement's folder".into(),
            }
        );
        outln!("  files:    {}", dir.display());
    }

    let mut intake_rows = Vec::new();
    for &batch in &args.batches {
        if human {
            outln!(
                "\n1. intake: {} events, batches of {batch}, {} connections  (--events {} --batch {batch} --connections {})",
                args.events,
                args.connections,
                args.events,
                args.connections
            );
        }
        let row = intake(&bench, batch).await?;
        if human {
            print_intake(&row);
        }
        intake_rows.push(row);
    }

    if human {
        outln!(
            "\n2. skill event → tenant write latency: {} events, one every {}, tenant at {}/s  (--latency-events {} --latency-pace {} --rate-limit {})",
            args.latency_events,
            humantime::format_duration(args.latency_pace),
            args.rate_limit,
            args.latency_events,
            humantime::format_duration(args.latency_pace),
            args.rate_limit
        );
    }
    let latency = latency(&bench).await?;
    if human {
        print_latency(&latency);
    }

    if human {
        outln!(
            "\n3. proficiency batching: {} events for {} agents in batches of {}, flush every {}, tenant at {}/s  (--proficiency-events {} --proficiency-agents {} --proficiency-batch {} --proficiency-flush {})",
            args.proficiency_events,
            args.proficiency_agents,
            args.proficiency_batch,
            humantime::format_duration(args.proficiency_flush),
            args.rate_limit,
            args.proficiency_events,
            args.proficiency_agents,
            args.proficiency_batch,
            humantime::format_duration(args.proficiency_flush),
        );
    }
    let proficiencies = proficiencies(&bench).await?;
    if human {
        print_proficiencies(&proficiencies);
    }

    let sound = intake_rows
        .iter()
        .all(|r| r.lost == 0 && r.counted_by_service)
        && latency.not_applied.is_empty()
        && latency.tenant_mismatches == 0
        && proficiencies.not_applied == 0
        && proficiencies.tenant_mismatches == 0;
    let report = ServeBenchReport {
        schema_version: 1,
        command,
        store: if bench.store.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        agents: args.agents,
        intake: intake_rows,
        latency,
        proficiencies,
        sound,
    };
    match args.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Human => print_summary(&report),
    }
    Ok(if sound {
        crate::output::exit::ok()
    } else {
        ExitCode::FAILURE
    })
}

fn check_args(args: &BenchServeArgs) -> anyhow::Result<()> {
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    if args.proficiency_agents == 0 || args.proficiency_agents > args.agents {
        bail!(
            "--proficiency-agents must be between 1 and --agents ({})",
            args.agents
        );
    }
    if args.proficiency_events < args.proficiency_agents {
        bail!("--proficiency-events must be at least --proficiency-agents (one event per agent)");
    }
    if args.connections == 0 || args.proficiency_batch == 0 || args.batches.contains(&0) {
        bail!("--connections, --batch and --proficiency-batch must be at least 1");
    }
    if args.latency_events > args.agents {
        bail!("--latency-events must be at most --agents (one agent each)");
    }
    if args.rate_limit.is_nan() || args.rate_limit <= 0.0 {
        bail!("--rate-limit must be above 0 requests per second");
    }
    Ok(())
}

/// This command as typed, with the program called `skillsync` and any password in `--store`
/// masked.
fn command_line() -> String {
    let mut words = vec!["skillsync".to_string()];
    let mut store_next = false;
    for arg in std::env::args().skip(1) {
        let word = if store_next {
            skillsync_store::redact(&arg)
        } else if let Some(url) = arg.strip_prefix("--store=") {
            format!("--store={}", skillsync_store::redact(url))
        } else {
            arg.clone()
        };
        store_next = arg == "--store";
        words.push(word);
    }
    words.join(" ")
}

/// What every measurement shares.
struct Bench<'a> {
    args: &'a BenchServeArgs,
    dir: PathBuf,
    doc: TenantDoc,
    /// The proficiency code the events set (not the other integration's) and its tenant id.
    proficiency: (String, String),
    /// Makes this run's event ids its own (a PostgreSQL journal outlives runs).
    nonce: String,
    /// The webhook secret the service is started with and the benchmark signs with.
    secret: String,
    store: Option<Postgres>,
}

/// One measurement's folder, tenant and service.
struct Setup {
    dir: PathBuf,
    tenant: LocalTenant,
    served: Served,
    schema: Option<String>,
}

impl Bench<'_> {
    /// A folder with HRIS files matching the tenant exactly, a config with `[serve]` (and
    /// `[store]` for PostgreSQL), and the service started on it.
    async fn setup(
        &self,
        name: &str,
        knobs: &Knobs,
        client_rate: f64,
        serve: &str,
    ) -> anyhow::Result<Setup> {
        let dir = self.dir.join(name);
        // A folder left by an earlier run would hold its journal and events.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let scenario = super::scenario::write_hris(&dir, &self.doc, 0.0, 0)?;
        debug_assert!(scenario.changes.is_empty());
        let tenant = LocalTenant::start(&self.doc, knobs).await?;
        write_config(
            &dir,
            &tenant.base,
            "skillsync bench serve",
            client_rate,
            self.args.burst,
        )?;
        // The nightly full sync is put half a day away: it must not run during a measurement.
        let full_sync_at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(12))
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .strftime("%H:%M:%S")
            .to_string();
        let mut extra = format!("\n[serve]\nfull_sync_at = \"{full_sync_at}\"\n{serve}\n");
        let schema = match &self.store {
            Some(pg) => {
                let schema = format!("skillsync_bench_{}_{}", std::process::id(), name)
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                let url = pg.create_schema(&schema).await?;
                extra.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
                if pg.password.is_some() {
                    extra.push_str(&format!("password = {{ env = \"{PASSWORD_VAR}\" }}\n"));
                }
                Some(schema)
            }
            None => None,
        };
        let path = dir.join("skillsync.toml");
        let config = std::fs::read_to_string(&path)?;
        std::fs::write(&path, format!("{config}{extra}"))?;
        let served = Served::start(&dir, &self.secret, self.password()).await?;
        Ok(Setup {
            dir,
            tenant,
            served,
            schema,
        })
    }

    fn password(&self) -> Option<&str> {
        self.store.as_ref().and_then(|pg| pg.password.as_deref())
    }

    /// Stops the service and the tenant, and drops the measurement's schema.
    async fn teardown(&self, setup: Setup) {
        setup.served.stop().await;
        setup.tenant.stop().await;
        if let (Some(pg), Some(schema)) = (&self.store, &setup.schema)
            && let Err(error) = pg.drop_schema(schema).await
        {
            tracing::warn!(error = %format!("{error:#}"), schema, "could not drop the benchmark's schema");
        }
    }

    /// An `assignment.set` event of this run.
    fn event(
        &self,
        id: String,
        employee: &str,
        code: &str,
        level: u8,
        at: jiff::Timestamp,
    ) -> Value {
        json!({
            "id": format!("{}-{id}", self.nonce),
            "type": "assignment.set",
            "occurredAt": at.to_string(),
            "employeeId": employee,
            "code": code,
            "level": level,
        })
    }
}

/// The HRIS files' employee id of the tenant's `i`th user (`scenario::write_hris`).
fn employee(i: usize) -> String {
    format!("E{:06}", i + 1)
}

/// A request body: one event as itself, several in `{"events": [...]}`.
fn body(events: &[Value], batch: usize) -> String {
    if batch == 1 && events.len() == 1 {
        events[0].to_string()
    } else {
        json!({ "events": events }).to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The service as a child process.

/// A running `skillsync serve`.
struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Its stderr so far.
    log: Arc<parking_lot::Mutex<String>>,
    http: reqwest::Client,
}

impl Served {
    /// Starts `serve` on a free loopback port and waits for the line saying where it listens.
    async fn start(dir: &Path, secret: &str, password: Option<&str>) -> anyhow::Result<Served> {
        let exe = std::env::current_exe().context("cannot find this program to start `serve`")?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--config")
            .arg(dir.join("skillsync.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env("SKILLSYNC_WEBHOOK_SECRET", secret)
            .env("SKILLSYNC_ADOPT", "all")
            .env("SKILLSYNC_CACHE_DIR", dir.join(".token-cache"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(password) = password {
            command.env(PASSWORD_VAR, password);
        }
        let mut child = command.spawn().context("cannot start `skillsync serve`")?;
        let log = Arc::new(parking_lot::Mutex::new(String::new()));
        let stderr = child.stderr.take().context("no stderr")?;
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = sink.lock();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().context("no stdout")?;
        let (first, rest) = tokio::sync::oneshot::channel();
        // Reads the first line, then keeps draining: a closed pipe would end the service.
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = first.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = tokio::time::timeout(Duration::from_secs(30), rest)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let http = reqwest::Client::new();
        let mut served = Served {
            child,
            base: String::new(),
            log,
            http,
        };
        match line
            .trim()
            .strip_prefix("skillsync serve listening on ")
            .filter(|url| url.starts_with("http://"))
        {
            Some(url) => served.base = url.to_string(),
            None => bail!(
                "`skillsync serve` did not say where it listens (first line {line:?}); its log:\n{}",
                served.log_tail(40)
            ),
        }
        Ok(served)
    }

    /// The last `lines` lines it logged.
    fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until `/readyz` answers 200 (the store open, a token from the tenant).
    async fn ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(format!("{}/readyz", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("`serve` not ready after 30 s:\n{}", self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/metrics`: each sample's name (with its labels) and value.
    async fn metrics(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect())
    }

    /// The sum of a metric's samples (all labels).
    async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        Ok(self
            .metrics()
            .await?
            .iter()
            .filter(|(series, _)| {
                series == name
                    || series
                        .strip_prefix(name)
                        .is_some_and(|r| r.starts_with('{'))
            })
            .map(|(_, v)| v)
            .sum())
    }

    /// `GET /v1/events/{id}`, or `Null` when it is not stored.
    async fn event(&self, id: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/v1/events/{id}", self.base))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Value::Null);
        }
        Ok(response.error_for_status()?.json().await?)
    }

    /// SIGTERM, as systemd would stop it; killed if it has not exited after 35 s (its grace
    /// for writes in flight is 30 s).
    async fn stop(mut self) {
        #[cfg(unix)]
        {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: signals the child this struct started and has not reaped yet.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(35);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sending signed events.

/// `POST /v1/events` with the signature headers, signed now.
fn signed(
    client: &reqwest::Client,
    base: &str,
    secret: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let timestamp = jiff::Timestamp::now().as_second();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .header("x-skillsync-timestamp", timestamp.to_string())
        .header("x-skillsync-signature", signature)
        .body(body)
}

/// What sending a set of bodies got.
#[derive(Debug, Default)]
struct Sent {
    /// Events answered 202 for the first time.
    accepted: usize,
    /// Events answered 202 as already stored.
    repeated: usize,
    /// Events not answered 202, by status (or the connection's error).
    refused: BTreeMap<String, usize>,
    /// Each request's time to its answer.
    request_ms: Vec<f64>,
    /// From the first request to the last answer.
    seconds: f64,
}

/// Sends `bodies` (each with its count of events) over `connections` connections at once,
/// each connection taking the next body as soon as it has its answer.
async fn send_all(
    base: &str,
    secret: &str,
    bodies: Vec<(String, usize)>,
    connections: usize,
) -> Sent {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections.min(bodies.len()).max(1))
        .map(|_| {
            let (bodies, next) = (bodies.clone(), next.clone());
            let (base, secret) = (base.to_string(), secret.to_string());
            tokio::spawn(async move {
                // One connection each, kept open.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap_or_default();
                let mut sent = Sent::default();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, count)) = bodies.get(k) else {
                        break;
                    };
                    let asked = Instant::now();
                    let answer = signed(&client, &base, &secret, body.clone()).send().await;
                    let outcome = match answer {
                        Ok(response) if response.status().as_u16() == 202 => {
                            match response.json::<Value>().await {
                                Ok(answer) => {
                                    let ids =
                                        |key: &str| answer[key].as_array().map_or(0, Vec::len);
                                    Ok((ids("accepted"), ids("repeated")))
                                }
                                Err(e) => Err(format!("202 without its JSON: {e}")),
                            }
                        }
                        Ok(response) => Err(response.status().as_u16().to_string()),
                        Err(e) => Err(format!("no answer: {e}")),
                    };
                    sent.request_ms.push(asked.elapsed().as_secs_f64() * 1000.0);
                    match outcome {
                        Ok((accepted, repeated)) => {
                            sent.accepted += accepted.saturating_sub(repeated);
                            sent.repeated += repeated;
                        }
                        Err(why) => *sent.refused.entry(why).or_default() += count,
                    }
                }
                sent
            })
        })
        .collect();
    let mut all = Sent::default();
    for task in tasks {
        let sent = task.await.unwrap_or_default();
        all.accepted += sent.accepted;
        all.repeated += sent.repeated;
        for (why, n) in sent.refused {
            *all.refused.entry(why).or_default() += n;
        }
        all.request_ms.extend(sent.request_ms);
    }
    all.seconds = started.elapsed().as_secs_f64();
    all
}

/// The `q` quantile (nearest rank) of `values`, which it sorts.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

// ---------------------------------------------------------------------------------------------
// 1. Intake.

/// One intake measurement.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IntakeRow {
    batch: usize,
    events: usize,
    connections: usize,
    requests: usize,
    seconds: f64,
    events_per_second: f64,
    /// Events answered 202 (new ids).
    accepted: usize,
    /// Events not answered 202, by status or error.
    refused: BTreeMap<String, usize>,
    /// Events sent and not accepted.
    lost: usize,
    /// `skillsync_events_accepted_total` after the run.
    service_accepted: u64,
    /// `skillsync_event_queue_depth` after the run (the lanes were idle: all of them).
    service_queued: u64,
    /// Whether the service counted exactly the events answered 202.
    counted_by_service: bool,
    /// Ids read back with `GET /v1/events/{id}`, and how many were stored.
    sampled: usize,
    sampled_stored: usize,
    request_ms_p50: f64,
    request_ms_p99: f64,
}

async fn intake(bench: &Bench<'_>, batch: usize) -> anyhow::Result<IntakeRow> {
    let args = bench.args;
    let code = bench.proficiency.0.clone();
    let agents = INTAKE_AGENTS.min(args.agents);
    // The proficiency lane waits an hour and never sees 100 agents: the lanes stay idle, and
    // every event stays queued where it can be counted.
    let serve = format!(
        "proficiency_flush = \"1h\"\nmax_queued = {}\n",
        args.events + 1_000
    );
    let setup = bench
        .setup(
            &format!("intake-batch-{batch}"),
            &Knobs::quiet(),
            1_000.0,
            &serve,
        )
        .await?;
    let now = jiff::Timestamp::now();
    let events: Vec<Value> = (0..args.events)
        .map(|n| {
            bench.event(
                format!("intake-{batch}-{n}"),
                &employee(n % agents),
                &code,
                1 + (n % 10) as u8,
                now,
            )
        })
        .collect();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    // Bodies are made before the clock starts: the service is measured, not JSON on this side.
    let bodies: Vec<(String, usize)> = events
        .chunks(batch)
        .map(|chunk| (body(chunk, batch), chunk.len()))
        .collect();
    let requests = bodies.len();
    let mut sent = send_all(&setup.served.base, &bench.secret, bodies, args.connections).await;
    let service_accepted = setup
        .served
        .metric("skillsync_events_accepted_total")
        .await? as u64;
    let service_queued = setup.served.metric("skillsync_event_queue_depth").await? as u64;
    let every = (ids.len() / SAMPLE).max(1);
    let mut sampled = 0;
    let mut sampled_stored = 0;
    for id in ids.iter().step_by(every) {
        sampled += 1;
        if setup.served.event(id).await?["state"].is_string() {
            sampled_stored += 1;
        }
    }
    let row = IntakeRow {
        batch,
        events: args.events,
        connections: args.connections,
        requests,
        seconds: sent.seconds,
        events_per_second: sent.accepted as f64 / sent.seconds.max(f64::EPSILON),
        accepted: sent.accepted,
        lost: args.events - sent.accepted.min(args.events),
        refused: std::mem::take(&mut sent.refused),
        service_accepted,
        service_queued,
        counted_by_service: service_accepted == sent.accepted as u64
            && service_queued == sent.accepted as u64,
        sampled,
        sampled_stored,
        request_ms_p50: quantile(&mut sent.request_ms, 0.5),
        request_ms_p99: quantile(&mut sent.request_ms, 0.99),
    };
    if row.lost > 0 || !row.counted_by_service {
        tracing::warn!(log = %setup.served.log_tail(20), "intake lost events");
    }
    bench.teardown(setup).await;
    Ok(row)
}

fn print_intake(row: &IntakeRow) {
    outln!(
        "   {} events in {} requests in {:.2} s → {:.0} events/s accepted (goal ≥ 1,000/s: {})",
        row.events,
        row.requests,
        row.seconds,
        row.events_per_second,
        met(row.events_per_second >= 1_000.0)
    );
    outln!(
        "   answered 202: {}; not 202: {}{}; the service's skillsync_events_accepted_total {} and queue depth {}; {} of {} sampled ids stored",
        row.accepted,
        row.lost,
        if row.refused.is_empty() {
            String::new()
        } else {
            format!(" {:?}", row.refused)
        },
        row.service_accepted,
        row.service_queued,
        row.sampled_stored,
        row.sampled,
    );
    outln!(
        "   request to 202: p50 {:.1} ms, p99 {:.1} ms",
        row.request_ms_p50,
        row.request_ms_p99
    );
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "NOT met" }
}

// ---------------------------------------------------------------------------------------------
// 2. Latency.

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LatencyReport {
    events: usize,
    pace_seconds: f64,
    requests_per_second: f64,
    /// From the 202 to `settledAt` (state `applied`), in ms.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    min_ms: f64,
    /// The same seen by polling every 10 ms (an upper bound, by up to a poll and a request).
    polled_p50_ms: f64,
    polled_p99_ms: f64,
    /// Tenant calls during the run (by the simulator's count), per event, and by kind.
    calls: u64,
    calls_per_event: f64,
    writes_per_event: f64,
    throttled: u64,
    by_kind: BTreeMap<String, u64>,
    /// Events that did not end `applied`, with their state.
    not_applied: Vec<String>,
    /// Agents the tenant does not hold at the level their event set.
    tenant_mismatches: usize,
}

async fn latency(bench: &Bench<'_>) -> anyhow::Result<LatencyReport> {
    let args = bench.args;
    let doc = &bench.doc;
    // One agent each, holding a catalog skill: the event sets it one level up.
    let targets: Vec<(usize, String, String, u8)> = doc
        .users
        .iter()
        .enumerate()
        .filter_map(|(i, user)| {
            user.skills.iter().find_map(|a| {
                let d = doc.skills.iter().find(|d| d.id == a.id)?;
                (!d.name.starts_with(skillsync_sim::OWNED_PREFIX))
                    .then(|| (i, d.name.clone(), d.id.clone(), a.level % 10 + 1))
            })
        })
        .take(args.latency_events)
        .collect();
    if targets.len() < args.latency_events {
        bail!(
            "only {} agents hold a catalog skill; --latency-events asks for {}",
            targets.len(),
            args.latency_events
        );
    }
    let knobs = Knobs {
        rate_limit: Rate::PerSecond(args.rate_limit),
        burst: args.burst,
        ..Knobs::default()
    };
    let setup = bench
        .setup(
            "latency",
            &knobs,
            args.rate_limit,
            "proficiency_flush = \"1h\"\n",
        )
        .await?;
    // The token is fetched here, before the figures start.
    setup.served.ready().await?;
    let served = &setup.served;
    let (measured, samples) = measure(&setup.tenant, || async {
        let client = reqwest::Client::new();
        let mut samples = Vec::new();
        for (n, (i, code, _, level)) in targets.iter().enumerate() {
            let started = Instant::now();
            let event = bench.event(
                format!("latency-{n}"),
                &employee(*i),
                code,
                *level,
                jiff::Timestamp::now(),
            );
            let id = event["id"].as_str().unwrap_or_default().to_string();
            let response = signed(&client, &served.base, &bench.secret, event.to_string())
                .send()
                .await?;
            let accepted_at = jiff::Timestamp::now();
            let accepted = Instant::now();
            if response.status().as_u16() != 202 {
                samples.push(Sample {
                    id,
                    state: format!("answered {}", response.status().as_u16()),
                    ms: None,
                    polled_ms: None,
                });
                continue;
            }
            let state = loop {
                let state = served.event(&id).await?;
                if state["state"] != "queued" || accepted.elapsed() > SETTLE_DEADLINE {
                    break state;
                }
                tokio::time::sleep(POLL).await;
            };
            let polled_ms = accepted.elapsed().as_secs_f64() * 1000.0;
            let settled: Option<jiff::Timestamp> =
                state["settledAt"].as_str().and_then(|t| t.parse().ok());
            samples.push(Sample {
                id,
                state: state["state"].as_str().unwrap_or("missing").to_string(),
                ms: settled.map(|t| t.duration_since(accepted_at).as_secs_f64() * 1000.0),
                polled_ms: Some(polled_ms),
            });
            if let Some(rest) = args.latency_pace.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(samples)
    })
    .await?;
    let state = setup.tenant.inspect("/sim/state").await?;
    let tenant_mismatches = targets
        .iter()
        .filter(|(i, _, id, level)| {
            held(&state, &doc.users[*i].id, "skills", id) != Some(u64::from(*level))
        })
        .count();
    let not_applied: Vec<String> = samples
        .iter()
        .filter(|s| s.state != "applied")
        .map(|s| format!("{}: {}", s.id, s.state))
        .collect();
    if !not_applied.is_empty() {
        tracing::warn!(log = %setup.served.log_tail(30), "latency: events not applied");
    }
    bench.teardown(setup).await;
    let mut ms: Vec<f64> = samples.iter().filter_map(|s| s.ms).collect();
    let mut polled: Vec<f64> = samples.iter().filter_map(|s| s.polled_ms).collect();
    let events = samples.len().max(1) as f64;
    Ok(LatencyReport {
        events: samples.len(),
        pace_seconds: args.latency_pace.as_secs_f64(),
        requests_per_second: args.rate_limit,
        p50_ms: quantile(&mut ms, 0.5),
        p99_ms: quantile(&mut ms, 0.99),
        max_ms: ms.iter().copied().fold(0.0, f64::max),
        min_ms: ms.iter().copied().reduce(f64::min).unwrap_or(0.0),
        polled_p50_ms: quantile(&mut polled, 0.5),
        polled_p99_ms: quantile(&mut polled, 0.99),
        calls: measured.calls,
        calls_per_event: measured.calls as f64 / events,
        writes_per_event: measured.writes as f64 / events,
        throttled: measured.throttled,
        by_kind: measured.by_kind,
        not_applied,
        tenant_mismatches,
    })
}

/// One latency event.
struct Sample {
    id: String,
    state: String,
    ms: Option<f64>,
    polled_ms: Option<f64>,
}

/// The level `user` holds of definition `id` in `list`, in a `/sim/state` answer.
fn held(state: &Value, user: &str, list: &str, id: &str) -> Option<u64> {
    state["users"]
        .as_array()?
        .iter()
        .find(|u| u["id"] == user)?[list]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id)?["level"]
        .as_u64()
}

fn print_latency(report: &LatencyReport) {
    outln!(
        "   202 → applied (the event's settledAt): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms  (seen by polling every 10 ms: p50 {:.0} ms, p99 {:.0} ms)",
        report.p50_ms,
        report.p99_ms,
        report.max_ms,
        report.min_ms,
        report.polled_p50_ms,
        report.polled_p99_ms
    );
    outln!(
        "   tenant calls: {} for {} events = {:.1} per event ({:.1} writes), {} throttled",
        report.calls,
        report.events,
        report.calls_per_event,
        report.writes_per_event,
        report.throttled
    );
    for (kind, count) in &report.by_kind {
        outln!("     {count:>6}  {kind}");
    }
    if !report.not_applied.is_empty() {
        outln!("   NOT applied: {:?}", report.not_applied);
    }
    if report.tenant_mismatches > 0 {
        outln!(
            "   {} agents do NOT hold the level their event set",
            report.tenant_mismatches
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Proficiency batching.

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ProficiencyReport {
    events: usize,
    agents: usize,
    batch: usize,
    flush_seconds: f64,
    requests_per_second: f64,
    /// From the first request to every event settled.
    seconds: f64,
    /// Sending them all, to the last 202.
    send_seconds: f64,
    /// Events answered 202 (new ids), and those that were not, by status or error.
    accepted: usize,
    refused: BTreeMap<String, usize>,
    /// Events by final state.
    states: BTreeMap<String, usize>,
    not_applied: usize,
    /// The journal's `serve-proficiencies` runs: one per flush.
    flushes: Vec<Flush>,
    /// `POST /routing/users/bulk` calls.
    bulk_writes: u64,
    /// Σ over flushes of ceil(agents written / 100): the goal's bound.
    bulk_bound: u64,
    /// ceil(agents / 100) × flushes.
    per_flush_bound: u64,
    single_reads: u64,
    page_reads: u64,
    single_writes: u64,
    other_calls: u64,
    calls: u64,
    throttled: u64,
    by_kind: BTreeMap<String, u64>,
    /// Agents the tenant does not hold at their latest event's level.
    tenant_mismatches: usize,
}

/// One flush, as the journal has it.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Flush {
    run: u64,
    outcome: String,
    users_planned: u64,
    users_updated: u64,
    requests: u64,
}

async fn proficiencies(bench: &Bench<'_>) -> anyhow::Result<ProficiencyReport> {
    let args = bench.args;
    let (code, definition) = bench.proficiency.clone();
    let knobs = Knobs {
        rate_limit: Rate::PerSecond(args.rate_limit),
        burst: args.burst,
        ..Knobs::default()
    };
    let serve = format!(
        "proficiency_flush = \"{}\"\n",
        humantime::format_duration(args.proficiency_flush)
    );
    let setup = bench
        .setup("proficiencies", &knobs, args.rate_limit, &serve)
        .await?;
    setup.served.ready().await?;
    // Agent n % M; each event a millisecond after the one before, so the last one for an
    // agent wins whatever order they arrive or are applied in.
    let start = jiff::Timestamp::now();
    let mut expected: BTreeMap<usize, u8> = BTreeMap::new();
    let events: Vec<Value> = (0..args.proficiency_events)
        .map(|n| {
            let agent = n % args.proficiency_agents;
            let level = 1 + ((n / args.proficiency_agents + agent) % 10) as u8;
            expected.insert(agent, level);
            bench.event(
                format!("proficiency-{n}"),
                &employee(agent),
                &code,
                level,
                start + jiff::SignedDuration::from_millis(n as i64),
            )
        })
        .collect();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let bodies: Vec<(String, usize)> = events
        .chunks(args.proficiency_batch)
        .map(|chunk| (body(chunk, args.proficiency_batch), chunk.len()))
        .collect();
    let served = &setup.served;
    let (measured, (sent, seconds)) = measure(&setup.tenant, || async {
        let started = Instant::now();
        let sent = send_all(&served.base, &bench.secret, bodies, args.connections).await;
        // Every accepted event is queued until settled: the queue empties when all are.
        loop {
            if served.metric("skillsync_event_queue_depth").await? == 0.0 {
                break;
            }
            if started.elapsed() > SETTLE_DEADLINE {
                tracing::warn!(log = %served.log_tail(30), "proficiency events still queued");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok((sent, started.elapsed().as_secs_f64()))
    })
    .await?;
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let state = served.event(id).await?;
        *states
            .entry(state["state"].as_str().unwrap_or("not stored").to_string())
            .or_default() += 1;
    }
    let flushes = flushes(&setup.dir, bench.password()).await?;
    let state = setup.tenant.inspect("/sim/state").await?;
    let tenant_mismatches = expected
        .iter()
        .filter(|(agent, level)| {
            held(
                &state,
                &bench.doc.users[**agent].id,
                "proficiencies",
                &definition,
            ) != Some(u64::from(**level))
        })
        .count();
    bench.teardown(setup).await;

    let count = |f: &dyn Fn(&str) -> bool| -> u64 {
        measured
            .by_kind
            .iter()
            .filter(|(kind, _)| f(kind))
            .map(|(_, n)| n)
            .sum()
    };
    let bulk_writes = count(&|k| k.starts_with("POST ") && k.contains("/routing/users/bulk"));
    let single_reads = count(&|k| k.starts_with("GET ") && k.contains("/routing/users/{userId}"));
    let page_reads = count(&|k| {
        k.starts_with("GET ") && (k.ends_with("/routing/users") || k.contains("/routing/users →"))
    });
    let single_writes = count(&|k| k.starts_with("PUT ") && k.contains("/routing/users/{userId}"));
    let bulk_bound: u64 = flushes
        .iter()
        .map(|f| f.users_planned.div_ceil(PER_BULK as u64))
        .sum();
    let not_applied = ids.len() - states.get("applied").copied().unwrap_or(0);
    Ok(ProficiencyReport {
        events: args.proficiency_events,
        agents: args.proficiency_agents,
        batch: args.proficiency_batch,
        flush_seconds: args.proficiency_flush.as_secs_f64(),
        requests_per_second: args.rate_limit,
        seconds,
        send_seconds: sent.seconds,
        accepted: sent.accepted,
        refused: sent.refused,
        states,
        not_applied,
        per_flush_bound: args.proficiency_agents.div_ceil(PER_BULK) as u64 * flushes.len() as u64,
        flushes,
        bulk_writes,
        bulk_bound,
        single_reads,
        page_reads,
        single_writes,
        other_calls: measured.calls - bulk_writes - single_reads - page_reads - single_writes,
        calls: measured.calls,
        throttled: measured.throttled,
        by_kind: measured.by_kind,
        tenant_mismatches,
    })
}

/// The `serve-proficiencies` runs in the journal, oldest first, as `skillsync history
/// --output json` prints them.
async fn flushes(dir: &Path, password: Option<&str>) -> anyhow::Result<Vec<Flush>> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .arg("history")
        .arg("--config")
        .arg(dir.join("skillsync.toml"))
        .args(["--output", "json", "--limit", "100000"])
        .current_dir(dir)
        .env("NO_COLOR", "1");
    if let Some(password) = password {
        command.env(PASSWORD_VAR, password);
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    if !output.status.success() {
        bail!(
            "`skillsync history` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let history: Value = serde_json::from_slice(&output.stdout)
        .context("`skillsync history --output json` did not print JSON")?;
    let mut flushes: Vec<Flush> = history["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["command"] == "serve-proficiencies")
        .map(|r| {
            let n = |key: &str| r["counts"][key].as_u64().unwrap_or(0);
            Flush {
                run: r["id"].as_u64().unwrap_or(0),
                outcome: r["outcome"].as_str().unwrap_or_default().to_string(),
                users_planned: n("usersPlanned"),
                users_updated: n("usersUpdated"),
                requests: n("requests"),
            }
        })
        .collect();
    flushes.sort_by_key(|f| f.run);
    Ok(flushes)
}

fn print_proficiencies(report: &ProficiencyReport) {
    outln!(
        "   sent in {:.2} s; all settled {:.1} s after the first request; states {:?}",
        report.send_seconds,
        report.seconds,
        report.states
    );
    outln!(
        "   flushes (serve-proficiencies runs in `skillsync history --output json`): {}",
        report.flushes.len()
    );
    for flush in &report.flushes {
        outln!(
            "     run {}: {}, {} agents planned, {} updated, {} requests",
            flush.run,
            flush.outcome,
            flush.users_planned,
            flush.users_updated,
            flush.requests
        );
    }
    outln!(
        "   bulk writes {} vs Σ ceil(agents per flush / 100) = {} (goal: at most that: {}); ceil({} / 100) × {} flushes = {}",
        report.bulk_writes,
        report.bulk_bound,
        met(report.bulk_writes <= report.bulk_bound),
        report.agents,
        report.flushes.len(),
        report.per_flush_bound,
    );
    outln!(
        "   tenant calls: {} = {} bulk writes + {} single reads + {} user pages + {} single writes + {} others; {} throttled",
        report.calls,
        report.bulk_writes,
        report.single_reads,
        report.page_reads,
        report.single_writes,
        report.other_calls,
        report.throttled
    );
    for (kind, count) in &report.by_kind {
        outln!("     {count:>6}  {kind}");
    }
    if report.tenant_mismatches > 0 {
        outln!(
            "   {} agents do NOT hold their latest event's level",
            report.tenant_mismatches
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// `bench serve --output json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ServeBenchReport {
    schema_version: u32,
    command: String,
    store: &'static str,
    agents: usize,
    intake: Vec<IntakeRow>,
    latency: LatencyReport,
    proficiencies: ProficiencyReport,
    /// No event lost or left unapplied, and the tenant holds what they set.
    sound: bool,
}

fn print_summary(report: &ServeBenchReport) {
    outln!("\nSummary  ({})", report.command);
    for row in &report.intake {
        outln!(
            "  intake, batch {:>3}: {:>6.0} events/s, {} lost (goal ≥ 1,000/s with 0 loss: {})",
            row.batch,
            row.events_per_second,
            row.lost,
            met(row.events_per_second >= 1_000.0 && row.lost == 0 && row.counted_by_service)
        );
    }
    let l = &report.latency;
    outln!(
        "  latency at {}/s:  p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {:.1} tenant calls per event",
        l.requests_per_second,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        l.calls_per_event
    );
    let p = &report.proficiencies;
    outln!(
        "  proficiencies:    {} bulk writes in {} flushes for {} agents (bound {}), {} single reads",
        p.bulk_writes,
        p.flushes.len(),
        p.agents,
        p.bulk_bound,
        p.single_reads
    );
    if !report.sound {
        outln!("  SOME EVENTS WERE LOST OR NOT APPLIED (see above)");
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

/// The database `--store` names: a fresh schema per measurement.
struct Postgres {
    /// The URL as given (to create and drop schemas).
    admin: String,
    /// Without its password (that goes to the service through the environment).
    bare: String,
    password: Option<String>,
    shown: String,
}

impl Postgres {
    fn new(url: &str) -> anyhow::Result<Postgres> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!(
                "--store takes a PostgreSQL URL (the default journal is SQLite in the benchmark's folder)"
            );
        }
        if url.contains("options=") {
            bail!(
                "--store: leave out `options`: the benchmark sets the search_path to its own schema"
            );
        }
        let (bare, password) = split_password(url);
        Ok(Postgres {
            admin: url.to_string(),
            bare,
            password,
            shown: skillsync_store::redact(url),
        })
    }

    /// Creates `schema`; the URL that puts it first on the search path.
    async fn create_schema(&self, schema: &str) -> anyhow::Result<String> {
        self.execute(&format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\""
        ))
        .await?;
        let separator = if self.bare.contains('?') { '&' } else { '?' };
        Ok(format!(
            "{}{separator}options=-c%20search_path%3D{schema}",
            self.bare
        ))
    }

    async fn drop_schema(&self, schema: &str) -> anyhow::Result<()> {
        self.execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.admin, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to {}", self.shown))?;
        let task = tokio::spawn(connection);
        let result = client
            .batch_execute(sql)
            .await
            .with_context(|| format!("{sql} on {}", self.shown));
        drop(client);
        let _ = task.await;
        result
    }
}

/// The URL without the password of its user info, and that password (percent-decoded).
fn split_password(url: &str) -> (String, Option<String>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let start = scheme_end + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return (url.to_string(), None);
    };
    match url[start..at].find(':').map(|i| start + i) {
        Some(colon) => {
            let password = percent_encoding::percent_decode_str(&url[colon + 1..at])
                .decode_utf8_lossy()
                .into_owned();
            (format!("{}{}", &url[..colon], &url[at..]), Some(password))
        }
        None => (url.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_taken_out_of_the_url() {
        assert_eq!(
            split_password("postgres://me:s%40cret@db:5432/x?sslmode=disable"),
            (
                "postgres://me@db:5432/x?sslmode=disable".to_string(),
                Some("s@cret".to_string())
            )
        );
        assert_eq!(
            split_password("postgres://me@db/x"),
            ("postgres://me@db/x".to_string(), None)
        );
        assert_eq!(
            split_password("postgres://db/x"),
            ("postgres://db/x".to_string(), None)
        );
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut [7.0], 0.99), 7.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }
}
