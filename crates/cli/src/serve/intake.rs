//! Storing events before answering 202. Each request's events would cost one transaction
//! (and, durably, one fsync) on their own; instead every request waiting at the same moment
//! joins one transaction, so the rate of acknowledged events grows with the load instead of
//! being capped by the disk's flushes per second (group commit, as databases do for their
//! own log).

use std::collections::HashSet;
use std::sync::Arc;

use skillsync_store::{EventLane, NewEvent};
use tokio::sync::{mpsc, oneshot};

use super::Service;

/// Requests that may wait to be stored at once.
const WAITING: usize = 1024;
/// Events one transaction takes at most.
const PER_TRANSACTION: usize = 5_000;
/// Proficiency agents waiting that make the proficiency lane flush early (SPEC: 100).
pub const FLUSH_AT_AGENTS: usize = 100;
/// How old the queue's count may be before a request counts again: counting on every request
/// would make every request wait for the store in turn, and the bound `max_queued` sets is a
/// back-pressure signal, not an exact cap.
const COUNT_FOR: std::time::Duration = std::time::Duration::from_secs(1);

struct Pending {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<bool>, String>>,
}

/// The way into the store.
pub struct Intake {
    sender: mpsc::Sender<Pending>,
    receiver: parking_lot::Mutex<Option<mpsc::Receiver<Pending>>>,
    /// Employees with proficiency events stored since the lane last flushed.
    proficiency_agents: parking_lot::Mutex<HashSet<String>>,
    /// The events waiting, as last counted by the store plus those stored since.
    queued: parking_lot::Mutex<Option<(std::time::Instant, u64)>>,
    /// Held while one request counts, so the others use the count they have.
    counting: tokio::sync::Mutex<()>,
}

impl Intake {
    pub fn new() -> Intake {
        let (sender, receiver) = mpsc::channel(WAITING);
        Intake {
            sender,
            receiver: parking_lot::Mutex::new(Some(receiver)),
            proficiency_agents: parking_lot::Mutex::new(HashSet::new()),
            queued: parking_lot::Mutex::new(None),
            counting: tokio::sync::Mutex::new(()),
        }
    }

    /// About how many events wait (all processes'): counted by the store at most once a
    /// second, plus what this process stored since.
    pub async fn queued(
        &self,
        queue: &dyn skillsync_store::EventQueue,
    ) -> Result<u64, skillsync_store::StoreError> {
        let fresh = |known: &Option<(std::time::Instant, u64)>| {
            known.filter(|(at, _)| at.elapsed() < COUNT_FOR)
        };
        if let Some((_, queued)) = fresh(&self.queued.lock()) {
            return Ok(queued);
        }
        let Ok(_counting) = self.counting.try_lock() else {
            // Another request is counting: the last count serves meanwhile.
            if let Some((_, queued)) = *self.queued.lock() {
                return Ok(queued);
            }
            let _counting = self.counting.lock().await;
            return Ok(self.queued.lock().map_or(0, |(_, q)| q));
        };
        let queued = queue.event_stats().await?.queued;
        *self.queued.lock() = Some((std::time::Instant::now(), queued));
        Ok(queued)
    }

    /// Stores `events` durably; per event, whether it was new (false: its id was stored before).
    pub async fn store(&self, events: Vec<NewEvent>) -> Result<Vec<bool>, String> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { events, reply })
            .await
            .map_err(|_| "the service is stopping".to_string())?;
        answer
            .await
            .map_err(|_| "the service is stopping".to_string())?
    }

    /// The proficiency lane flushed: its waiting agents start again from none.
    pub fn flushed(&self) {
        self.proficiency_agents.lock().clear();
    }
}

/// Takes waiting requests in groups and stores each group in one transaction.
pub async fn run(service: Arc<Service>) {
    let Some(mut receiver) = service.intake.receiver.lock().take() else {
        return;
    };
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        let mut count = group[0].events.len();
        while count < PER_TRANSACTION {
            match receiver.try_recv() {
                Ok(next) => {
                    count += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let all: Vec<NewEvent> = group.iter().flat_map(|p| p.events.clone()).collect();
        let stored = service.queue.enqueue_events(&all).await;
        match stored {
            Ok(new) => {
                let mut skills = false;
                let mut agents_waiting = 0;
                {
                    let mut waiting = service.intake.proficiency_agents.lock();
                    for (event, new) in all.iter().zip(&new) {
                        if !new {
                            continue;
                        }
                        match event.lane {
                            EventLane::Skills => skills = true,
                            EventLane::Proficiencies => {
                                waiting.insert(event.employee_id.clone());
                            }
                        }
                    }
                    agents_waiting = agents_waiting.max(waiting.len());
                }
                let accepted = new.iter().filter(|n| **n).count() as u64;
                if let Some((_, queued)) = service.intake.queued.lock().as_mut() {
                    *queued += accepted;
                }
                service.metrics.events_accepted.inc_by(accepted);
                service
                    .metrics
                    .events_repeated
                    .inc_by(new.len() as u64 - accepted);
                if skills {
                    service.wake_skills.notify_one();
                }
                if agents_waiting >= FLUSH_AT_AGENTS {
                    service.wake_proficiencies.notify_one();
                }
                let mut at = 0;
                for pending in group {
                    let n = pending.events.len();
                    let _ = pending.reply.send(Ok(new[at..at + n].to_vec()));
                    at += n;
                }
            }
            Err(error) => {
                let why = format!(
                    "cannot store the events: {}",
                    skillsync_engine::explain(&error)
                );
                tracing::error!(error = %why, "intake");
                for pending in group {
                    let _ = pending.reply.send(Err(why.clone()));
                }
            }
        }
    }
}
