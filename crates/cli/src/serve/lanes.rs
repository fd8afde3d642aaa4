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
/// The longest pause while the tenant or the store keeps failing.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);
/// Skill events one run takes: each agent is read on its own, and the lease is held
/// meanwhile.
const SKILL_BATCH: usize = 200;
/// Proficiency events one run takes (latest wins per agent, so agents are fewer).
const PROFICIENCY_BATCH: usize = 2_000;

/// Runs one lane until the service stops.
pub async fn run(service: Arc<Service>, lane: EventLane) {
    let limit = match lane {
        EventLane::Skills => SKILL_BATCH,
        EventLane::Proficiencies => PROFICIENCY_BATCH,
    };
    // Batches in a row that could not be applied for no fault of their events (the tenant or
    // the store failing): each waits twice as long as the last, up to `MAX_RETRY_PAUSE`.
    let mut failing: u32 = 0;
    loop {
        if service.is_stopping() {
            break;
        }
        if lane == EventLane::Proficiencies {
            tokio::select! {
                _ = tokio::time::sleep(service.config.serve.proficiency_flush) => {}
                _ = service.wake_proficiencies.notified() => {}
                _ = service.stopped() => {}
            }
            if service.is_stopping() {
                break;
            }
            service.intake.flushed();
        }
        while !service.is_stopping() {
            match batch(&service, lane, limit).await {
                Batch::Full => {
                    failing = 0;
                    continue;
                }
                Batch::Done => {
                    failing = 0;
                    if lane == EventLane::Proficiencies {
                        break;
                    }
                    continue;
                }
                Batch::Empty => {
                    failing = 0;
                    if lane == EventLane::Skills {
                        tokio::select! {
                            _ = tokio::time::sleep(POLL) => {}
                            _ = service.wake_skills.notified() => {}
                            _ = service.stopped() => {}
                        }
                    }
                    break;
                }
                Batch::LeaseElsewhere => {
                    service.pause(RETRY_PAUSE).await;
                    break;
                }
                Batch::Failed => {
                    let pause = (RETRY_PAUSE * 2u32.saturating_pow(failing)).min(MAX_RETRY_PAUSE);
                    failing = failing.saturating_add(1);
                    tracing::info!(
                        pause_secs = pause.as_secs(),
                        "events wait while the tenant or the store fails"
                    );
                    service.pause(pause).await;
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
    /// The tenant's lease is held by another process: try again shortly.
    LeaseElsewhere,
    /// The store or the tenant failed: try again after a pause that grows while it lasts.
    Failed,
}

/// What became of one event.
#[derive(Debug, Clone)]
enum Verdict {
    Applied,
    Rejected(String),
    Superseded(String),
    /// Not settled this time (the write did not happen): taken up again. `counts` when it
    /// may be the event's own doing, so that an event that can never be applied is rejected
    /// in the end; not when the tenant or store failed, the lease was held elsewhere or the
    /// service was stopping (an outage rejects nothing).
    Again {
        why: String,
        counts: bool,
    },
}

/// Claims and processes one batch of `lane`. Every verdict that depends on the tenant's state
/// is recorded while the run that reached it holds the lease; afterwards events are only
/// given back.
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
            return Batch::Failed;
        }
    };
    if claimed.is_empty() {
        return Batch::Empty;
    }
    let full = claimed.len() == limit;
    let keeper = keep_claims(service.clone(), &claimed, claim_for);
    let events: Vec<(EventRecord, Option<Event>)> = claimed
        .into_iter()
        .map(|record| {
            let event = stored_event(&record.body);
            (record, event)
        })
        .collect();
    let mut left: HashMap<String, Verdict> = HashMap::new();
    let unreadable: Vec<EventOutcome> = events
        .iter()
        .filter(|(_, event)| event.is_none())
        .map(|(record, _)| {
            let verdict = Verdict::Rejected("the stored event cannot be read back".into());
            outcome(&record.id, &verdict, None)
        })
        .collect();
    record(service, lane, unreadable).await;
    // An agent's arrival or locale moves their whole record: a batch holding one writes both
    // lists of its agents, so every event of the batch applies in the order it occurred.
    let lists = if events
        .iter()
        .any(|(_, e)| e.as_ref().is_some_and(whole_record))
    {
        Lists::Both
    } else {
        match lane {
            EventLane::Skills => Lists::Skills,
            EventLane::Proficiencies => Lists::Proficiencies,
        }
    };
    let readable: Vec<&str> = events
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(r, _)| r.id.as_str())
        .collect();
    let mut failed = false;
    let mut elsewhere = false;
    let mut groups: Vec<Vec<&str>> = vec![readable];
    while let Some(mut group) = groups.pop() {
        if service.is_stopping() {
            for id in group {
                left.insert(id.to_string(), stopping());
            }
            continue;
        }
        match run_once(service, (lane, lists), &events, &group).await {
            Run::Settled { again } => {
                // An event its run could not settle (the tenant did not keep the write, or its
                // outcome stayed unknown) waits like a failure: taken up at once, it would be
                // written again and again as fast as the tenant answers.
                failed |= !again.is_empty();
                left.extend(again);
            }
            Run::Again { why, counts, cause } => {
                failed |= cause == Cause::Failure;
                elsewhere |= cause == Cause::LeaseElsewhere;
                for id in group {
                    let verdict = Verdict::Again {
                        why: why.clone(),
                        counts,
                    };
                    left.insert(id.to_string(), verdict);
                }
            }
            Run::Blocked {
                why,
                undecided,
                users,
            } => {
                group.retain(|id| undecided.contains_key(*id));
                let agents: BTreeSet<Option<UserId>> = undecided.values().cloned().collect();
                if users == 0 {
                    // No agent's state was refused: the files themselves are, which no event
                    // of the batch can mend; tried again later, counted.
                    failed = true;
                    for id in group {
                        let verdict = Verdict::Again {
                            why: why.clone(),
                            counts: true,
                        };
                        left.insert(id.to_string(), verdict);
                    }
                } else if agents.len() > 1 {
                    // Run again one agent at a time, so one agent's refused state holds up no
                    // other agent's events.
                    for agent in agents {
                        let own: Vec<&str> = group
                            .iter()
                            .copied()
                            .filter(|id| undecided.get(*id) == Some(&agent))
                            .collect();
                        groups.push(own);
                    }
                } else if !group.is_empty() {
                    // One agent, whose latest event the run rejected: the earlier ones are
                    // tried again without it.
                    groups.push(group);
                }
            }
        }
    }
    keeper.abort();
    give_back(service, lane, &events, left).await;
    if elsewhere {
        Batch::LeaseElsewhere
    } else if failed {
        Batch::Failed
    } else if full {
        Batch::Full
    } else {
        Batch::Done
    }
}

fn stopping() -> Verdict {
    Verdict::Again {
        why: "the service is stopping".into(),
        counts: false,
    }
}

fn whole_record(event: &Event) -> bool {
    matches!(
        event.change,
        Change::AgentLocale { .. } | Change::AgentAdded { .. }
    )
}

/// Why a run decided nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Another process holds the tenant's lease.
    LeaseElsewhere,
    /// The tenant or the store failed.
    Failure,
    /// The service is stopping, or the window closed.
    Stopped,
}

enum Run {
    /// The run ended and recorded, under the lease, a verdict for each event of its group but
    /// `again`: those it could not settle, and why.
    Settled { again: HashMap<String, Verdict> },
    /// Nothing was decided.
    Again {
        why: String,
        counts: bool,
        cause: Cause,
    },
    /// Refused as a whole (a guard, an ownership conflict, an invalid plan). The events the
    /// state alone decided were recorded; of the rest, with a single agent, the latest was
    /// rejected. `undecided`: the others, each with its agent's user; `users`: how many
    /// agents the run covered.
    Blocked {
        why: String,
        undecided: HashMap<String, Option<UserId>>,
        users: usize,
    },
}

/// What a run decided under the lease, for the caller.
#[derive(Default)]
struct Decided {
    /// The verdicts the run's state decided (applied ones not yet confirmed by a write).
    verdicts: HashMap<String, Verdict>,
    /// Per event, its agent's tenant user in the state the run wrote (`None`: no agent).
    users: HashMap<String, Option<UserId>>,
    /// The users the run covered.
    scope: BTreeSet<UserId>,
    /// For a blocked run: the events left undecided.
    undecided: HashMap<String, Option<UserId>>,
    /// Each event's place in the order they occurred.
    order: HashMap<String, usize>,
}

/// One engine run for the events `ids`: their agents and the state are computed under the
/// lease, and the verdicts recorded before it is released.
async fn run_once(
    service: &Service,
    (lane, lists): (EventLane, Lists),
    events: &[(EventRecord, Option<Event>)],
    ids: &[&str],
) -> Run {
    let kind = match (lane, lists) {
        (_, Lists::Both) => "serve-agent",
        (EventLane::Skills, _) => "serve-skills",
        (EventLane::Proficiencies, _) => "serve-proficiencies",
    };
    let config = &service.config;
    let options = SyncOptions {
        run: config.run_label(kind, None),
        // An event's run reads only its agents' users: a user of the scope whose agent is not in
        // the desired state is not one the HRIS dropped, so absent agents are never stripped
        // here (the nightly full sync does, when configured).
        plan: skillsync_core::PlanOptions {
            absent_agents: skillsync_core::AbsentAgents::Keep,
            ..config.plan_options(service.api.capabilities().max_bulk_entries.is_some())
        },
        // The HRIS said so, event by event: the removal guard is for whole-file syncs.
        removal_limit: skillsync_engine::RemovalLimit::Count(u64::MAX),
        allow_empty_skills: false,
        write: config.write_options(),
        window: None,
        adopt: Some(service.adopt.clone()),
        scope: SyncScope::Agents {
            users: Vec::new(),
            lists,
        },
    };
    let hooks = SyncHooks {
        interrupt: Some(&service.interrupt),
        ..SyncHooks::quiet()
    };
    let decided: parking_lot::Mutex<Decided> = Default::default();
    // One run of this process at a time: the lease is per process, and the full sync waits
    // its turn behind a batch instead of finding the lease held by its own lanes.
    let turn = service.turn.lock().await;
    let result = skillsync_engine::sync_prepared(
        service.api.as_ref(),
        service.journal.as_ref(),
        &options,
        &hooks,
        None,
        async || {
            let laid = laid_over(service, events, ids).await?;
            let scope: BTreeSet<UserId> = laid
                .verdicts
                .iter()
                .filter(|(_, v)| matches!(v, Verdict::Applied))
                .filter_map(|(id, _)| laid.users.get(id).cloned().flatten())
                .collect();
            let prepared = skillsync_engine::Prepared {
                desired: std::sync::Arc::new(laid.desired),
                warnings: laid.warnings,
                users: Some(scope.iter().cloned().collect()),
            };
            *decided.lock() = Decided {
                verdicts: laid.verdicts,
                users: laid.users,
                scope,
                undecided: HashMap::new(),
                order: laid.order,
            };
            Ok(prepared)
        },
        async |report: &SyncReport| {
            let (verdicts, undecided) = {
                let decided = decided.lock();
                verdicts_of(report, &decided)
            };
            settle_now(service, lane, &verdicts, report.run).await;
            let mut decided = decided.lock();
            decided.undecided = undecided;
            decided.verdicts = verdicts;
            Ok(())
        },
    )
    .await;
    drop(turn);
    let decided = decided.into_inner();
    {
        let mut status = service.status.lock();
        match &result {
            Err(skillsync_engine::Error::LeaseHeld(lease)) => {
                status.lease_held = false;
                status.lease_elsewhere = Some((
                    format!(
                        "{} (pid {} on {}), until {}",
                        lease.holder.command, lease.holder.pid, lease.holder.host, lease.expires_at
                    ),
                    jiff::Timestamp::now(),
                ));
            }
            _ => {
                status.lease_held = true;
                status.lease_elsewhere = None;
            }
        }
    }
    match result {
        Err(skillsync_engine::Error::LeaseHeld(lease)) => {
            tracing::debug!(holder = ?lease.holder, "the tenant's lease is held elsewhere; events wait");
            Run::Again {
                why: format!(
                    "the tenant's lease is held by {} (pid {} on {})",
                    lease.holder.command, lease.holder.pid, lease.holder.host
                ),
                counts: false,
                cause: Cause::LeaseElsewhere,
            }
        }
        Err(error) => {
            let why = skillsync_engine::explain(&error);
            tracing::warn!(kind, error = %why, "events not applied this time");
            service.metrics.run(kind, "error");
            Run::Again {
                why,
                counts: false,
                cause: if service.is_stopping() {
                    Cause::Stopped
                } else {
                    Cause::Failure
                },
            }
        }
        Ok(report) => {
            service.metrics.run(kind, outcome_name(&report.outcome));
            match &report.outcome {
                SyncOutcome::Invalid(_) | SyncOutcome::Takeover(_) | SyncOutcome::Refused(_) => {
                    Run::Blocked {
                        why: blocked_why(&report.outcome),
                        undecided: decided.undecided,
                        users: decided.scope.len(),
                    }
                }
                SyncOutcome::RetiredMeanwhile
                | SyncOutcome::OutsideWindow(_)
                | SyncOutcome::Declined => Run::Again {
                    why: "the run was stopped before writing".into(),
                    counts: false,
                    cause: Cause::Stopped,
                },
                SyncOutcome::NoChanges | SyncOutcome::Applied(_) => Run::Settled {
                    again: decided
                        .verdicts
                        .into_iter()
                        .filter(|(_, v)| matches!(v, Verdict::Again { .. }))
                        .collect(),
                },
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

/// Why a run was refused as a whole.
fn blocked_why(outcome: &SyncOutcome) -> String {
    match outcome {
        SyncOutcome::Invalid(problems) | SyncOutcome::Takeover(problems) => first_error(problems),
        SyncOutcome::Refused(refusal) => refusal.to_string(),
        _ => "the run was refused".into(),
    }
}

/// What a group's run starts from.
struct LaidOver {
    desired: Desired,
    warnings: Vec<Problem>,
    /// The verdict on each event of the group that the state alone decides (superseded by
    /// newer files, rejected by the checks); the others are `Applied` until the run says.
    verdicts: HashMap<String, Verdict>,
    /// Per event of the group, its agent's tenant user once every event is laid over
    /// (`None`: not an agent then, e.g. one who left).
    users: HashMap<String, Option<UserId>>,
    /// Each event of the group's place in the order they occurred.
    order: HashMap<String, usize>,
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
    let mut employees = Vec::new();
    for (occurred_at, _, own, event) in ordered {
        match own {
            None => skillsync_core::apply_event(&mut desired, &event),
            Some(id) => {
                employees.push((id.to_string(), event.employee_id.clone()));
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
    let order = employees
        .iter()
        .enumerate()
        .map(|(at, (id, _))| (id.clone(), at))
        .collect();
    let users = employees
        .into_iter()
        .map(|(id, employee)| {
            let user = desired.agents.get(&employee).map(|a| a.user_id.clone());
            (id, user)
        })
        .collect();
    Ok(LaidOver {
        desired,
        warnings: (*files.warnings).clone(),
        verdicts,
        users,
        order,
    })
}

/// Once a run ended (under its lease): the verdicts to record, and for a run refused as a
/// whole, the events it leaves undecided. An event is applied only when its agent was in the
/// run and the tenant holds what it asked (written, or already so).
fn verdicts_of(
    report: &SyncReport,
    decided: &Decided,
) -> (HashMap<String, Verdict>, HashMap<String, Option<UserId>>) {
    let mut verdicts = HashMap::new();
    let mut undecided = HashMap::new();
    let pending = |id: &String| {
        matches!(decided.verdicts.get(id), Some(Verdict::Applied))
            .then(|| decided.users.get(id).cloned().flatten())
    };
    let blocked = matches!(
        report.outcome,
        SyncOutcome::Invalid(_) | SyncOutcome::Takeover(_) | SyncOutcome::Refused(_)
    );
    if blocked {
        // With one agent, the latest of its events is the one that left it refused.
        let latest = (decided.scope.len() == 1)
            .then(|| {
                decided
                    .verdicts
                    .keys()
                    .filter(|id| pending(id).flatten().is_some())
                    .max_by_key(|id| decided.order.get(*id))
            })
            .flatten();
        for (id, verdict) in &decided.verdicts {
            match pending(id) {
                None => {
                    verdicts.insert(id.clone(), verdict.clone());
                }
                Some(_) if Some(id) == latest => {
                    verdicts.insert(id.clone(), Verdict::Rejected(blocked_why(&report.outcome)));
                }
                Some(user) => {
                    undecided.insert(id.clone(), user);
                }
            }
        }
        return (verdicts, undecided);
    }
    for (id, verdict) in &decided.verdicts {
        let verdict = match pending(id) {
            None => verdict.clone(),
            // Not an agent once every event is laid over (they left): nothing to write.
            Some(None) => Verdict::Applied,
            Some(Some(user)) if !decided.scope.contains(&user) => Verdict::Again {
                why: format!("user {user} was not in the run"),
                counts: false,
            },
            Some(Some(user)) if report.absent.contains(&user) => {
                Verdict::Rejected(format!("user {user} does not exist in the tenant"))
            }
            Some(Some(user)) => match &report.outcome {
                SyncOutcome::Applied(applied) => match applied.written.users.get(&user) {
                    None
                    | Some(skillsync_engine::UserOutcome::Updated)
                    | Some(skillsync_engine::UserOutcome::AlreadyCurrent) => Verdict::Applied,
                    Some(skillsync_engine::UserOutcome::Failed { kind, reason }) => {
                        failed_write(*kind, reason)
                    }
                    Some(skillsync_engine::UserOutcome::NotAttempted(stop)) => Verdict::Again {
                        why: stop.to_string(),
                        counts: matches!(stop, skillsync_engine::StopReason::Definition(_)),
                    },
                },
                SyncOutcome::NoChanges => Verdict::Applied,
                _ => Verdict::Again {
                    why: "the run was stopped before writing".into(),
                    counts: false,
                },
            },
        };
        verdicts.insert(id.clone(), verdict);
    }
    (verdicts, undecided)
}

/// An event whose agent's write failed: rejected when the tenant refused it (the event's own
/// doing); tried again when the outcome was unknown or the tenant did not keep it.
fn failed_write(kind: skillsync_engine::FailureKind, reason: &str) -> Verdict {
    use skillsync_engine::FailureKind;
    match kind {
        FailureKind::Refused | FailureKind::Gone => {
            Verdict::Rejected(format!("the tenant did not take it: {reason}"))
        }
        FailureKind::NotKept => Verdict::Again {
            why: format!("the tenant did not keep it: {reason}"),
            counts: true,
        },
        FailureKind::Unresolved | FailureKind::Unconfirmed => Verdict::Again {
            why: reason.to_string(),
            counts: false,
        },
    }
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

/// Gives back, once the lease is released, every event of the batch no run settled (settling
/// only changes events still claimed and queued, so the settled ones are left as they are);
/// an event given back too often on its own account is rejected with its last reason.
async fn give_back(
    service: &Service,
    lane: EventLane,
    events: &[(EventRecord, Option<Event>)],
    mut left: HashMap<String, Verdict>,
) {
    let mut outcomes = Vec::new();
    for (record, _) in events {
        let verdict = left.remove(&record.id).unwrap_or(Verdict::Again {
            why: String::new(),
            counts: false,
        });
        let verdict = match verdict {
            Verdict::Again { why, counts: true } if record.attempts >= MAX_ATTEMPTS => {
                Verdict::Rejected(format!(
                    "not applied after {} attempts; the last: {why}",
                    record.attempts
                ))
            }
            Verdict::Again { why, counts } => Verdict::Again { why, counts },
            // Decided verdicts were recorded under the lease.
            _ => continue,
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
