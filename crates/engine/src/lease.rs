//! One writer per tenant. Every writing command takes the tenant's lease before it reads the
//! tenant (refusing at once, or waiting up to `wait`), renews it while it writes, and gives it
//! up when its run ends. A holder that cannot renew (someone took it over: a higher fencing
//! number) stops scheduling writes. A request already sent when the lease is lost still
//! completes and is journaled: fencing here stops new writes, it cannot recall one in flight.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use skillsync_store::{
    Acquired, Journal, Lease, LeaseHolder, NewRun, RunCounts, RunId, RunOutcome,
};

use crate::{Error, RunLabel};

/// How a writing command takes the tenant's lease.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// What it guards: the tenant's API base and client id.
    pub key: String,
    /// Who asks (host, pid, command), for whoever meets the lease held.
    pub holder: LeaseHolder,
    /// How long it lasts unless renewed: a crashed holder's lease is free after this.
    pub ttl: Duration,
    /// How long to wait for a held lease; `None` refuses at once.
    pub wait: Option<Duration>,
}

/// How often a holder asks the journal whether its lease is still its own.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// A lease this process holds.
pub(crate) struct HeldLease<'a> {
    journal: &'a dyn Journal,
    lease: Mutex<Lease>,
    ttl: Duration,
    /// When the journal last confirmed the lease is ours.
    checked: Mutex<std::time::Instant>,
    /// The run writing under it, once started: its fencing number follows the lease's.
    run: Mutex<Option<RunId>>,
}

impl HeldLease<'_> {
    /// Whether the lease is still ours: renewed in the journal at most once a second (and
    /// whenever less than half of it is left), so a takeover is noticed within about a second
    /// of scheduling. Called before every write is scheduled.
    pub(crate) fn keep(&self) -> bool {
        let mut lease = self.lease.lock().expect("not poisoned");
        let now = Timestamp::now();
        let half = jiff::SignedDuration::try_from(self.ttl / 2).unwrap_or_default();
        let mut checked = self.checked.lock().expect("not poisoned");
        if lease.expires_at.duration_since(now) > half
            && checked.elapsed() < RECHECK_EVERY.min(self.ttl / 4)
        {
            return true;
        }
        *checked = std::time::Instant::now();
        match self.journal.renew_lease(&lease, self.ttl, now) {
            Ok(Some(expires_at)) => {
                lease.expires_at = expires_at;
                true
            }
            Ok(None) => self.take_back(&mut lease, now),
            // The journal hiccuped: ours until it expires, then not.
            Err(error) => {
                tracing::warn!(error = %crate::explain(&error), "cannot renew the tenant's lease");
                now < lease.expires_at
            }
        }
    }

    /// The lease ran out between two renewals (a long read, a slow page). If nobody took it
    /// meanwhile, it is taken again with the very next fencing number, which proves that no
    /// one else wrote in between; the run's fencing number follows. Anything else: lost.
    fn take_back(&self, lease: &mut Lease, now: Timestamp) -> bool {
        let again = self
            .journal
            .acquire_lease(&lease.key, &lease.holder, self.ttl, now);
        match again {
            Ok(Acquired::Held(next)) if next.fence == lease.fence + 1 => {
                let run = *self.run.lock().expect("not poisoned");
                if let Some(run) = run
                    && let Err(error) = self.journal.fence_run(run, &next)
                {
                    tracing::warn!(error = %crate::explain(&error), "cannot move the run to its renewed lease");
                    return false;
                }
                *lease = next;
                true
            }
            // Someone held it in between: whatever we planned may be stale.
            Ok(Acquired::Held(_) | Acquired::Busy(_)) => false,
            Err(error) => {
                tracing::warn!(error = %crate::explain(&error), "cannot take the tenant's lease back");
                false
            }
        }
    }

    fn lease(&self) -> Lease {
        self.lease.lock().expect("not poisoned").clone()
    }
}

/// Takes the lease, waiting up to `options.wait` for a holder to finish or expire.
async fn acquire<'a>(
    journal: &'a dyn Journal,
    options: &LeaseOptions,
) -> Result<HeldLease<'a>, Error> {
    let deadline = options.wait.map(|wait| std::time::Instant::now() + wait);
    loop {
        let acquired = journal
            .acquire_lease(&options.key, &options.holder, options.ttl, Timestamp::now())
            .map_err(Error::Journal)?;
        match acquired {
            Acquired::Held(lease) => {
                return Ok(HeldLease {
                    journal,
                    lease: Mutex::new(lease),
                    ttl: options.ttl,
                    checked: Mutex::new(std::time::Instant::now()),
                    run: Mutex::new(None),
                });
            }
            Acquired::Busy(held) => {
                let left = deadline
                    .map(|at| at.saturating_duration_since(std::time::Instant::now()))
                    .unwrap_or_default();
                if left.is_zero() {
                    return Err(Error::LeaseHeld(Box::new(held)));
                }
                // Polling the journal: the holder may be another host, so nothing here can
                // be told when it lets go.
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
        }
    }
}

impl Drop for HeldLease<'_> {
    /// Given up as soon as it is no longer needed, whichever way the command ends; a killed
    /// process's lease expires on its own.
    fn drop(&mut self) {
        let lease = self.lease.get_mut().expect("not poisoned");
        if let Err(error) = self.journal.release_lease(lease, Timestamp::now()) {
            tracing::warn!(error = %crate::explain(&error), "cannot release the tenant's lease");
        }
    }
}

/// Takes the tenant's lease when the label asks for one. Taken before the tenant is read, so
/// the plan is made from a tenant nobody else is writing to.
pub(crate) async fn take<'a>(
    journal: &'a dyn Journal,
    label: &RunLabel,
    interrupt: Option<&crate::Interrupt>,
) -> Result<Option<HeldLease<'a>>, Error> {
    let Some(options) = &label.lease else {
        return Ok(None);
    };
    let held = acquire(journal, options).await?;
    if let Some(interrupt) = interrupt {
        interrupt.hold(held.lease());
    }
    Ok(Some(held))
}

/// A run started in the journal, under the tenant's lease when one is held.
pub(crate) struct Begun<'a> {
    pub run: RunId,
    pub lease: Option<HeldLease<'a>>,
}

/// Starts the run and records the lease it writes under. A lease held since before the
/// tenant was read that someone else took meanwhile (a person left the prompt open longer
/// than it lasts, and another run went ahead) is not ours to write under: the run does not
/// start, as its plan may be stale.
pub(crate) fn begin_run<'a>(
    journal: &'a dyn Journal,
    label: &RunLabel,
    lease: Option<HeldLease<'a>>,
) -> Result<Begun<'a>, Error> {
    if let Some(held) = &lease
        && !held.keep()
    {
        return Err(Error::LeaseExpired);
    }
    let run = journal
        .start_run(&NewRun {
            command: label.command.clone(),
            config_hash: label.config_hash.clone(),
            started_at: Timestamp::now(),
            dialect: label.dialect.clone(),
        })
        .and_then(|run| {
            if let Some(held) = &lease {
                journal.fence_run(run, &held.lease())?;
                *held.run.lock().expect("not poisoned") = Some(run);
            }
            Ok(run)
        })
        .map_err(Error::Journal)?;
    Ok(Begun { run, lease })
}

/// Finishes the run, then gives the lease up.
pub(crate) fn end_run(
    journal: &dyn Journal,
    begun: Begun<'_>,
    outcome: RunOutcome,
    counts: &RunCounts,
) -> Result<(), skillsync_store::StoreError> {
    let finished = journal.finish_run(begun.run, outcome, counts, Timestamp::now());
    drop(begun.lease);
    finished
}
