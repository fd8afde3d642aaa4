//! The two paths of HRIS events (the first source document): skills decide routing, so a skill
//! event is written to that agent at once, by a merge update with `If-Match`; proficiencies only
//! feed reporting, so their events wait and go in bulk, one write per 100 agents, every
//! `[serve] proficiency_flush` or as soon as 100 agents are waiting. An agent's locale change or
//! arrival moves the whole record, so it goes at once with both lists.
//!
//! A batch runs through the engine's front door with the tenant's lease held from computing the
//! desired state to settling the events: another process's events applied just before are in
//! the state this batch writes (events are laid over the files in the order they occurred, so
//! the latest wins whoever applies it), and the next holder sees this batch's.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use skillsync_core::{Change, Desired, Event, Problem, UserId};
use skillsync_engine::{Lists, SyncHooks, SyncOptions, SyncOutcome, SyncReport, SyncScope};
use skillsync_store::{EventLane, EventOutcome, EventRecord, EventState};

use super::Service;
use super::desired::stored_event;

/// How often a lane looks for events stored by other processes (this process's own wake it).
const POLL: Duration = Duration::from_secs(1);
/// Pause after the lease was held elsewhere or the store or tenant failed.
const RETRY_PAUSE: Duration = Duration::from_secs(2);
/// An event that could not be applied this many times is rejected with the last reason.
const MAX_ATTEMPTS: u32 = 5;

/// Runs one lane until the service stops.
pub async fn run(service: Arc<Service>, lane: EventLane) {
    let limit = match lane {
        EventLane::Skills => 200,
        EventLane::Proficiencies => 10_000,
    };
    loop {
        if service.is_stopping() {
            break;
        }
        if lane == EventLane::Proficiencies {
            tokio::select! {
                _ = tokio::time::sleep(service.config.serve.proficiency_flush) => {}
                _ = service.wake_proficiencies.notified() => {}
                _ = service.stopped.notified() => {}
            }
            if service.is_stopping() {
                break;
            }
            service.intake.flushed();
        }
        while !service.is_stopping() {
            match batch(&service, lane, limit).await {
                Batch::Full => continue,
                Batch::Done => {
                    if lane == EventLane::Proficiencies {
                        break;
                    }
                    continue;
                }
                Batch::Empty => {
                    if lane == EventLane::Skills {
                        tokio::select! {
                            _ = tokio::time::sleep(POLL) => {}
                            _ = service.wake_skills.notified() => {}
                            _ = service.stopped.notified() => {}
                        }
                    }
                    break;
                }
                Batch::Retry => {
                    service.pause(RETRY_PAUSE).await;
                    break;
                }
            }
        }
    }
}

enum Batch {
    /// Nothing was waiting.
    Empty,
    /// Some were processed; more may wait.
    Done,
    /// As many as a batch takes were processed: more are waiting.
    Full,
    /// The lease is held elsewhere, or the store or tenant failed: try again shortly.
    Retry,
}

/// What became of one event.
#[derive(Debug, Clone)]
enum Verdict {
    Applied,
    Rejected(String),
    Superseded(String),
    /// Not settled this time (the write did not happen): taken up again. `counts` when it
    /// failed on its own account (an error), not when the lease was held elsewhere or the
    /// service was stopping.
    Again {
        why: String,
        counts: bool,
    },
}

/// Claims and processes one batch of `lane`.
async fn batch(service: &Arc<Service>, lane: EventLane, limit: usize) -> Batch {
    // A dead process's events are taken up a little after its lease would have expired.
    let claim_for = (service.config.lease_ttl * 3).max(Duration::from_secs(3));
    let claimed = match service
        .queue
        .claim_events(lane, limit, &service.claimer, claim_for)
        .await
    {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::error!(error = %skillsync_engine::explain(&error), "cannot claim events");
            return Batch::Retry;
        }
    };
    if claimed.is_empty() {
        return Batch::Empty;
    }
    let full = claimed.len() == limit;
    let keeper = keep_claims(service.clone(), &claimed, claim_for);
    let mut verdicts: HashMap<String, Verdict> = HashMap::new();
    let events: Vec<(EventRecord, Option<Event>)> = claimed
        .into_iter()
        .map(|record| {
            let event = stored_event(&record.body);
            (record, event)
        })
        .collect();
    for (record, event) in &events {
        if event.is_none() {
            verdicts.insert(
                record.id.clone(),
                Verdict::Rejected("the stored event cannot be read back".into()),
            );
        }
    }
    // Which users each event writes, from the state as it is now (the lease is not held yet:
    // only to know whom to read; the state that is written is computed under the lease).
    let users = match users_of(service, &events).await {
        Ok(users) => users,
        Err(error) => {
            tracing::error!(error = %skillsync_engine::explain(&error), "cannot read the desired state");
            keeper.abort();
            give_back(service, &events).await;
            return Batch::Retry;
        }
    };
    let lane_lists = match lane {
        EventLane::Skills => Lists::Skills,
        EventLane::Proficiencies => Lists::Proficiencies,
    };
    let whole_record = |e: &Event| {
        matches!(
            e.change,
            Change::AgentLocale { .. } | Change::AgentAdded { .. }
        )
    };
    let mut retry = false;
    for (lists, in_group) in [
        (
            Lists::Both,
            &(|e: &Event| whole_record(e)) as &(dyn Fn(&Event) -> bool + Sync),
        ),
        (lane_lists, &|e: &Event| !whole_record(e)),
    ] {
        let group: Vec<&(EventRecord, Option<Event>)> = events
            .iter()
            .filter(|(r, e)| !verdicts.contains_key(&r.id) && e.as_ref().is_some_and(in_group))
            .collect();
        if group.is_empty() {
            continue;
        }
        let group_users: BTreeSet<UserId> = group
            .iter()
            .filter_map(|(r, _)| users.get(&r.id).cloned())
            .collect();
        let ids: Vec<&str> = group.iter().map(|(r, _)| r.id.as_str()).collect();
        let outcome = write_group(service, (lane, lists), &events, &ids, &users, group_users).await;
        retry |= outcome.retry;
        verdicts.extend(outcome.verdicts);
    }
    keeper.abort();
    settle(service, lane, &events, verdicts).await;
    if retry {
        Batch::Retry
    } else if full {
        Batch::Full
    } else {
        Batch::Done
    }
}

/// Per event id, the tenant user its agent is (unknown agents have none).
async fn users_of(
    service: &Service,
    events: &[(EventRecord, Option<Event>)],
) -> Result<HashMap<String, UserId>, skillsync_engine::Error> {
    let current = service
        .desired
        .current(service.journal.as_ref(), service.queue.as_ref())
        .await?;
    Ok(events
        .iter()
        .filter_map(|(record, event)| {
            let event = event.as_ref()?;
            let user = match &event.change {
                Change::AgentAdded { user_id, .. } => Some(user_id.clone()),
                _ => current
                    .desired
                    .agents
                    .get(&event.employee_id)
                    .map(|a| a.user_id.clone()),
            }?;
            Some((record.id.clone(), user))
        })
        .collect())
}

struct GroupOutcome {
    verdicts: HashMap<String, Verdict>,
    retry: bool,
}

/// Writes one group of a batch (the events `ids`, whose agents are `users`), in one engine run;
/// a run refused as a whole (a guard, an ownership conflict, an invalid plan) is run again
/// one agent at a time, so one bad event does not hold up the others.
async fn write_group(
    service: &Service,
    (lane, lists): (EventLane, Lists),
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
    users_by_event: &HashMap<String, UserId>,
    users: BTreeSet<UserId>,
) -> GroupOutcome {
    let all: Vec<UserId> = users.iter().cloned().collect();
    let first = run_once(service, (lane, lists), events, ids, all.clone()).await;
    match first {
        Run::Settled(verdicts) => GroupOutcome {
            verdicts,
            retry: false,
        },
        Run::Again { why, counts } => GroupOutcome {
            verdicts: ids
                .iter()
                .map(|id| {
                    let verdict = Verdict::Again {
                        why: why.clone(),
                        counts,
                    };
                    (id.to_string(), verdict)
                })
                .collect(),
            retry: true,
        },
        Run::Blocked(why) if all.len() <= 1 => {
            // One agent: the refusal is this group's events' own.
            let mut verdicts = HashMap::new();
            let computed = verdicts_without_write(service, events, ids).await;
            for id in ids {
                let verdict = match computed.get(*id) {
                    Some(Verdict::Applied) | None => Verdict::Rejected(why.clone()),
                    Some(other) => other.clone(),
                };
                verdicts.insert(id.to_string(), verdict);
            }
            GroupOutcome {
                verdicts,
                retry: false,
            }
        }
        Run::Blocked(_) => {
            let mut outcome = GroupOutcome {
                verdicts: HashMap::new(),
                retry: false,
            };
            for user in all {
                let own: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| users_by_event.get(*id) == Some(&user))
                    .collect();
                let single = Box::pin(write_group(
                    service,
                    (lane, lists),
                    events,
                    &own,
                    users_by_event,
                    BTreeSet::from([user]),
                ))
                .await;
                outcome.retry |= single.retry;
                outcome.verdicts.extend(single.verdicts);
            }
            // Events of no agent (unknown, or leaving) settle by the state alone.
            let computed = verdicts_without_write(service, events, ids).await;
            for id in ids {
                if !outcome.verdicts.contains_key(*id) {
                    let verdict = computed.get(*id).cloned().unwrap_or(Verdict::Applied);
                    outcome.verdicts.insert(id.to_string(), verdict);
                }
            }
            outcome
        }
    }
}

enum Run {
    /// The run ended: a verdict for each event of the group.
    Settled(HashMap<String, Verdict>),
    /// Nothing was decided (the lease is held elsewhere, the tenant or store failed).
    Again { why: String, counts: bool },
    /// Refused as a whole, with why.
    Blocked(String),
}

/// One engine run for the events `ids` and the agents `users`.
async fn run_once(
    service: &Service,
    (lane, lists): (EventLane, Lists),
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
    users: Vec<UserId>,
) -> Run {
    let kind = match (lane, lists) {
        (_, Lists::Both) => "serve-agent",
        (EventLane::Skills, _) => "serve-skills",
        (EventLane::Proficiencies, _) => "serve-proficiencies",
    };
    let config = &service.config;
    let options = SyncOptions {
        run: config.run_label(kind, None),
        plan: config.plan_options(service.api.capabilities().max_bulk_entries.is_some()),
        // The HRIS said so, event by event: the removal guard is for whole-file syncs.
        removal_limit: skillsync_engine::RemovalLimit::Count(u64::MAX),
        allow_empty_skills: false,
        write: config.write_options(),
        window: None,
        adopt: Some(service.adopt.clone()),
        scope: SyncScope::Agents { users, lists },
    };
    let hooks = SyncHooks {
        interrupt: Some(&service.interrupt),
        ..SyncHooks::quiet()
    };
    // Decided under the lease (by `prepare`, then by `settle` from the run's report).
    let decided: parking_lot::Mutex<(HashMap<String, Verdict>, AgentUsers)> = Default::default();
    let result = skillsync_engine::sync_prepared(
        service.api.as_ref(),
        service.journal.as_ref(),
        &options,
        &hooks,
        async || {
            let laid = laid_over(service, events, ids).await?;
            *decided.lock() = (laid.verdicts, laid.agents);
            Ok((laid.desired, laid.warnings))
        },
        async |report: &SyncReport| {
            let verdicts = {
                let (verdicts, agents) = &*decided.lock();
                verdicts_of(report, verdicts, agents, events, ids)
            };
            settle_now(service, lane, &verdicts, report.run).await;
            decided.lock().0 = verdicts;
            Ok(())
        },
    )
    .await;
    let decided = decided.into_inner().0;
    service.status.lock().lease_held =
        !matches!(result, Err(skillsync_engine::Error::LeaseHeld(_)));
    match result {
        Err(skillsync_engine::Error::LeaseHeld(lease)) => {
            tracing::debug!(holder = ?lease.holder, "the tenant's lease is held elsewhere; events wait");
            Run::Again {
                why: format!(
                    "the tenant's lease is held by {} (pid {} on {})",
                    lease.holder.command, lease.holder.pid, lease.holder.host
                ),
                counts: false,
            }
        }
        Err(error) => {
            let why = skillsync_engine::explain(&error);
            tracing::warn!(kind, error = %why, "events not applied this time");
            service.metrics.run(kind, "error");
            Run::Again {
                why,
                counts: !service.is_stopping(),
            }
        }
        Ok(report) => {
            service.metrics.run(kind, outcome_name(&report.outcome));
            match &report.outcome {
                SyncOutcome::Invalid(problems) | SyncOutcome::Takeover(problems) => {
                    Run::Blocked(first_error(problems))
                }
                SyncOutcome::Refused(refusal) => Run::Blocked(refusal.to_string()),
                SyncOutcome::RetiredMeanwhile
                | SyncOutcome::OutsideWindow(_)
                | SyncOutcome::Declined => Run::Again {
                    why: "the run was stopped before writing".into(),
                    counts: false,
                },
                SyncOutcome::NoChanges | SyncOutcome::Applied(_) => Run::Settled(decided),
            }
        }
    }
}

fn outcome_name(outcome: &SyncOutcome) -> &'static str {
    match outcome {
        SyncOutcome::NoChanges => "no-changes",
        SyncOutcome::Applied(report) if report.written.complete() => "applied",
        SyncOutcome::Applied(_) => "incomplete",
        SyncOutcome::Invalid(_) => "invalid",
        SyncOutcome::Takeover(_) => "takeover",
        SyncOutcome::Refused(_) => "refused",
        _ => "stopped",
    }
}

fn first_error(problems: &[Problem]) -> String {
    problems
        .iter()
        .find(|p| p.is_error())
        .map(|p| match &p.hint {
            Some(hint) => format!("{}: {hint}", p.message),
            None => p.message.clone(),
        })
        .unwrap_or_else(|| "the plan is invalid".into())
}

/// Each agent's tenant user, in the state a run wrote.
type AgentUsers = HashMap<skillsync_core::EmployeeId, UserId>;

/// What a group's run starts from.
struct LaidOver {
    desired: Desired,
    warnings: Vec<Problem>,
    /// The verdict on each event of the group that the state alone decides (superseded by
    /// newer files, rejected by the checks); the others are `Applied` until the run says.
    verdicts: HashMap<String, Verdict>,
    agents: AgentUsers,
}

/// The desired state with the applied events and this group's events laid over the files in
/// the order they occurred.
async fn laid_over(
    service: &Service,
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
) -> Result<LaidOver, skillsync_engine::Error> {
    let files = service.desired.files().await;
    let mut desired = (*files.desired).clone();
    desired.retired = skillsync_engine::retirements(service.journal.as_ref()).await?;
    let exported_at = files.exported_at;
    let applied = service
        .queue
        .applied_events_since(exported_at)
        .await
        .map_err(skillsync_engine::Error::Journal)?;
    let mut ordered: Vec<(jiff::Timestamp, jiff::Timestamp, Option<&str>, Event)> = applied
        .iter()
        .filter_map(|r| Some((r.occurred_at, r.received_at, None, stored_event(&r.body)?)))
        .collect();
    for (record, event) in events {
        if let Some(event) = event
            && ids.contains(&record.id.as_str())
        {
            ordered.push((
                record.occurred_at,
                record.received_at,
                Some(record.id.as_str()),
                event.clone(),
            ));
        }
    }
    ordered.sort_by_key(|a| (a.0, a.1));
    let carries = crate::inputs::carries(&service.config);
    let mut verdicts = HashMap::new();
    for (occurred_at, _, own, event) in ordered {
        match own {
            None => skillsync_core::apply_event(&mut desired, &event),
            Some(id) => {
                if occurred_at <= exported_at {
                    verdicts.insert(
                        id.to_string(),
                        Verdict::Superseded(format!(
                            "it occurred at {occurred_at}, before the HRIS files in force were exported ({exported_at})"
                        )),
                    );
                    continue;
                }
                match skillsync_core::check_event(&event, &desired, &carries) {
                    Ok(_) => {
                        skillsync_core::apply_event(&mut desired, &event);
                        verdicts.insert(id.to_string(), Verdict::Applied);
                    }
                    Err(reason) => {
                        verdicts.insert(id.to_string(), Verdict::Rejected(reason));
                    }
                }
            }
        }
    }
    let agents = desired
        .agents
        .iter()
        .map(|(e, a)| (e.clone(), a.user_id.clone()))
        .collect();
    Ok(LaidOver {
        desired,
        warnings: (*files.warnings).clone(),
        verdicts,
        agents,
    })
}

/// Verdicts the state alone decides, for events whose write was refused as a whole.
async fn verdicts_without_write(
    service: &Service,
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
) -> HashMap<String, Verdict> {
    laid_over(service, events, ids)
        .await
        .map(|laid| laid.verdicts)
        .unwrap_or_default()
}

/// Each event's verdict once its run ended: accepted events take their agent's outcome.
fn verdicts_of(
    report: &SyncReport,
    decided: &HashMap<String, Verdict>,
    users: &AgentUsers,
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
) -> HashMap<String, Verdict> {
    let mut verdicts = HashMap::new();
    for (record, event) in events {
        if !ids.contains(&record.id.as_str()) {
            continue;
        }
        let Some(decided) = decided.get(&record.id) else {
            continue;
        };
        let verdict = match (decided, event) {
            (Verdict::Applied, Some(event)) => {
                let user = match &event.change {
                    Change::AgentAdded { user_id, .. } => Some(user_id.clone()),
                    _ => users.get(&event.employee_id).cloned(),
                };
                match user {
                    // Left the HRIS: nothing to write.
                    None => Verdict::Applied,
                    Some(user) if report.absent.contains(&user) => Verdict::Rejected(format!(
                        "user {user} of employee {} does not exist in the tenant",
                        event.employee_id
                    )),
                    Some(user) => match &report.outcome {
                        SyncOutcome::Applied(applied) => match applied.written.users.get(&user) {
                            None
                            | Some(skillsync_engine::UserOutcome::Updated)
                            | Some(skillsync_engine::UserOutcome::AlreadyCurrent) => {
                                Verdict::Applied
                            }
                            Some(skillsync_engine::UserOutcome::Failed { reason, .. }) => {
                                Verdict::Rejected(format!("the tenant did not take it: {reason}"))
                            }
                            Some(skillsync_engine::UserOutcome::NotAttempted(stop)) => {
                                Verdict::Again {
                                    why: stop.to_string(),
                                    counts: !matches!(
                                        stop,
                                        skillsync_engine::StopReason::Interrupted
                                            | skillsync_engine::StopReason::LeaseLost
                                    ),
                                }
                            }
                        },
                        _ => Verdict::Applied,
                    },
                }
            }
            (other, _) => other.clone(),
        };
        verdicts.insert(record.id.clone(), verdict);
    }
    verdicts
}

/// Records verdicts now (under the lease, from the run's `settle`).
async fn settle_now(
    service: &Service,
    lane: EventLane,
    verdicts: &HashMap<String, Verdict>,
    run: Option<skillsync_store::RunId>,
) {
    let outcomes: Vec<EventOutcome> = verdicts
        .iter()
        .filter(|(_, v)| !matches!(v, Verdict::Again { .. }))
        .map(|(id, v)| {
            // The run that wrote an applied event; the others it only looked at.
            let run = run.filter(|_| matches!(v, Verdict::Applied));
            outcome(id, v, run)
        })
        .collect();
    record(service, lane, outcomes).await;
}

/// Settles what the batch decided and gives back what it did not; an event given back too
/// often is rejected with its last reason.
async fn settle(
    service: &Service,
    lane: EventLane,
    events: &[(EventRecord, Option<Event>)],
    verdicts: HashMap<String, Verdict>,
) {
    let mut outcomes = Vec::new();
    for (record, _) in events {
        let verdict = verdicts.get(&record.id).cloned().unwrap_or(Verdict::Again {
            why: "not processed".into(),
            counts: false,
        });
        let verdict = match verdict {
            Verdict::Again { why, counts: true } if record.attempts >= MAX_ATTEMPTS => {
                Verdict::Rejected(format!(
                    "not applied after {} attempts; the last: {why}",
                    record.attempts
                ))
            }
            other => other,
        };
        outcomes.push(outcome(&record.id, &verdict, None));
    }
    record(service, lane, outcomes).await;
}

fn outcome(id: &str, verdict: &Verdict, run: Option<skillsync_store::RunId>) -> EventOutcome {
    let (state, reason) = match verdict {
        Verdict::Applied => (EventState::Applied, None),
        Verdict::Rejected(why) => (EventState::Rejected, Some(why.clone())),
        Verdict::Superseded(why) => (EventState::Superseded, Some(why.clone())),
        Verdict::Again { why, counts: true } => (EventState::Queued, Some(why.clone())),
        Verdict::Again { counts: false, .. } => (EventState::Queued, None),
    };
    EventOutcome {
        id: id.to_string(),
        state,
        reason,
        run,
    }
}

async fn record(service: &Service, lane: EventLane, outcomes: Vec<EventOutcome>) {
    if outcomes.is_empty() {
        return;
    }
    match service
        .queue
        .settle_events(&service.claimer, &outcomes)
        .await
    {
        Ok(settled) => {
            let settled: std::collections::HashSet<&str> =
                settled.iter().map(String::as_str).collect();
            for o in outcomes.iter().filter(|o| settled.contains(o.id.as_str())) {
                service.metrics.settled(lane.as_str(), o.state.as_str(), 1);
                match &o.reason {
                    Some(reason) => {
                        tracing::info!(event_id = %o.id, state = %o.state, reason = %reason, "event settled")
                    }
                    None => tracing::info!(event_id = %o.id, state = %o.state, "event settled"),
                }
            }
        }
        Err(error) => {
            tracing::error!(error = %skillsync_engine::explain(&error), "cannot settle events; their claims expire and they are taken up again");
        }
    }
}

/// Gives back a batch untouched.
async fn give_back(service: &Service, events: &[(EventRecord, Option<Event>)]) {
    let outcomes: Vec<EventOutcome> = events
        .iter()
        .map(|(r, _)| {
            let verdict = Verdict::Again {
                why: String::new(),
                counts: false,
            };
            outcome(&r.id, &verdict, None)
        })
        .collect();
    if let Err(error) = service
        .queue
        .settle_events(&service.claimer, &outcomes)
        .await
    {
        tracing::warn!(error = %skillsync_engine::explain(&error), "cannot give events back; their claims expire");
    }
}

/// Extends the batch's claims while it runs, so a long run keeps them.
fn keep_claims(
    service: Arc<Service>,
    claimed: &[EventRecord],
    claim_for: Duration,
) -> tokio::task::JoinHandle<()> {
    let ids: Vec<String> = claimed.iter().map(|r| r.id.clone()).collect();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(claim_for / 3).await;
            if let Err(error) = service
                .queue
                .extend_claims(&ids, &service.claimer, claim_for)
                .await
            {
                tracing::warn!(error = %skillsync_engine::explain(&error), "cannot extend event claims");
            }
        }
    })
}
