//! The one write path. Every user write of `apply`, `retire` and `assign` goes through a
//! [`Writer`]: bulk batches or single merge updates with `If-Match`; a conflict or an unknown
//! outcome re-reads the user and asks the caller's [`Rewrite`] what to send now (bounded); every
//! attempt is journaled as it completes; one circuit breaker stops scheduling writes; and
//! [`classify`] is the one place that decides what a client error means for the run.
//!
//! Every user handed to the writer ends in exactly one [`UserOutcome`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use skillsync_core::{UserAssignments, UserId};
use skillsync_cxone::{EntryOutcome, Error, TenantApi, UserWrite};
use skillsync_store::{Snapshot, WriteRecord, WriteStatus, WriteTarget};

use crate::entries;
use crate::error::explain;
use crate::fan_out::fan_out;

/// What a client error means for the run. Decided here, once, for every writing command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The object changed since it was read: re-read it, re-merge, write again.
    Reread,
    /// The answer was lost (the client's own retries ran out): the write may have landed, so
    /// re-read to learn which before sending anything again.
    Confirm,
    /// This user cannot be written (gone, or refused by the tenant); the others can.
    FailUser,
    /// No later write can succeed either (credentials, scopes, a dialect that lacks the
    /// operation): stop scheduling writes.
    StopRun,
}

mod per_definition;

/// The one error policy.
pub fn classify(error: &Error) -> Policy {
    match error {
        Error::Conflict { .. } => Policy::Reread,
        Error::Unavailable { .. } => Policy::Confirm,
        Error::NotFound { .. }
        | Error::Rejected { .. }
        | Error::Referenced { .. }
        | Error::Protocol { .. } => Policy::FailUser,
        Error::Settings(_)
        | Error::CaFile { .. }
        | Error::Auth { .. }
        | Error::MissingScope { .. }
        | Error::Unsupported { .. } => Policy::StopRun,
    }
}

/// What the caller wants a user to become, given what the tenant holds now.
pub(crate) trait Rewrite: Sync {
    fn rewrite(&self, live: &UserAssignments) -> Rewritten;
}

/// The answer of a [`Rewrite`].
pub(crate) enum Rewritten {
    /// Send this.
    Write(UserWrite),
    /// The tenant already holds what is wanted.
    Current,
    /// Do not write this user, for this reason.
    Refused(String),
}

/// Why a run stopped scheduling writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Too many users failed.
    Breaker {
        /// Users failed or in doubt.
        failed: usize,
        /// Users attempted.
        attempted: usize,
    },
    /// A write could not be journaled.
    Journal(String),
    /// The sync window closed.
    WindowClosed(jiff::Timestamp),
    /// Interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// The tenant refused in a way every later write would meet too.
    Tenant(String),
    /// A definition the users' writes need could not be written.
    Definition(String),
    /// The tenant's lease could not be renewed: another process may be writing now.
    LeaseLost,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Breaker { failed, attempted } => write!(
                f,
                "stopped: {failed} of {attempted} users failed, more than the tenant should fail"
            ),
            StopReason::Journal(error) => {
                write!(f, "stopped: the journal cannot be written ({error})")
            }
            StopReason::WindowClosed(at) => write!(
                f,
                "stopped: the sync window closed at {}; the users not yet written are left for the next window (apply again then, or with --now)",
                at.strftime("%Y-%m-%d %H:%M UTC")
            ),
            StopReason::Interrupted => {
                write!(
                    f,
                    "interrupted: writes in flight finished, no new ones were sent"
                )
            }
            StopReason::Tenant(error) => write!(f, "stopped: {error}"),
            StopReason::Definition(error) => {
                write!(f, "stopped before writing any user: {error}")
            }
            StopReason::LeaseLost => write!(
                f,
                "stopped: the tenant's lease could not be renewed (another skillsync may be writing now); the rest is left for the next run"
            ),
        }
    }
}

/// Why one user did not end as wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The tenant refused the write, or a guard refused to send it.
    Refused,
    /// The user no longer exists in the tenant.
    Gone,
    /// The outcome stayed unknown, or the user kept changing, after every retry.
    Unresolved,
    /// The tenant accepted the write but the read-back found it not kept.
    NotKept,
    /// The tenant accepted the write and the read-back could not read the user to confirm it.
    Unconfirmed,
}

/// How one user ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserOutcome {
    /// Written (and, after the read-back, found as written).
    Updated,
    /// Nothing to write after a re-read: the tenant already held it.
    AlreadyCurrent,
    /// Not as wanted, with the reason.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// The tenant's reason, or ours.
        reason: String,
    },
    /// Never written because the run stopped first.
    NotAttempted(StopReason),
}

impl UserOutcome {
    pub(crate) fn failed(kind: FailureKind, reason: impl Into<String>) -> UserOutcome {
        UserOutcome::Failed {
            kind,
            reason: reason.into(),
        }
    }
}

/// A planned first write of one user, with the user as read when it was planned.
pub(crate) struct Job {
    pub write: UserWrite,
    pub before: Snapshot,
}

/// How the writer writes.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Users per bulk request.
    pub bulk_batch_size: usize,
    /// Requests in flight at once (the client's cap still applies).
    pub concurrency: usize,
    /// Re-read and re-merge attempts per user after conflicts or unknown outcomes.
    pub conflict_retries: u32,
    /// Stop scheduling writes once this many users have failed...
    pub max_failures: usize,
    /// ...and they are more than this share of the users attempted.
    pub max_failure_share: f64,
    /// How long a skill change takes to reach the routing cache (for settles-at).
    pub propagation_window: std::time::Duration,
    /// No write is scheduled from then on (the sync window's close).
    pub write_until: Option<jiff::Timestamp>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            bulk_batch_size: 100,
            concurrency: 4,
            conflict_retries: 5,
            max_failures: 20,
            max_failure_share: 0.05,
            propagation_window: std::time::Duration::from_secs(30),
            write_until: None,
        }
    }
}

const READING: u8 = 0;
const WRITING: u8 = 1;
const EXITING: u8 = 2;

/// Set from a signal handler: writes in flight finish, no new one starts.
#[derive(Debug, Default)]
pub struct Interrupt {
    raised: AtomicBool,
    /// [`READING`], [`WRITING`] or [`EXITING`]: the command either starts writing or exits
    /// at once, never both.
    phase: std::sync::atomic::AtomicU8,
    /// The tenant's lease the command holds, so that a signal that ends the process before
    /// its first write can give it up instead of leaving it to run out.
    lease: Mutex<Option<skillsync_store::Lease>>,
}

impl Interrupt {
    /// A flag not yet raised.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }
    /// Raises it.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
    }
    /// Whether it was raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }
    /// Marks that the run is about to start writing: from now on an interruption must let it
    /// finish its writes in flight and journal them. False when a signal already claimed the
    /// process's exit: the run must not start.
    pub fn start_writing(&self) -> bool {
        match self
            .phase
            .compare_exchange(READING, WRITING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(phase) => phase == WRITING,
        }
    }
    /// Claims the exit of a process that has not started writing: true when it may end now
    /// (nothing written, nothing will be), false once writing has started.
    pub fn exit_before_writing(&self) -> bool {
        match self
            .phase
            .compare_exchange(READING, EXITING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(phase) => phase == EXITING,
        }
    }
    /// Notes the tenant's lease the command now holds.
    pub(crate) fn hold(&self, lease: skillsync_store::Lease) {
        *self.lease.lock().expect("not poisoned") = Some(lease);
    }
    /// The tenant's lease the command holds, if any: to release when it ends abruptly.
    pub fn held_lease(&self) -> Option<skillsync_store::Lease> {
        self.lease.lock().expect("not poisoned").clone()
    }
}

/// Where writes are journaled.
#[derive(Clone, Copy)]
pub struct JournalRun<'a> {
    /// The journal.
    pub journal: &'a dyn skillsync_store::Journal,
    /// The run the writes belong to.
    pub run: skillsync_store::RunId,
}

/// A write whose outcome this run does not know yet.
struct InDoubt {
    write: UserWrite,
    /// The user as read before that write.
    before: Snapshot,
    /// The answer was lost (the client's retries ran out), rather than a 412 (which may
    /// answer the client's own retry of a write that landed, or another writer's change).
    lost: bool,
}

#[derive(Default)]
struct State {
    // foldhash, not SipHash: a 100,000-agent apply looks users up here several times each.
    outcomes: foldhash::HashMap<UserId, UserOutcome>,
    /// Users that ended failed: what the breaker counts.
    failed: usize,
    /// The last write of each user the tenant accepted: what the read-back compares with.
    accepted: foldhash::HashMap<UserId, UserWrite>,
    /// Writes whose outcome is in doubt: a re-read that finds the user as wanted means it
    /// landed. They are re-read even after the run stops (reads are safe), so the report
    /// and the journal say what really happened.
    in_doubt: foldhash::HashMap<UserId, InDoubt>,
    attempted: usize,
    conflicts: usize,
    stop: Option<StopReason>,
    last_write: Option<jiff::Timestamp>,
}

/// The write path's shared state for one run.
pub(crate) struct Writer<'a> {
    api: &'a dyn TenantApi,
    journal: Option<JournalRun<'a>>,
    options: WriteOptions,
    interrupt: Option<&'a Interrupt>,
    lease: Option<&'a crate::lease::HeldLease<'a>>,
    /// Each user's page in the listing the plan was read from: users to re-read that shared a
    /// page are read with that page, one call instead of one each.
    listing_pages: foldhash::HashMap<UserId, usize>,
    state: Mutex<State>,
    /// Records waiting for the journal (see [`Writer::record`]).
    pending: Mutex<Pending>,
    /// Held by the one task writing the journal at a time.
    journal_turn: tokio::sync::Mutex<()>,
}

/// Records handed to [`Writer::record`] and not yet taken to the journal; counts in records,
/// in the order handed over.
#[derive(Default)]
struct Pending {
    records: Vec<WriteRecord>,
    /// Records ever handed over.
    handed: u64,
    /// Records taken by a turn at the journal.
    claimed: u64,
    /// Records whose turn finished (committed, or given up when the journal failed).
    committed: u64,
}

/// What the writer did, for the report.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Every user handed to the writer, and how it ended.
    pub users: BTreeMap<UserId, UserOutcome>,
    /// Conflicts met and re-merged.
    pub conflicts: usize,
    /// Why writing stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// When the last write was sent.
    pub last_write_at: Option<jiff::Timestamp>,
}

impl Written {
    /// Users in each outcome: (updated, already current, failed, not attempted).
    pub fn tally(&self) -> (usize, usize, usize, usize) {
        let mut tally = (0, 0, 0, 0);
        for outcome in self.users.values() {
            match outcome {
                UserOutcome::Updated => tally.0 += 1,
                UserOutcome::AlreadyCurrent => tally.1 += 1,
                UserOutcome::Failed { .. } => tally.2 += 1,
                UserOutcome::NotAttempted(_) => tally.3 += 1,
            }
        }
        tally
    }

    /// The users that failed, with kind and reason.
    pub fn failed(&self) -> impl Iterator<Item = (&UserId, FailureKind, &str)> {
        self.users.iter().filter_map(|(u, o)| match o {
            UserOutcome::Failed { kind, reason } => Some((u, *kind, reason.as_str())),
            _ => None,
        })
    }

    /// The users never attempted, with why.
    pub fn not_attempted(&self) -> impl Iterator<Item = (&UserId, &StopReason)> {
        self.users.iter().filter_map(|(u, o)| match o {
            UserOutcome::NotAttempted(why) => Some((u, why)),
            _ => None,
        })
    }

    /// The user counts of the run's journal entry (definitions and requests are the caller's).
    pub fn run_counts(&self) -> skillsync_store::RunCounts {
        let (updated, current, failed, not_attempted) = self.tally();
        let not_kept = self
            .failed()
            .filter(|(_, kind, _)| *kind == FailureKind::NotKept)
            .count();
        let n = |count: usize| count as u64;
        skillsync_store::RunCounts {
            users_planned: n(self.users.len()),
            users_updated: n(updated),
            users_already_current: n(current),
            users_failed: n(failed),
            users_not_attempted: n(not_attempted),
            users_not_kept: n(not_kept),
            conflicts: n(self.conflicts),
            stopped: self.stopped.as_ref().map(ToString::to_string),
            ..skillsync_store::RunCounts::default()
        }
    }

    /// True when every user ended as wanted and nothing stopped the run.
    pub fn complete(&self) -> bool {
        self.stopped.is_none()
            && self
                .users
                .values()
                .all(|o| matches!(o, UserOutcome::Updated | UserOutcome::AlreadyCurrent))
    }
}

/// The next step for a user after one attempt.
enum Next {
    Done,
    Reread,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(
        api: &'a dyn TenantApi,
        journal: Option<JournalRun<'a>>,
        options: WriteOptions,
        interrupt: Option<&'a Interrupt>,
        lease: Option<&'a crate::lease::HeldLease<'a>>,
    ) -> Writer<'a> {
        Writer {
            api,
            journal,
            options,
            interrupt,
            lease,
            listing_pages: Default::default(),
            state: Mutex::new(State::default()),
            pending: Mutex::new(Pending::default()),
            journal_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes where each user was in the listing the plan was read from.
    pub(crate) fn listed(&mut self, users: &[UserAssignments]) {
        self.listing_pages = users
            .iter()
            .enumerate()
            .map(|(at, user)| (user.user_id.clone(), at / skillsync_cxone::PAGE_SIZE + 1))
            .collect();
    }

    /// Reads the pages that held two or more of `users` in the plan's listing: the users
    /// still on them, as they are now. Users not found there (a page that failed, a listing
    /// that shifted since) are left to be read one by one.
    async fn read_shared_pages(&self, users: &[UserId]) -> HashMap<UserId, UserAssignments> {
        let mut on_page: BTreeMap<usize, BTreeSet<&UserId>> = BTreeMap::new();
        for user in users {
            if let Some(page) = self.listing_pages.get(user) {
                on_page.entry(*page).or_default().insert(user);
            }
        }
        let shared: Vec<(usize, BTreeSet<&UserId>)> = on_page
            .into_iter()
            .filter(|(_, users)| users.len() > 1)
            .collect();
        let pages = fan_out(
            shared,
            self.options.concurrency,
            |_| 1,
            |_| {},
            |(page, wanted)| async move {
                match self.api.users_page(page).await {
                    Ok(listed) => listed
                        .into_iter()
                        .filter(|u| wanted.contains(&u.user_id))
                        .collect(),
                    Err(error) => {
                        tracing::debug!(page, error = %explain(&error), "re-reading by page failed; reading its users one by one");
                        Vec::new()
                    }
                }
            },
        )
        .await;
        pages
            .into_iter()
            .flatten()
            .map(|u| (u.user_id.clone(), u))
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Stops the run for a reason found outside the user writes (a failed definition).
    pub(crate) fn stop(&self, reason: StopReason) {
        self.state().stop.get_or_insert(reason);
    }

    /// Why no more writes may be scheduled, if that is so. The first reason found sticks.
    pub(crate) async fn should_stop(&self) -> Option<StopReason> {
        // Asked outside the state's lock: a lease that lapsed is taken back from the journal.
        let lease_lost = match self.lease {
            Some(lease) => !lease.keep_or_take_back().await,
            None => false,
        };
        let mut state = self.state();
        if state.stop.is_none() && lease_lost {
            state.stop = Some(StopReason::LeaseLost);
        }
        if state.stop.is_none() {
            let interrupted = self.interrupt.is_some_and(Interrupt::is_raised);
            let window_closed = self
                .options
                .write_until
                .filter(|until| jiff::Timestamp::now() >= *until);
            // Users in doubt are not counted until re-read: one lost bulk answer is one
            // failed request, not a hundred failed users. A tenant answering only 5xx still
            // trips it, as the re-reads fail too.
            let failed = state.failed;
            let attempted = state.attempted.max(1);
            state.stop = if interrupted {
                Some(StopReason::Interrupted)
            } else if let Some(at) = window_closed {
                Some(StopReason::WindowClosed(at))
            } else if failed > self.options.max_failures
                && failed as f64 / attempted as f64 > self.options.max_failure_share
            {
                Some(StopReason::Breaker {
                    failed,
                    attempted: state.attempted,
                })
            } else {
                None
            };
        }
        state.stop.clone()
    }

    /// Why the run stopped, as found at a scheduling point; never evaluated anew, so a window
    /// that closes, or a signal that comes, once every write is done stops nothing.
    pub(crate) fn stopped(&self) -> Option<StopReason> {
        self.state().stop.clone()
    }

    pub(crate) fn settle(&self, user: &UserId, outcome: UserOutcome) {
        let mut state = self.state();
        state.in_doubt.remove(user);
        let was_failed = matches!(state.outcomes.get(user), Some(UserOutcome::Failed { .. }));
        let is_failed = matches!(outcome, UserOutcome::Failed { .. });
        state.failed = state.failed + usize::from(is_failed) - usize::from(was_failed);
        state.outcomes.insert(user.clone(), outcome);
    }

    /// The tenant took `write`: the user is updated, pending the read-back.
    fn landed(&self, write: &UserWrite) {
        self.settle(&write.user_id, UserOutcome::Updated);
        self.state()
            .accepted
            .insert(write.user_id.clone(), write.clone());
    }

    fn doubt(&self, write: &UserWrite, before: &Snapshot, lost: bool) {
        self.state().in_doubt.insert(
            write.user_id.clone(),
            InDoubt {
                write: write.clone(),
                before: before.clone(),
                lost,
            },
        );
    }

    /// Journals one or more records and returns once they are committed; a journal that
    /// cannot be written stops the run, since an unrecorded write is one an auditor cannot
    /// account for.
    ///
    /// Group commit: one task writes the journal at a time, taking every record handed over
    /// meanwhile into one transaction, so batches answered while the journal is busy share a
    /// commit (each commit costs the same pages and WAL frames whatever it holds). A caller
    /// still waits for its own records before it schedules another write: no write runs ahead
    /// of a journal that cannot take it, and at most the writes in flight are answered but
    /// not journaled when the process is killed.
    pub(crate) async fn record(&self, entries: Vec<Entry>) {
        let Some(j) = self.journal else { return };
        let at = jiff::Timestamp::now();
        let settles =
            jiff::SignedDuration::try_from(self.options.propagation_window).unwrap_or_default();
        let records: Vec<WriteRecord> = entries
            .into_iter()
            .map(|e| WriteRecord {
                run: j.run,
                target: e.target,
                subject: e.subject,
                before: e.before,
                after: e.after,
                status: e.status,
                detail: e.detail,
                at,
                settles_at: (e.status == WriteStatus::Applied && e.routes)
                    .then(|| at.checked_add(settles).ok())
                    .flatten(),
            })
            .collect();
        if records.is_empty() {
            return;
        }
        let mine = {
            let mut pending = self.pending();
            pending.handed += records.len() as u64;
            pending.records.extend(records);
            pending.handed
        };
        let _turn = self.journal_turn.lock().await;
        let (batch, through) = {
            let mut pending = self.pending();
            if pending.committed < pending.claimed {
                // The turn before this one was dropped mid-call: the records it took may not
                // be in the journal, so no further write may go out.
                pending.committed = pending.claimed;
                drop(pending);
                self.stop(StopReason::Journal(
                    "a journal call was abandoned before it finished".into(),
                ));
                pending = self.pending();
            }
            if pending.committed >= mine {
                // Taken by a turn before this one: committed, or the run stopped.
                return;
            }
            pending.claimed = pending.handed;
            (std::mem::take(&mut pending.records), pending.handed)
        };
        let result = j.journal.record_writes(&batch).await;
        self.pending().committed = through;
        if let Err(error) = result {
            tracing::error!(%error, "cannot journal writes");
            self.stop(StopReason::Journal(explain(&error)));
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().expect("not poisoned")
    }

    fn user_entry(
        write: &UserWrite,
        before: Snapshot,
        after: Snapshot,
        status: WriteStatus,
        detail: Option<String>,
    ) -> Entry {
        Entry {
            target: if write.skills.is_some() {
                WriteTarget::UserSkills
            } else {
                WriteTarget::UserProficiencies
            },
            subject: write.user_id.to_string(),
            before,
            after,
            status,
            detail,
            // Only skills route, so only they have anything to settle.
            routes: write.skills.is_some(),
        }
    }

    fn sent(&self, users: usize) {
        let mut state = self.state();
        state.attempted += users;
        state.last_write = Some(jiff::Timestamp::now());
    }

    /// Writes the planned first attempts (in bulk where `bulk`), then re-reads and rewrites
    /// every user whose outcome is not settled, bounded per user.
    pub(crate) async fn write(
        &self,
        jobs: Vec<Job>,
        bulk: bool,
        rewrite: &dyn Rewrite,
        progress: &(dyn Fn(usize, usize) + Sync),
        reread_progress: &(dyn Fn(usize, usize) + Sync),
    ) {
        let total = jobs.len();
        let reread: Vec<UserId> =
            if let Some(per_call) = self.api.capabilities().per_definition_writes {
                self.send_per_definition(jobs, per_call, progress).await
            } else if bulk && self.api.capabilities().max_bulk_entries.is_some() {
                let most = self.api.capabilities().max_bulk_entries.unwrap_or(1);
                let size = self.options.bulk_batch_size.clamp(1, most);
                let mut batches: Vec<Vec<Job>> = Vec::new();
                for job in jobs {
                    match batches.last_mut() {
                        Some(batch) if batch.len() < size => batch.push(job),
                        _ => batches.push(vec![job]),
                    }
                }
                fan_out(
                    batches,
                    self.options.concurrency,
                    Vec::len,
                    |done| progress(done, total),
                    |batch| self.send_batch(batch),
                )
                .await
                .into_iter()
                .flatten()
                .collect()
            } else {
                fan_out(
                    jobs,
                    self.options.concurrency,
                    |_| 1,
                    |done| progress(done, total),
                    |job| async move {
                        if let Some(why) = self.should_stop().await {
                            self.settle(&job.write.user_id, UserOutcome::NotAttempted(why));
                            return None;
                        }
                        self.sent(1);
                        match self.send_one(&job.write, job.before).await {
                            Next::Done => None,
                            Next::Reread => Some(job.write.user_id),
                        }
                    },
                )
                .await
                .into_iter()
                .flatten()
                .collect()
            };
        if !reread.is_empty() {
            self.reconcile(reread, rewrite, reread_progress).await;
        }
    }

    /// Reads each user, asks `rewrite` what to send, and writes it, re-reading on conflicts
    /// and unknown outcomes (bounded); also the first pass of a user nobody planned from a
    /// read (`assign`).
    pub(crate) async fn reconcile(
        &self,
        users: Vec<UserId>,
        rewrite: &dyn Rewrite,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) {
        let total = users.len();
        let mut read = self.read_shared_pages(&users).await;
        let users: Vec<(UserId, Option<UserAssignments>)> = users
            .into_iter()
            .map(|user| {
                let first = read.remove(&user);
                (user, first)
            })
            .collect();
        fan_out(
            users,
            self.options.concurrency,
            |_| 1,
            |done| progress(done, total),
            |(user, first)| async move { self.reconcile_one(&user, first, rewrite).await },
        )
        .await;
    }

    /// `first` is the user as just read with its page, if it was.
    async fn reconcile_one(
        &self,
        user: &UserId,
        mut first: Option<UserAssignments>,
        rewrite: &dyn Rewrite,
    ) {
        let mut last_error = String::from("the user kept changing under us");
        for _ in 0..self.options.conflict_retries.max(1) {
            let stopped = self.should_stop().await;
            let in_doubt = self.state().in_doubt.contains_key(user);
            if let Some(why) = &stopped
                && !in_doubt
            {
                if !self.state().outcomes.contains_key(user) {
                    self.settle(user, UserOutcome::NotAttempted(why.clone()));
                }
                return;
            }
            // Read, also after the run stopped when a write of this run is in doubt: a read
            // is safe, and only it tells whether that write landed.
            let read = match first.take() {
                Some(read) => Ok(read),
                None => self.api.user(user).await,
            };
            let live = match read {
                Ok(live) => live,
                Err(error) => match classify(&error) {
                    Policy::Reread | Policy::Confirm => {
                        last_error = explain(&error);
                        continue;
                    }
                    Policy::FailUser | Policy::StopRun => {
                        self.fail_on(user, &error);
                        return;
                    }
                },
            };
            match rewrite.rewrite(&live) {
                Rewritten::Current => {
                    let doubted = self.state().in_doubt.remove(user);
                    match doubted {
                        // This run's write did land (or someone else made the same change):
                        // journal the confirmation so the journal accounts for the change.
                        Some(doubted) => {
                            let detail = if doubted.lost {
                                "its answer was lost; a re-read shows it in place"
                            } else {
                                "refused as stale (412), and a re-read shows it in place: this run's earlier attempt landed, or someone made the same change"
                            };
                            self.record(vec![Self::user_entry(
                                &doubted.write,
                                doubted.before,
                                entries::user_written(&doubted.write),
                                WriteStatus::Applied,
                                Some(detail.into()),
                            )])
                            .await;
                            self.landed(&doubted.write);
                        }
                        None => self.settle(user, UserOutcome::AlreadyCurrent),
                    }
                    return;
                }
                Rewritten::Refused(why) => {
                    self.settle(user, UserOutcome::failed(FailureKind::Refused, why));
                    return;
                }
                Rewritten::Write(_) if stopped.is_some() => {
                    let why = stopped.unwrap_or(StopReason::Interrupted);
                    let lost = self.state().in_doubt.get(user).is_some_and(|d| d.lost);
                    let outcome = if lost {
                        UserOutcome::failed(
                            FailureKind::Unresolved,
                            format!(
                                "its write did not land, and the run stopped before writing it again: {why}"
                            ),
                        )
                    } else {
                        UserOutcome::NotAttempted(why)
                    };
                    self.settle(user, outcome);
                    return;
                }
                Rewritten::Write(write) => {
                    self.sent(0);
                    match self.send_one(&write, entries::user_read(&live)).await {
                        Next::Done => return,
                        Next::Reread => last_error = self.last_reason(user),
                    }
                }
            }
        }
        self.settle(
            user,
            UserOutcome::failed(FailureKind::Unresolved, last_error),
        );
    }

    fn last_reason(&self, user: &UserId) -> String {
        if self.state().in_doubt.get(user).is_some_and(|d| d.lost) {
            "the outcome of its writes stayed unknown".into()
        } else {
            "the user kept changing under us".into()
        }
    }

    /// The user failed on `error`; an error every later write would meet stops the run too.
    fn fail_on(&self, user: &UserId, error: &Error) {
        let kind = match (classify(error), error) {
            (Policy::StopRun, _) => {
                self.stop(StopReason::Tenant(explain(error)));
                FailureKind::Refused
            }
            (_, Error::NotFound { .. }) => FailureKind::Gone,
            _ => FailureKind::Refused,
        };
        self.settle(user, UserOutcome::failed(kind, explain(error)));
    }

    /// One merge update with `If-Match`.
    async fn send_one(&self, write: &UserWrite, before: Snapshot) -> Next {
        let result = self.api.write_user(write).await;
        let after = entries::user_written(write);
        let (next, status, detail) = match result {
            Ok(_) => {
                self.landed(write);
                (Next::Done, WriteStatus::Applied, None)
            }
            Err(error) => self.on_error(write, &before, &error),
        };
        self.record(vec![Self::user_entry(write, before, after, status, detail)])
            .await;
        next
    }

    /// What an error on a write of `write` means, as decided by [`classify`].
    fn on_error(
        &self,
        write: &UserWrite,
        before: &Snapshot,
        error: &Error,
    ) -> (Next, WriteStatus, Option<String>) {
        let user = &write.user_id;
        match classify(error) {
            Policy::Reread => {
                self.state().conflicts += 1;
                // A 412 may answer the client's retry of a write that landed.
                self.doubt(write, before, false);
                (
                    Next::Reread,
                    WriteStatus::Conflict,
                    Some("stale version: re-read and re-merged".into()),
                )
            }
            Policy::Confirm => {
                self.doubt(write, before, true);
                (Next::Reread, WriteStatus::Unknown, Some(explain(error)))
            }
            Policy::FailUser | Policy::StopRun => {
                self.fail_on(user, error);
                (Next::Done, WriteStatus::Failed, Some(explain(error)))
            }
        }
    }

    /// One bulk request; returns the users to re-read.
    async fn send_batch(&self, batch: Vec<Job>) -> Vec<UserId> {
        if let Some(why) = self.should_stop().await {
            for job in &batch {
                self.settle(&job.write.user_id, UserOutcome::NotAttempted(why.clone()));
            }
            return Vec::new();
        }
        self.sent(batch.len());
        let writes: Vec<UserWrite> = batch.iter().map(|j| j.write.clone()).collect();
        let result = self.api.write_users(&writes).await;
        let mut reread = Vec::new();
        let mut journal = Vec::with_capacity(batch.len());
        match result {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let write = &job.write;
                    let (next, status, detail) = match outcome {
                        EntryOutcome::Applied(_) => {
                            self.landed(write);
                            (Next::Done, WriteStatus::Applied, None)
                        }
                        EntryOutcome::Conflict => self.on_error(
                            write,
                            &job.before,
                            &Error::Conflict {
                                what: "user",
                                id: write.user_id.to_string(),
                                expected: Some(write.version),
                            },
                        ),
                        EntryOutcome::NotFound => self.on_error(
                            write,
                            &job.before,
                            &Error::NotFound {
                                what: "user",
                                id: write.user_id.to_string(),
                            },
                        ),
                        EntryOutcome::Rejected(why) => {
                            self.settle(
                                &write.user_id,
                                UserOutcome::failed(FailureKind::Refused, why.clone()),
                            );
                            (Next::Done, WriteStatus::Failed, Some(why))
                        }
                    };
                    if matches!(next, Next::Reread) {
                        reread.push(write.user_id.clone());
                    }
                    let after = entries::user_written(write);
                    journal.push(Self::user_entry(write, job.before, after, status, detail));
                }
            }
            Err(error) => {
                for job in batch {
                    let (next, status, detail) = self.on_error(&job.write, &job.before, &error);
                    if matches!(next, Next::Reread) {
                        reread.push(job.write.user_id.clone());
                    }
                    let after = entries::user_written(&job.write);
                    journal.push(Self::user_entry(
                        &job.write, job.before, after, status, detail,
                    ));
                }
            }
        }
        self.record(journal).await;
        reread
    }

    /// The users that failed for a reason that still holds them to what is being removed
    /// (a gone user holds nothing), with the reason.
    pub(crate) fn blocking_failures(&self) -> Vec<(UserId, String)> {
        let mut failed: Vec<(UserId, String)> = self
            .state()
            .outcomes
            .iter()
            .filter_map(|(u, o)| match o {
                UserOutcome::Failed { kind, reason } if *kind != FailureKind::Gone => {
                    Some((u.clone(), reason.clone()))
                }
                _ => None,
            })
            .collect();
        failed.sort();
        failed
    }

    /// The users whose last write the tenant accepted, with that write.
    pub(crate) fn accepted(&self) -> Vec<(UserId, UserWrite)> {
        let state = self.state();
        state
            .accepted
            .iter()
            .filter(|(u, _)| matches!(state.outcomes.get(*u), Some(UserOutcome::Updated)))
            .map(|(u, w)| (u.clone(), w.clone()))
            .collect()
    }

    /// After the read-back: the tenant does not hold what `write` sent (it holds `found`, or
    /// the user could not be read).
    pub(crate) async fn not_kept(
        &self,
        write: &UserWrite,
        found: Option<&UserAssignments>,
        kind: FailureKind,
        why: String,
    ) {
        // Not kept is a failure of the write (verify takes back what it granted); a user
        // who could not be read is unknown, as the write's fate is.
        let status = if kind == FailureKind::Unconfirmed {
            WriteStatus::Unknown
        } else {
            WriteStatus::Failed
        };
        self.record(vec![Self::user_entry(
            write,
            entries::user_written(write),
            found.map_or(Snapshot::Absent, entries::user_read),
            status,
            Some(format!("read-back: {why}")),
        )])
        .await;
        self.settle(&write.user_id, UserOutcome::failed(kind, why));
    }

    /// Every user in `planned` ends in exactly one outcome: those the run never reached are
    /// not attempted, with why.
    pub(crate) fn finish(self, planned: impl IntoIterator<Item = UserId>) -> Written {
        let stopped = self.stopped();
        let state = self.state.into_inner().expect("not poisoned");
        let mut users = BTreeMap::new();
        let mut outcomes = state.outcomes;
        for user in planned {
            let outcome = match outcomes.remove(&user) {
                Some(outcome) => outcome,
                None if state.in_doubt.contains_key(&user) => UserOutcome::failed(
                    FailureKind::Unresolved,
                    "its write's outcome is unknown and was not re-read",
                ),
                None => UserOutcome::NotAttempted(
                    stopped
                        .clone()
                        .unwrap_or(StopReason::Tenant("not reached".into())),
                ),
            };
            users.insert(user, outcome);
        }
        Written {
            users,
            conflicts: state.conflicts,
            stopped,
            last_write_at: state.last_write,
        }
    }
}

/// One journal record before it is stamped.
pub(crate) struct Entry {
    pub target: WriteTarget,
    pub subject: String,
    pub before: Snapshot,
    pub after: Snapshot,
    pub status: WriteStatus,
    pub detail: Option<String>,
    /// Whether routing sees it (so it has a settle time once applied).
    pub routes: bool,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use jiff::Timestamp;
    use skillsync_store::intercept::{Hook, Intercepted, JournalCall};
    use skillsync_store::{Journal, NewRun, SqliteStore, StoreError};

    use super::*;

    /// Makes a journal's first `record_writes` never return.
    struct StuckOnce {
        calls: AtomicUsize,
    }

    impl Hook for StuckOnce {
        async fn around<'a, T: Send + 'a>(
            &'a self,
            method: JournalCall,
            call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
        ) -> Result<T, StoreError> {
            if matches!(method, JournalCall::RecordWrites { .. })
                && self.calls.fetch_add(1, Ordering::SeqCst) == 0
            {
                std::future::pending::<()>().await;
            }
            call.await
        }
    }

    fn entry(user: &str) -> Entry {
        Entry {
            target: WriteTarget::UserSkills,
            subject: user.into(),
            before: Snapshot::Absent,
            after: Snapshot::Absent,
            status: WriteStatus::Applied,
            detail: None,
            routes: true,
        }
    }

    /// The records a turn at the journal took are lost if that turn is dropped mid-call: the
    /// next turn stops the run rather than count them as committed, and still journals what
    /// was handed over after.
    #[tokio::test]
    async fn records_taken_by_an_abandoned_turn_stop_the_run() {
        let journal = Intercepted::new(
            SqliteStore::in_memory().unwrap(),
            StuckOnce {
                calls: AtomicUsize::new(0),
            },
        );
        let run = journal
            .start_run(&NewRun {
                command: "apply".into(),
                config_hash: "h".into(),
                started_at: Timestamp::now(),
                dialect: "routing".into(),
            })
            .await
            .unwrap();
        // Never called: recording needs no tenant.
        let api = skillsync_cxone::connect(&skillsync_cxone::Settings::new(
            "http://127.0.0.1:9/api/v2",
            "http://127.0.0.1:9/api/v2/oauth/token",
            "client",
            skillsync_cxone::Secret::new("secret"),
        ))
        .unwrap();
        let writer = Writer::new(
            api.as_ref(),
            Some(JournalRun {
                journal: &journal,
                run,
            }),
            WriteOptions::default(),
            None,
            None,
        );
        let abandoned =
            tokio::time::timeout(Duration::from_millis(50), writer.record(vec![entry("u1")])).await;
        assert!(abandoned.is_err(), "the first call never returns");
        assert_eq!(writer.stopped(), None, "nothing is known to be lost yet");
        writer.record(vec![entry("u2")]).await;
        assert!(
            matches!(writer.stopped(), Some(StopReason::Journal(why)) if why.contains("abandoned")),
            "{:?}",
            writer.stopped()
        );
        let journaled: Vec<String> = journal
            .writes(run)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.subject)
            .collect();
        assert_eq!(journaled, ["u2"], "what came after is still journaled");
    }
}
