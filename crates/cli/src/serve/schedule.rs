//! The nightly full sync: at `[serve] full_sync_at` (wall-clock, the tenant's time zone),
//! inside `[sync] window`, the engine's whole sync with the lease. A sync the window's end cuts
//! off resumes at the next night's; one skipped because another holder has the lease is
//! logged and not retried until then (the other holder is doing the work).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use skillsync_engine::{SyncHooks, SyncOptions, SyncOutcome, SyncScope};

use super::Service;
use super::status_page::{DRIFTED_SHOWN, Stop, Stopped, drifted_agents};

/// Longest single sleep: the wall clock is read again after it, so a clock that jumps (NTP,
/// a suspended machine) moves the schedule with it.
const RECHECK: Duration = Duration::from_secs(60);

pub async fn run(service: Arc<Service>) {
    let config = &service.config;
    let window = config.window;
    loop {
        let now = Timestamp::now();
        let Some(next) = skillsync_core::window::next_daily(
            config.serve.full_sync_at,
            now,
            &config.tenant.time_zone,
            window.as_ref(),
        ) else {
            tracing::error!(
                "no time for the full sync inside [sync] window in the coming week; no full sync is scheduled"
            );
            return;
        };
        service.status.lock().next_full_sync = Some(next);
        tracing::info!(at = %next.to_zoned_datetime(config.tenant.time_zone.clone()).strftime("%Y-%m-%d %H:%M %Z"), utc = %next, "next full sync");
        loop {
            let left = Timestamp::now().duration_until(next);
            let Ok(left) = Duration::try_from(left) else {
                break;
            };
            if left.is_zero() {
                break;
            }
            service.pause(left.min(RECHECK)).await;
            if service.is_stopping() {
                return;
            }
        }
        if service.is_stopping() {
            return;
        }
        full_sync(&service).await;
    }
}

async fn full_sync(service: &Service) {
    let config = &service.config;
    let options = SyncOptions {
        run: config.run_label("serve-full", None),
        plan: config.plan_options(service.api.capabilities().max_bulk_entries.is_some()),
        removal_limit: match config.max_removals {
            crate::config::MaxRemovals::Count(n) => skillsync_engine::RemovalLimit::Count(n),
            crate::config::MaxRemovals::Percent(p) => skillsync_engine::RemovalLimit::Percent(p),
        },
        allow_empty_skills: false,
        write: config.write_options(),
        window: config.sync_window(),
        adopt: Some(service.adopt.clone()),
        scope: SyncScope::Everyone,
    };
    let hooks = SyncHooks {
        interrupt: Some(&service.interrupt),
        ..SyncHooks::quiet()
    };
    // Behind the batch of events in flight, if any (the lanes hold the turn while they run).
    let turn = service.turn.lock().await;
    tracing::info!("full sync starting");
    service.status.lock().full_sync_started = Some(Timestamp::now());
    let result = skillsync_engine::sync_prepared(
        service.api.as_ref(),
        service.journal.as_ref(),
        &options,
        &hooks,
        None,
        async || {
            let current = service
                .desired
                .current(service.journal.as_ref(), service.queue.as_ref())
                .await?;
            Ok(skillsync_engine::Prepared {
                desired: std::sync::Arc::new(current.desired),
                warnings: (*current.warnings).clone(),
                users: None,
            })
        },
        async |_| Ok(()),
    )
    .await;
    drop(turn);
    service.status.lock().full_sync_started = None;
    let stopped = |why: Stop| {
        service.status.lock().full_sync_stopped = Some(Stopped {
            at: Timestamp::now(),
            why,
        });
    };
    match result {
        Err(skillsync_engine::Error::LeaseHeld(lease)) => {
            service.status.lock().lease_held = false;
            stopped(Stop::LeaseElsewhere(format!(
                "{} (pid {} on {}), until {}",
                lease.holder.command, lease.holder.pid, lease.holder.host, lease.expires_at
            )));
            service.metrics.run("full", "lease-held");
            tracing::info!(holder = %lease.holder.command, pid = lease.holder.pid, host = %lease.holder.host, "full sync skipped: another skillsync holds the tenant's lease; next at the next window");
        }
        Err(error) => {
            stopped(Stop::Failed(skillsync_engine::explain(&error)));
            service.metrics.run("full", "error");
            tracing::error!(error = %skillsync_engine::explain(&error), "full sync failed; next at the next window");
        }
        Ok(report) => {
            let drift = report.plan.as_ref().map(|plan| {
                plan.users
                    .iter()
                    .map(|u| u.changes().count() as u64)
                    .sum::<u64>()
            });
            let mut status = service.status.lock();
            status.lease_held = true;
            status.lease_elsewhere = None;
            if drift.is_some() {
                status.drift = drift;
            }
            if let Some(plan) = &report.plan {
                status.drifted_agents = Some(plan.users.len());
                status.drifted = drifted_agents(plan, DRIFTED_SHOWN);
            }
            let outcome = match &report.outcome {
                SyncOutcome::NoChanges => "no-changes",
                SyncOutcome::Applied(applied) if applied.written.complete() => "applied",
                SyncOutcome::Applied(applied)
                    if matches!(
                        applied.written.stopped,
                        Some(skillsync_engine::StopReason::WindowClosed(_))
                    ) =>
                {
                    "cut-off"
                }
                SyncOutcome::Applied(_) => "incomplete",
                SyncOutcome::OutsideWindow(_) => "outside-window",
                SyncOutcome::Refused(_) => "refused",
                SyncOutcome::Invalid(_) => "invalid",
                SyncOutcome::Takeover(_) => "takeover",
                _ => "stopped",
            };
            if report.succeeded() {
                status.last_full_sync = Some(Timestamp::now());
            }
            status.full_sync_stopped = stop_of(&report, outcome).map(|why| Stopped {
                at: Timestamp::now(),
                why,
            });
            drop(status);
            service.metrics.run("full", outcome);
            match &report.outcome {
                SyncOutcome::Refused(refusal) => {
                    tracing::warn!(run = ?report.run.map(|r| r.0), refusal = %refusal, "full sync refused by a guard; nothing written")
                }
                SyncOutcome::Invalid(problems) | SyncOutcome::Takeover(problems) => {
                    let first = problems
                        .iter()
                        .find(|p| p.is_error())
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    tracing::error!(run = ?report.run.map(|r| r.0), first = %first, "full sync blocked; nothing written")
                }
                _ if outcome == "cut-off" => {
                    tracing::warn!(run = ?report.run.map(|r| r.0), "full sync cut off by the window's end; it resumes at the next window")
                }
                _ => {
                    tracing::info!(run = ?report.run.map(|r| r.0), outcome, drift, "full sync ended")
                }
            }
        }
    }
}

/// Why a full sync that returned a report did not complete, for the status page; `None` when
/// it did (or had nothing to do).
fn stop_of(report: &skillsync_engine::SyncReport, outcome: &str) -> Option<Stop> {
    let first_error = |problems: &[skillsync_core::Problem]| {
        problems
            .iter()
            .find(|p| p.is_error())
            .map(|p| p.to_string())
            .unwrap_or_default()
    };
    match &report.outcome {
        SyncOutcome::Refused(refusal) => Some(Stop::Guard(refusal.to_string())),
        SyncOutcome::Invalid(problems) => Some(Stop::Guard(format!(
            "the HRIS files are not valid: {}",
            first_error(problems)
        ))),
        SyncOutcome::Takeover(problems) => Some(Stop::Guard(format!(
            "the ownership check: {}",
            first_error(problems)
        ))),
        _ if outcome == "cut-off" => Some(Stop::CutOff),
        _ if report.succeeded() => None,
        _ => Some(Stop::Failed(format!("the run ended {outcome}"))),
    }
}
