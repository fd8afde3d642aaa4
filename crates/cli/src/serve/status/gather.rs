//! Everything the status pages show, read now from the journal, the event queue and this
//! process's memory; never from the tenant. Each part is read on its own: a store that fails
//! leaves a note in its section and the rest of the page stands.

use jiff::{SignedDuration, Timestamp};
use skillsync_core::window::Window;
use skillsync_store::{
    EventQueueStats, EventRecord, EventState, RunId, RunSummary, WriteRecord, WriteStatus,
    WriteTarget,
};

use super::super::Service;
use super::budget::ApiSample;
use super::format::{Clocks, Names};
use super::{DriftedAgent, Stop};

/// Runs shown in the table.
const RUNS_SHOWN: usize = 20;
/// Runs looked through for writes still settling (one per event on the skills path, so more
/// than the table shows).
const RUNS_SETTLING: usize = 200;
/// Writes still settling listed (the count covers them all).
const SETTLING_SHOWN: usize = 50;
/// Events listed, and rejected events listed.
const EVENTS_SHOWN: usize = 15;
const REJECTED_SHOWN: usize = 10;

/// The state in one line.
pub enum State {
    /// The full sync is running.
    Syncing { since: Timestamp },
    /// The last full sync found the tenant's lease held by another process, and this process
    /// has not held it since.
    LeaseElsewhere { holder: String, at: Timestamp },
    /// The last full sync was refused by a guard or a check; nothing was written.
    Guard { why: String, at: Timestamp },
    /// Outside `[sync] window`: the full sync waits (events are still applied).
    Paused,
    /// Waiting for events and the next full sync; `note` says how the last full sync ended
    /// when it did not complete for another reason.
    Idle { note: Option<String> },
}

/// `[sync] window` as it stands now.
pub struct WindowNow {
    pub window: Window,
    /// When the current opening closes; `None` while closed.
    pub closes: Option<Timestamp>,
    /// When it opens next.
    pub next_opening: Option<Timestamp>,
}

/// One period of the API budget.
pub struct BudgetRow {
    pub label: String,
    /// What happened in it (its `at` is when it began).
    pub used: ApiSample,
    /// Requests the configured rate allows over it.
    pub allowed: u64,
}

/// A write the routing cache has not settled on yet.
pub struct SettlingWrite {
    pub run: RunId,
    pub target: WriteTarget,
    pub subject: String,
    pub settles_at: Timestamp,
}

/// Drift found by the last full read.
pub struct Drift {
    pub agents: usize,
    /// Owned assignments that differ.
    pub assignments: Option<u64>,
    pub first: Vec<DriftedAgent>,
}

/// The main page's content.
pub struct Overview {
    pub now: Timestamp,
    pub clocks: Clocks,
    /// The tenant's API base.
    pub tenant: String,
    pub state: State,
    pub window: Option<WindowNow>,
    pub next_full_sync: Option<Timestamp>,
    pub last_full_sync: Option<Timestamp>,
    pub lease_held: bool,
    pub runs: Result<Vec<RunSummary>, String>,
    pub queue: Result<EventQueueStats, String>,
    pub recent: Result<Vec<EventRecord>, String>,
    pub rejected: Result<Vec<EventRecord>, String>,
    /// The writes still settling, soonest first (at most [`SETTLING_SHOWN`]), and how many.
    pub settling: Result<(Vec<SettlingWrite>, usize), String>,
    pub budget: Vec<BudgetRow>,
    /// `[limits] requests_per_second`.
    pub rate: f64,
    pub started: Timestamp,
    pub drift: Option<Drift>,
}

fn explained(error: skillsync_store::StoreError) -> String {
    skillsync_engine::explain(&error)
}

pub fn clocks(service: &Service) -> Clocks {
    Clocks {
        tenant: service.config.tenant.time_zone.clone(),
        tenant_name: service
            .config
            .tenant
            .timezone
            .clone()
            .unwrap_or_else(|| "UTC".into()),
        local: jiff::tz::TimeZone::system(),
    }
}

pub async fn overview(service: &Service) -> Overview {
    let now = Timestamp::now();
    let config = &service.config;
    let status = service.status.lock().clone();
    let window = config.window.map(|window| {
        let tz = &config.tenant.time_zone;
        WindowNow {
            window,
            closes: window.current(now, tz).map(|o| o.closes.timestamp()),
            next_opening: window.next_start(now, tz).map(|z| z.timestamp()),
        }
    });
    let state = if let Some(since) = status.full_sync_started {
        State::Syncing { since }
    } else if let Some((holder, at)) = status.lease_elsewhere.clone() {
        // The event lanes' last run found another process holding the lease.
        State::LeaseElsewhere { holder, at }
    } else {
        let paused = window.as_ref().is_some_and(|w| w.closes.is_none());
        match status.full_sync_stopped {
            Some(stopped) => match stopped.why {
                Stop::LeaseElsewhere(holder) if !status.lease_held => State::LeaseElsewhere {
                    holder,
                    at: stopped.at,
                },
                Stop::Guard(why) => State::Guard {
                    why,
                    at: stopped.at,
                },
                _ if paused => State::Paused,
                Stop::CutOff => State::Idle {
                    note: Some("the last full sync was cut off by the window's end; the rest waits for the next window".into()),
                },
                Stop::Failed(why) => State::Idle {
                    note: Some(format!("the last full sync did not complete: {why}")),
                },
                Stop::LeaseElsewhere(_) => State::Idle { note: None },
            },
            None if paused => State::Paused,
            None => State::Idle { note: None },
        }
    };

    let runs = service.journal.runs(RUNS_SETTLING).await.map_err(explained);
    let settling = match &runs {
        Ok(runs) => settling(service, runs, now).await,
        Err(why) => Err(why.clone()),
    };
    let runs = runs.map(|mut runs| {
        runs.truncate(RUNS_SHOWN);
        runs
    });
    let queue = service.queue.event_stats().await.map_err(explained);
    let recent = service
        .queue
        .recent_events(EVENTS_SHOWN, None)
        .await
        .map_err(explained);
    let rejected = service
        .queue
        .recent_events(REJECTED_SHOWN, Some(EventState::Rejected))
        .await
        .map_err(explained);

    Overview {
        now,
        clocks: clocks(service),
        tenant: config.tenant.api_base.clone(),
        budget: budget(service, now, window.as_ref()),
        rate: config.requests_per_second,
        started: service.api_history.started(),
        state,
        window,
        next_full_sync: status.next_full_sync,
        last_full_sync: status.last_full_sync,
        lease_held: status.lease_held,
        runs,
        queue,
        recent,
        rejected,
        settling,
        drift: status.drifted_agents.map(|agents| Drift {
            agents,
            assignments: status.drift,
            first: status.drifted,
        }),
    }
}

/// Applied writes of the recent runs whose settles-at is still ahead, soonest first.
async fn settling(
    service: &Service,
    runs: &[RunSummary],
    now: Timestamp,
) -> Result<(Vec<SettlingWrite>, usize), String> {
    let mut writes = Vec::new();
    for run in runs
        .iter()
        .filter(|r| r.settles_at.is_some_and(|t| t > now))
    {
        for write in service.journal.writes(run.id).await.map_err(explained)? {
            if write.status == WriteStatus::Applied
                && let Some(settles_at) = write.settles_at.filter(|t| *t > now)
            {
                writes.push(SettlingWrite {
                    run: run.id,
                    target: write.target,
                    subject: write.subject,
                    settles_at,
                });
            }
        }
    }
    writes.sort_by_key(|w| (w.settles_at, w.run));
    let total = writes.len();
    writes.truncate(SETTLING_SHOWN);
    Ok((writes, total))
}

/// Calls in the last hour, since the window opened (when it is open) and since the start,
/// each against what the configured rate allows over the time this process saw of it.
fn budget(service: &Service, now: Timestamp, window: Option<&WindowNow>) -> Vec<BudgetRow> {
    let history = &service.api_history;
    let started = history.started();
    let current = ApiSample::of(now, &service.api.counters());
    let rate = service.config.requests_per_second;
    let allowed = |from: Timestamp| {
        let seconds = now.duration_since(from.max(started)).as_secs_f64().max(0.0);
        (rate * seconds) as u64
    };
    let mut rows = Vec::new();
    let hour_ago = now - SignedDuration::from_hours(1);
    if hour_ago > started
        && let Some(then) = history.at(hour_ago)
    {
        rows.push(BudgetRow {
            label: "Last hour".into(),
            used: current.since(&then),
            allowed: allowed(hour_ago),
        });
    }
    if let Some(window) = window
        && window.closes.is_some()
        && let Some(opening) = window.window.current(now, &service.config.tenant.time_zone)
        && let Some(then) = history.at(opening.opens.timestamp())
    {
        let from = opening.opens.timestamp();
        let label = if from < started {
            "This window (since this process started)".to_string()
        } else {
            "This window".to_string()
        };
        rows.push(BudgetRow {
            label,
            used: current.since(&then),
            allowed: allowed(from),
        });
    }
    rows.push(BudgetRow {
        label: "Since this process started".into(),
        used: current.since(&ApiSample {
            at: started,
            ..ApiSample::default()
        }),
        allowed: allowed(started),
    });
    rows
}

/// A run page's content.
pub struct RunPage {
    pub now: Timestamp,
    pub clocks: Clocks,
    pub run: RunSummary,
    /// This page's writes, each with its place in the run (from 1).
    pub writes: Vec<(usize, WriteRecord)>,
    pub total_writes: usize,
    pub page: usize,
    pub pages: usize,
    pub names: Names,
}

/// One run and one page of its writes; `None` for a run the journal does not have.
pub async fn run(
    service: &Service,
    id: RunId,
    page: usize,
    per_page: usize,
) -> Result<Option<RunPage>, String> {
    let Some(run) = service.journal.run(id).await.map_err(explained)? else {
        return Ok(None);
    };
    let all = service.journal.writes(id).await.map_err(explained)?;
    let total_writes = all.len();
    let pages = total_writes.div_ceil(per_page).max(1);
    let writes = all
        .into_iter()
        .enumerate()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(|(i, w)| (i + 1, w))
        .collect();
    // Definition ids named by their HRIS code; a journal that cannot say leaves the ids.
    let names = service
        .journal
        .mappings()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.definition_id, format!("{} ({})", m.code, m.locale)))
        .collect();
    Ok(Some(RunPage {
        now: Timestamp::now(),
        clocks: clocks(service),
        run,
        writes,
        total_writes,
        page,
        pages,
        names,
    }))
}
