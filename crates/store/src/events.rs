//! The HRIS event queue: events the HRIS posted to `skillsync serve`, kept from the moment the
//! service acknowledges them until a worker has applied (or rejected, or superseded) them.
//!
//! - **Durable on acknowledgement**: [`EventQueue::enqueue_events`] returns only once the events
//!   are committed to stable storage, so a 202 is never answered for an event a crash could
//!   lose. Ids are the HRIS's own: an event posted again (a retry after a lost response) is
//!   stored once and keeps whatever became of it.
//! - **Claims, not locks**: a worker claims events for a while ([`EventQueue::claim_events`]);
//!   a claim that runs out (its process died, or hung) makes the events claimable again, so
//!   nothing is stranded, and settling checks that the claim is still the worker's, so an event
//!   taken over by another process is settled by that one only. Claims are timed by the
//!   store's clock (PostgreSQL's, or the one machine's for SQLite), like the journal's leases.
//! - **Kept after settling**: settled events stay, with their outcome and the journal run that
//!   applied them, for the status page and for the overlay the service lays over the HRIS
//!   files ([`EventQueue::applied_events_since`]).

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{RunId, StoreError};

/// Which path processes an event: skills at once, proficiencies in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventLane {
    /// Skill assignments, applied as they come.
    Skills,
    /// Proficiency levels, gathered and applied in batches.
    Proficiencies,
}

impl EventLane {
    /// The lane's name, as stored and printed: `skills`, `proficiencies`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventLane::Skills => "skills",
            EventLane::Proficiencies => "proficiencies",
        }
    }

    /// The lane [`as_str`](Self::as_str) names; `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "skills" => EventLane::Skills,
            "proficiencies" => EventLane::Proficiencies,
            _ => return None,
        })
    }
}

impl fmt::Display for EventLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Waiting to be applied (claimed by a worker or not).
    Queued,
    /// Applied to the tenant (or found already as wanted) by a journal run.
    Applied,
    /// Not applicable (unknown employee, invalid content); the reason says why.
    Rejected,
    /// Made moot by a later event or HRIS file for the same employee; the reason says which.
    Superseded,
}

impl EventState {
    /// The state's name, as stored and printed: `queued`, `applied`, `rejected`,
    /// `superseded`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Queued => "queued",
            EventState::Applied => "applied",
            EventState::Rejected => "rejected",
            EventState::Superseded => "superseded",
        }
    }

    /// The state [`as_str`](Self::as_str) names; `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => EventState::Queued,
            "applied" => EventState::Applied,
            "rejected" => EventState::Rejected,
            "superseded" => EventState::Superseded,
            _ => return None,
        })
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as received, to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The HRIS's unique id for it (at most 128 characters, checked by the receiver): the key
    /// that makes a re-posted event a no-op.
    pub id: String,
    /// Which path processes it.
    pub lane: EventLane,
    /// The employee it is about.
    pub employee_id: String,
    /// When it happened in the HRIS: the order events are applied in.
    pub occurred_at: Timestamp,
    /// When the service received it.
    pub received_at: Timestamp,
    /// The event's own JSON object, as text, kept verbatim so it can be replayed.
    pub body: String,
}

/// A stored event and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// The HRIS's id.
    pub id: String,
    /// Which path processes it.
    pub lane: EventLane,
    /// The employee it is about.
    pub employee_id: String,
    /// When it happened in the HRIS.
    pub occurred_at: Timestamp,
    /// When the service received it.
    pub received_at: Timestamp,
    /// The event's JSON text, as received.
    pub body: String,
    /// What became of it.
    pub state: EventState,
    /// Why it was rejected or superseded; `None` otherwise.
    pub reason: Option<String>,
    /// The journal run that applied it.
    pub run: Option<RunId>,
    /// When it left [`EventState::Queued`].
    pub settled_at: Option<Timestamp>,
    /// How many times it was claimed: more than one means a worker gave it back or lost it.
    pub attempts: u32,
}

/// How one claimed event ended, for [`EventQueue::settle_events`].
#[derive(Debug, Clone)]
pub struct EventOutcome {
    /// The event's id.
    pub id: String,
    /// Its new state; [`EventState::Queued`] gives it back unsettled, as
    /// [`EventQueue::release_claims`] does.
    pub state: EventState,
    /// Why it was rejected or superseded. For an event given back: why it could not be
    /// applied (the claim counts as an attempt), or `None` when that was not the event's doing
    /// (the tenant's lease held elsewhere, a shutdown): the claim is then not counted.
    pub reason: Option<String>,
    /// The journal run that applied it.
    pub run: Option<RunId>,
}

/// Queue figures for metrics and the status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQueueStats {
    /// Events waiting, claimed or not.
    pub queued: u64,
    /// When the oldest waiting event was received: how far behind the workers are.
    pub oldest_queued: Option<Timestamp>,
    /// Events applied.
    pub applied: u64,
    /// Events rejected.
    pub rejected: u64,
    /// Events superseded.
    pub superseded: u64,
}

/// The durable queue of HRIS events, shared by every `serve` process pointed at the same store.
/// Each write method is one transaction. Claims are timed by the store's clock (PostgreSQL's
/// `clock_timestamp()`; for SQLite, the one machine's), so processes on hosts whose clocks
/// disagree still agree on when a claim runs out.
#[async_trait::async_trait]
pub trait EventQueue: Send + Sync {
    /// Stores the events in one transaction, durable when this returns `Ok` (SQLite commits
    /// with `synchronous=FULL`; PostgreSQL with `synchronous_commit=on`, whatever the server's
    /// default). An id already stored is left untouched, whatever its state. Says, per event
    /// in order, `true` if newly stored and `false` if its id was already there (also for an
    /// id given twice in the call: the first is stored).
    async fn enqueue_events(&self, events: &[NewEvent]) -> Result<Vec<bool>, StoreError>;

    /// One event by id.
    async fn event(&self, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Claims up to `limit` queued events of `lane` that nobody holds (never claimed, or whose
    /// claim has run out), oldest `occurred_at` first (then `received_at`, then id), for
    /// `claimer` until the store's now + `claim_for`, counting an attempt on each; returned in
    /// that order. Two processes claiming at once never get the same event. A `claim_for` of
    /// zero runs out at once (the events can be claimed again straight away).
    async fn claim_events(
        &self,
        lane: EventLane,
        limit: usize,
        claimer: &str,
        claim_for: std::time::Duration,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Extends `claimer`'s claims on `ids` to the store's now + `claim_for` (for long
    /// batches); returns how many it still held. A claim that ran out but that nobody took
    /// since is still held, and extended.
    async fn extend_claims(
        &self,
        ids: &[String],
        claimer: &str,
        claim_for: std::time::Duration,
    ) -> Result<usize, StoreError>;

    /// Settles claimed events in one transaction: state, reason, run, settled now, claim
    /// cleared. Only events still queued and claimed by `claimer` change (one whose claim ran
    /// out and was taken by another process is left to that one); of an id given twice the
    /// first counts. Returns the ids settled, in the order given. An outcome of
    /// [`EventState::Queued`] gives its event back unsettled and is not among them. Fails with
    /// [`StoreError::UnknownRun`], settling nothing, if an outcome names a run never started.
    async fn settle_events(
        &self,
        claimer: &str,
        outcomes: &[EventOutcome],
    ) -> Result<Vec<String>, StoreError>;

    /// Gives up `claimer`'s claims without settling (on a graceful shutdown), so another
    /// process may take the events now rather than when the claims run out.
    async fn release_claims(&self, claimer: &str) -> Result<(), StoreError>;

    /// The applied events that occurred strictly after `since`, oldest `occurred_at` first
    /// (then `received_at`, then id): the overlay the service lays over the HRIS files.
    async fn applied_events_since(&self, since: Timestamp) -> Result<Vec<EventRecord>, StoreError>;

    /// Queue figures.
    async fn event_stats(&self) -> Result<EventQueueStats, StoreError>;

    /// The `limit` most recently received events, newest first (by `received_at`, then id
    /// descending), only those in `state` when it is given; for the status page.
    async fn recent_events(
        &self,
        limit: usize,
        state: Option<EventState>,
    ) -> Result<Vec<EventRecord>, StoreError>;
}

/// The events of a call with repeated ids kept once, the first of each: one statement cannot
/// insert (or settle) a row twice, and the first is the one a sequence of calls would keep.
/// Returns the kept indices into `ids`.
pub(crate) fn first_of_each<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    ids.enumerate()
        .filter(|(_, id)| seen.insert(*id))
        .map(|(index, _)| index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for lane in [EventLane::Skills, EventLane::Proficiencies] {
            assert_eq!(EventLane::parse(lane.as_str()), Some(lane));
            assert_eq!(serde_json::to_value(lane).unwrap(), lane.as_str());
        }
        for state in [
            EventState::Queued,
            EventState::Applied,
            EventState::Rejected,
            EventState::Superseded,
        ] {
            assert_eq!(EventState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(EventLane::parse("Skills"), None);
        assert_eq!(EventState::parse(""), None);
    }

    #[test]
    fn first_of_each_keeps_the_first() {
        assert_eq!(
            first_of_each(["a", "b", "a", "c", "b"].into_iter()),
            [0, 1, 3]
        );
    }
}
