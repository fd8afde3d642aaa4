//! `skillsync serve`: the middleware the first source document describes, as one process.
//!
//! - `http.rs`: the HTTP surface (SPEC §4): events in, their fate out, health, metrics.
//! - `signature.rs`: the webhook's HMAC signature and replay window.
//! - `intake.rs`: events stored durably before the 202, many requests per transaction.
//! - `lanes.rs`: the two paths: skills written at once, one agent at a time; proficiencies
//!   gathered and written in bulk. Both go through the engine's front door (lease, journal,
//!   ownership check, read-back).
//! - `desired.rs`: the desired state: the HRIS files, reloaded when they change, with the
//!   events newer than them laid over.
//! - `schedule.rs`: the nightly full sync inside the window.
//! - `metrics.rs`: the Prometheus text.
//! - `status_page.rs` (and `status/`): the HTML status page, read from the journal, the queue
//!   and this process's memory.
//!
//! Several processes may share one PostgreSQL journal: events are claimed (each by one
//! process), and only the holder of the tenant's lease writes to it.

mod desired;
mod http;
mod intake;
mod lanes;
mod metrics;
mod schedule;
pub mod signature;
mod status_page;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use skillsync_cxone::{Secret, TenantApi};
use skillsync_engine::Interrupt;
use skillsync_store::{EventQueue, Journal};
use tokio::sync::Notify;

use crate::args::ServeArgs;
use crate::config::Config;

/// How long a shutdown waits for writes in flight before exiting anyway (their events stay
/// queued and are taken up again).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Everything the service's tasks share.
pub(crate) struct Service {
    pub config: Config,
    pub webhook_secret: Secret,
    /// `[serve] status_token`: what the status page asks for; `None`: open.
    pub status_token: Option<Secret>,
    /// The client's counters over time, for the status page's API budget.
    pub api_history: status_page::ApiHistory,
    pub api: Arc<dyn TenantApi>,
    pub journal: Box<dyn Journal>,
    pub queue: Box<dyn EventQueue>,
    pub desired: desired::DesiredSource,
    pub intake: intake::Intake,
    pub metrics: metrics::Metrics,
    /// This process, as the claimer of events: host, pid and a random part (two processes
    /// on one host, or one restarted with the same pid, are never confused).
    pub claimer: String,
    /// Raised on SIGTERM: intake answers 503, the lanes start no new write.
    pub stopping: AtomicBool,
    /// The engine's stop signal for writes in flight.
    pub interrupt: Arc<Interrupt>,
    /// Wakes the skill lane (an event was stored).
    pub wake_skills: Notify,
    /// Wakes the proficiency lane early (enough agents are waiting).
    pub wake_proficiencies: Notify,
    /// Raised once, on shutdown: whatever waits on [`Service::stopped`] wakes, whenever it
    /// started waiting.
    pub stop: tokio::sync::watch::Sender<bool>,
    /// One engine run of this process at a time (fair: a full sync that asks waits for the
    /// batch in flight, not for every batch after it).
    pub turn: tokio::sync::Mutex<()>,
    pub status: parking_lot::Mutex<Status>,
    /// What the service's runs may take over (`--adopt`).
    pub adopt: skillsync_core::Adopt,
}

/// What the service is doing, for logs, metrics and the status page.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// When the last full sync ended successfully.
    pub last_full_sync: Option<jiff::Timestamp>,
    /// When the next one is due.
    pub next_full_sync: Option<jiff::Timestamp>,
    /// Owned assignments the last full read found different from the HRIS.
    pub drift: Option<u64>,
    /// Whether this process held the tenant's lease at its last attempt.
    pub lease_held: bool,
    /// The holder, and when, if an event lane's last run found the lease held by another
    /// process; cleared by the next run that gets it.
    pub lease_elsewhere: Option<(String, jiff::Timestamp)>,
    /// When the full sync now running started; `None` while none runs.
    pub full_sync_started: Option<jiff::Timestamp>,
    /// Why the last full sync did not complete (a guard, the lease held elsewhere, the
    /// window's end, an error); cleared by one that completes.
    pub full_sync_stopped: Option<status_page::Stopped>,
    /// Agents the last full read found different from the HRIS.
    pub drifted_agents: Option<usize>,
    /// The first of them, with what differs.
    pub drifted: Vec<status_page::DriftedAgent>,
}

impl Service {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Returns once the service is stopping.
    pub async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    /// Waits `pause`, or less if the service stops.
    pub async fn pause(&self, pause: Duration) {
        if self.is_stopping() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.stopped() => {}
        }
    }
}

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let common = crate::args::CommonArgs {
        config: args.config.clone(),
        output: crate::output::OutputFormat::Human,
        color: crate::output::ColorChoice::Never,
        summary: false,
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(problems) => return Ok(crate::cmd::validate::report_problems(&common, &problems)),
    };
    let webhook_secret = match config.secret("serve.webhook_secret", &config.serve.webhook_secret) {
        Ok(secret) => secret,
        Err(problem) => {
            return Ok(crate::cmd::validate::report_problems(&common, &[problem]));
        }
    };
    let status_token = match &config.serve.status_token {
        None => None,
        Some(source) => match config.secret("serve.status_token", source) {
            Ok(token) => Some(token),
            Err(problem) => {
                return Ok(crate::cmd::validate::report_problems(&common, &[problem]));
            }
        },
    };
    let settings = match config.client_settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(crate::cmd::validate::report_problems(&common, &problems)),
    };
    let desired = match desired::DesiredSource::load(&config).await {
        Ok(desired) => desired,
        Err(problems) => return Ok(crate::cmd::validate::report_problems(&common, &problems)),
    };
    let api = skillsync_cxone::connect(&settings).context("cannot set up the tenant client")?;
    let journal = config.journal().await?;
    let queue = skillsync_store::open_events(&config.store_connect_url()?)
        .await
        .with_context(|| format!("cannot open the event queue ({})", config.store_shown()))?;
    let listen = args.listen.unwrap_or(config.serve.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let service = Arc::new_cyclic(|_| Service {
        claimer: format!(
            "{}:{}:{}",
            crate::config::host_name(),
            std::process::id(),
            &uuid_part()
        ),
        intake: intake::Intake::new(),
        metrics: metrics::Metrics::default(),
        webhook_secret,
        status_token,
        api_history: status_page::ApiHistory::new(),
        api,
        journal,
        queue,
        desired,
        stopping: AtomicBool::new(false),
        interrupt: Arc::new(Interrupt::new()),
        wake_skills: Notify::new(),
        wake_proficiencies: Notify::new(),
        stop: tokio::sync::watch::Sender::new(false),
        turn: tokio::sync::Mutex::new(()),
        status: parking_lot::Mutex::new(Status::default()),
        adopt: skillsync_core::Adopt::from_args(&args.adopt.adopt),
        config,
    });
    // The first line says where it listens (port 0 picks one), like `skillsync sim`.
    crate::output::outln!("skillsync serve listening on http://{address}");
    tracing::info!(%address, store = %service.config.store_shown(), tenant = %service.config.tenant.api_base, "serving");

    let intake_task = tokio::spawn(intake::run(service.clone()));
    let server = tokio::spawn(http::serve(service.clone(), listener));
    // The lanes and the schedule run on this task (the engine's runs borrow across awaits in
    // ways a spawned task cannot); the engine spreads its own requests over the runtime.
    let work = async {
        tokio::join!(
            lanes::run(service.clone(), skillsync_store::EventLane::Skills),
            lanes::run(service.clone(), skillsync_store::EventLane::Proficiencies),
            schedule::run(service.clone()),
        )
    };
    tokio::pin!(work);
    tokio::select! {
        _ = wait_for_signal() => {}
        _ = &mut work => {}
    }
    tracing::info!("stopping: intake closed, writes in flight finish");
    service.stopping.store(true, Ordering::SeqCst);
    service.interrupt.raise();
    service.stop.send_replace(true);
    service.wake_skills.notify_waiters();
    service.wake_proficiencies.notify_waiters();
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut work)
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "writes still in flight after the grace period; their events stay queued"
        );
    }
    if let Err(error) = service.queue.release_claims(&service.claimer).await {
        tracing::warn!(error = %error, "could not release this process's claims; they expire on their own");
    }
    server.abort();
    intake_task.abort();
    tracing::info!("stopped");
    Ok(crate::output::exit::ok())
}

/// A part that tells apart two processes with one pid (a restart in a fresh container).
fn uuid_part() -> String {
    format!(
        "{:08x}",
        (jiff::Timestamp::now().as_nanosecond() as u64 as u32) ^ std::process::id()
    )
}

/// SIGTERM (systemd, Kubernetes) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(term) => { term.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
