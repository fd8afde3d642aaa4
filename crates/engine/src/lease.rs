//! One writer per tenant. Every writing command takes the tenant's lease before it reads the
//! tenant (refusing at once, or waiting up to `wait`), renews it while it writes, and gives it
//! up when its run ends. A holder that cannot renew (someone took it over: a higher fencing
//! number) stops scheduling writes. A request already sent when the lease is lost still
//! completes and is journaled: fencing here stops new writes, it cannot recall one in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use skillsync_store::{Acquired, Journal, Lease, LeaseHolder, NewRun, RunId};

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

/// How often the holder renews: a takeover (possible only once the lease lapsed, e.g. the
/// store was unreachable for longer than it lasts) is noticed within this.
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// A lease this process holds. Renewed by [`renewing`] beside the work, not by the work
/// itself: one request may wait on its retries longer than the lease lasts, and a lease must
/// not lapse because a write is slow.
pub(crate) struct HeldLease<'a> {
    journal: &'a dyn Journal,
    ttl: Duration,
    interrupt: Option<&'a crate::Interrupt>,
    state: Mutex<LeaseState>,
    /// One renewal at a time: two that both found it lapsed would both try to take it back,
    /// and the second would find it held (by us) and give up.
    renewal: tokio::sync::Mutex<()>,
}

struct LeaseState {
    lease: Lease,
    /// Until when it is surely ours, by this process's clock: the last renewal's request time
    /// plus the lease's length, so a store whose clock differs cannot make it look longer.
    ours_until: Instant,
    /// Someone else took it: nothing more is written under it.
    lost: bool,
    /// The run writing under it, once started: its fencing number follows the lease's.
    run: Option<RunId>,
}

impl HeldLease<'_> {
    /// Whether writes may still be scheduled under the lease. Called before every write; asks
    /// nothing of the store (the renewal beside the work does).
    pub(crate) fn keep(&self) -> bool {
        let state = self.state.lock().expect("not poisoned");
        !state.lost && Instant::now() < state.ours_until
    }

    /// [`keep`](Self::keep), and when the lease lapsed unnoticed (the process was paused, or
    /// busy for longer than it lasts), one renewal: taken back if nobody took it meanwhile.
    pub(crate) async fn keep_or_take_back(&self) -> bool {
        self.keep() || self.renew().await
    }

    fn lease(&self) -> Lease {
        self.state.lock().expect("not poisoned").lease.clone()
    }

    /// Renews the lease now; false once it is lost.
    async fn renew(&self) -> bool {
        let _one_at_a_time = self.renewal.lock().await;
        let (lease, lost) = {
            let state = self.state.lock().expect("not poisoned");
            (state.lease.clone(), state.lost)
        };
        if lost {
            return false;
        }
        let sent = Instant::now();
        match self.journal.renew_lease(&lease, self.ttl).await {
            Ok(Some(expires_at)) => {
                let mut state = self.state.lock().expect("not poisoned");
                if state.lease.fence == lease.fence {
                    state.lease.expires_at = expires_at;
                    state.ours_until = sent + self.ttl;
                }
                true
            }
            Ok(None) => self.take_back(lease, sent).await,
            // The store hiccuped: ours until it lapses, and the next renewal tries again.
            Err(error) => {
                tracing::warn!(error = %crate::explain(&error), "cannot renew the tenant's lease");
                self.keep()
            }
        }
    }

    /// The lease lapsed between two renewals (a prompt left open, a store out of reach). If
    /// nobody took it meanwhile, it is taken again with the very next fencing number, which
    /// proves that no one else wrote in between; the run's fencing number follows. Anything
    /// else: lost for good.
    async fn take_back(&self, lease: Lease, sent: Instant) -> bool {
        let again = self
            .journal
            .acquire_lease(&lease.key, &lease.holder, self.ttl)
            .await;
        let next = match again {
            Ok(Acquired::Held(next)) if next.fence == lease.fence + 1 => next,
            // Someone held it in between: whatever we planned may be stale.
            Ok(Acquired::Held(other)) => {
                // Ours now, but not continuously: give it back rather than write under it.
                let _ = self.journal.release_lease(&other).await;
                return self.lose();
            }
            Ok(Acquired::Busy(_)) => return self.lose(),
            Err(error) => {
                tracing::warn!(error = %crate::explain(&error), "cannot take the tenant's lease back");
                return self.keep();
            }
        };
        // Recorded before anything else is awaited: whatever happens next, the lease given up
        // at the end (or on Ctrl-C) is the one the journal holds.
        let run = {
            let mut state = self.state.lock().expect("not poisoned");
            state.lease = next.clone();
            state.run
        };
        if let Some(interrupt) = self.interrupt {
            interrupt.hold(next.clone());
        }
        if let Some(run) = run
            && let Err(error) = self.journal.fence_run(run, &next).await
        {
            tracing::warn!(error = %crate::explain(&error), "cannot move the run to its renewed lease");
            let _ = self.journal.release_lease(&next).await;
            return self.lose();
        }
        self.state.lock().expect("not poisoned").ours_until = sent + self.ttl;
        true
    }

    fn lose(&self) -> bool {
        self.state.lock().expect("not poisoned").lost = true;
        false
    }

    /// Renews the lease for as long as it is polled; never completes.
    async fn heartbeat(&self) -> std::convert::Infallible {
        let every = RENEW_EVERY.min(self.ttl / 4);
        loop {
            tokio::time::sleep(every).await;
            // A renewal that failed because the store is out of reach is tried again next
            // time; only a lease someone else took ends the renewals.
            if !self.renew().await && self.state.lock().expect("not poisoned").lost {
                // The work sees it at its next write and stops scheduling.
                return std::future::pending().await;
            }
        }
    }
}

/// Takes the tenant's lease when the label asks for one, runs `work` under it (renewed beside
/// it), and gives it up when `work` ends, however it ends.
pub(crate) async fn holding<'a, T>(
    journal: &'a dyn Journal,
    label: &RunLabel,
    interrupt: Option<&'a crate::Interrupt>,
    work: impl AsyncFnOnce(Option<&HeldLease<'a>>) -> Result<T, Error>,
) -> Result<T, Error> {
    let lease = take(journal, label, interrupt).await?;
    let result = renewing(lease.as_ref(), work(lease.as_ref())).await;
    release(lease).await;
    result
}

/// Runs `work` with the lease (if any) renewed beside it.
async fn renewing<F: Future>(held: Option<&HeldLease<'_>>, work: F) -> F::Output {
    let Some(held) = held else {
        return work.await;
    };
    tokio::select! {
        biased;
        out = work => out,
        never = held.heartbeat() => match never {},
    }
}

/// Gives the lease up as soon as it is no longer needed; a killed process's lease expires on
/// its own.
async fn release(held: Option<HeldLease<'_>>) {
    let Some(held) = held else { return };
    let lease = held.lease();
    if let Err(error) = held.journal.release_lease(&lease).await {
        tracing::warn!(error = %crate::explain(&error), "cannot release the tenant's lease");
    }
}

/// Takes the lease, waiting up to `options.wait` for a holder to finish or expire.
async fn acquire<'a>(
    journal: &'a dyn Journal,
    options: &LeaseOptions,
    interrupt: Option<&'a crate::Interrupt>,
) -> Result<HeldLease<'a>, Error> {
    let deadline = options.wait.map(|wait| Instant::now() + wait);
    loop {
        let sent = Instant::now();
        let acquired = journal
            .acquire_lease(&options.key, &options.holder, options.ttl)
            .await
            .map_err(Error::Journal)?;
        match acquired {
            Acquired::Held(lease) => {
                return Ok(HeldLease {
                    journal,
                    ttl: options.ttl,
                    interrupt,
                    renewal: tokio::sync::Mutex::new(()),
                    state: Mutex::new(LeaseState {
                        lease,
                        ours_until: sent + options.ttl,
                        lost: false,
                        run: None,
                    }),
                });
            }
            Acquired::Busy(held) => {
                let left = deadline
                    .map(|at| at.saturating_duration_since(Instant::now()))
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

/// Takes the tenant's lease when the label asks for one. Taken before the tenant is read, so
/// the plan is made from a tenant nobody else is writing to. Run the work under it with
/// [`renewing`] and give it up with [`release`].
async fn take<'a>(
    journal: &'a dyn Journal,
    label: &RunLabel,
    interrupt: Option<&'a crate::Interrupt>,
) -> Result<Option<HeldLease<'a>>, Error> {
    let Some(options) = &label.lease else {
        return Ok(None);
    };
    let held = acquire(journal, options, interrupt).await?;
    if let Some(interrupt) = interrupt {
        interrupt.hold(held.lease());
    }
    Ok(Some(held))
}

/// Claims the right to write before the run starts: when a signal has already claimed the
/// process's exit (it is giving the lease up and ending), nothing more happens here.
pub(crate) async fn start_writing(interrupt: Option<&crate::Interrupt>) {
    if let Some(interrupt) = interrupt
        && !interrupt.start_writing()
    {
        std::future::pending::<()>().await;
    }
}

/// Checks, before the first write, that the lease is still ours. A lease held since before
/// the tenant was read that lapsed meanwhile (a person left the prompt open longer than it
/// lasts) is taken back if nobody else took it; if someone did, it is not ours to write under:
/// nothing is written, as the plan may be stale.
pub(crate) async fn still_ours(lease: Option<&HeldLease<'_>>) -> Result<(), Error> {
    match lease {
        Some(held) if !held.keep_or_take_back().await => Err(Error::LeaseExpired),
        _ => Ok(()),
    }
}

/// Starts the run and records the lease it writes under (taken back first if it lapsed, or
/// refused as [`still_ours`] says).
pub(crate) async fn begin_run(
    journal: &dyn Journal,
    label: &RunLabel,
    lease: Option<&HeldLease<'_>>,
) -> Result<RunId, Error> {
    still_ours(lease).await?;
    let run = journal
        .start_run(&NewRun {
            command: label.command.clone(),
            config_hash: label.config_hash.clone(),
            started_at: Timestamp::now(),
            dialect: label.dialect.clone(),
        })
        .await
        .map_err(Error::Journal)?;
    if let Some(held) = lease {
        // No take-back in between: the run is fenced with the lease it then writes under.
        let _one_at_a_time = held.renewal.lock().await;
        let current = held.lease();
        journal
            .fence_run(run, &current)
            .await
            .map_err(Error::Journal)?;
        held.state.lock().expect("not poisoned").run = Some(run);
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use skillsync_store::intercept::{Hook, Intercepted, JournalCall};
    use skillsync_store::{SqliteStore, StoreError};

    use super::*;

    /// Leases cannot be renewed or taken while `down` is set, as when the database is out of
    /// reach.
    struct Outage {
        down: AtomicBool,
    }

    impl Hook for Outage {
        async fn around<'a, T: Send + 'a>(
            &'a self,
            method: JournalCall,
            call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
        ) -> Result<T, StoreError> {
            let leasing = matches!(method, JournalCall::AcquireLease | JournalCall::RenewLease);
            if leasing && self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unsupported {
                    url: "test".into(),
                    reason: "the store is out of reach".into(),
                });
            }
            call.await
        }
    }

    fn holder(host: &str) -> LeaseHolder {
        LeaseHolder {
            host: host.into(),
            pid: 1,
            command: "apply".into(),
        }
    }

    /// The store is out of reach for longer than the lease lasts while the work runs; once it
    /// is back, the renewals beside the work take the lease back and keep it, so another host
    /// waiting for it never gets it while the holder works.
    #[tokio::test]
    async fn renewals_resume_after_an_outage_longer_than_the_lease() {
        let journal = Intercepted::new(
            SqliteStore::in_memory().unwrap(),
            Outage {
                down: AtomicBool::new(false),
            },
        );
        let ttl = Duration::from_millis(400);
        let label = RunLabel {
            command: "apply".into(),
            config_hash: "h".into(),
            dialect: "routing".into(),
            lease: Some(LeaseOptions {
                key: "tenant".into(),
                holder: holder("this host"),
                ttl,
                wait: None,
            }),
        };
        let other = holding(&journal, &label, None, async |held| {
            journal.hook.down.store(true, Ordering::SeqCst);
            // Longer than the lease: it lapses in the store, and renewals fail meanwhile.
            tokio::time::sleep(Duration::from_millis(700)).await;
            journal.hook.down.store(false, Ordering::SeqCst);
            // Several lease lengths with the store back: renewals must have resumed.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let other = journal
                .acquire_lease("tenant", &holder("other host"), Duration::from_secs(60))
                .await
                .unwrap();
            Ok((other, held.expect("the label asks for a lease").keep()))
        })
        .await
        .unwrap();
        assert!(
            matches!(other.0, Acquired::Busy(_)),
            "another host took the running holder's lease: {other:?}"
        );
        assert!(other.1, "the holder may still write");
    }
}
