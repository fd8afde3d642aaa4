//! A journal that counts what it costs: the CPU time spent inside its calls, so `bench sync`
//! can say what share of a sync the journal takes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use skillsync_store::{
    Acquired, Journal, Lease, LeaseHolder, Mapping, NewRun, Retirement, RunCounts, RunId,
    RunOutcome, RunSummary, StoreError, WriteRecord, WriteTarget,
};

/// CPU time of the calling thread, in nanoseconds. A SQLite journal call runs on one thread
/// from start to end (nothing in it awaits), so the difference across a call is its cost; a
/// PostgreSQL call may move threads and is measured on the thread it ends on.
fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0;
    if !ok {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// CPU time of the client so far: the whole process's, less the in-process simulator's threads
/// (on Linux, where /proc tells threads apart; elsewhere the simulator is included).
pub fn client_cpu() -> Duration {
    process_cpu().saturating_sub(threads_cpu(crate::local_tenant::SIM_THREAD))
}

/// CPU time of this process's live threads named `name`.
fn threads_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let named =
            std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim_end() == name);
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // After the parenthesised name: state is field 3, utime and stime fields 14 and 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        if named && fields.len() > 12 {
            ticks +=
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        }
    }
    Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_second)
}

/// CPU time of the whole process so far (every thread, those ended included).
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the rusage it is given, which is zeroed beforehand.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Wraps a journal and adds up the CPU time of its calls.
pub struct TimedJournal {
    inner: Box<dyn Journal>,
    cpu_nanos: AtomicU64,
    calls: AtomicU64,
}

impl TimedJournal {
    pub fn new(inner: Box<dyn Journal>) -> Self {
        TimedJournal {
            inner,
            cpu_nanos: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// CPU time inside the journal's calls so far, and how many calls.
    pub fn spent(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.cpu_nanos.load(Ordering::Relaxed)),
            self.calls.load(Ordering::Relaxed),
        )
    }

    async fn timed<T>(&self, call: impl Future<Output = T>) -> T {
        let start = thread_cpu_nanos();
        let out = call.await;
        let spent = thread_cpu_nanos().saturating_sub(start);
        self.cpu_nanos.fetch_add(spent, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        out
    }
}

#[async_trait::async_trait]
impl Journal for TimedJournal {
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.timed(self.inner.start_run(run)).await
    }

    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        self.timed(self.inner.record_writes(writes)).await
    }

    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.timed(self.inner.finish_run(run, outcome, counts, ended_at))
            .await
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        self.timed(self.inner.runs(limit)).await
    }

    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        self.timed(self.inner.run(id)).await
    }

    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        self.timed(self.inner.writes(run)).await
    }

    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        self.timed(self.inner.last_write(subject, target)).await
    }

    async fn last_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        self.timed(self.inner.last_writes(subjects, target)).await
    }

    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        self.timed(self.inner.settles_at(run)).await
    }

    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
        self.timed(self.inner.remember_mappings(mappings)).await
    }

    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        self.timed(self.inner.mappings()).await
    }

    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        self.timed(self.inner.record_retirement(retirement)).await
    }

    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        self.timed(self.inner.retirements()).await
    }

    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        self.timed(self.inner.forget_retirement(code, locale)).await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Acquired, StoreError> {
        self.timed(self.inner.acquire_lease(key, holder, ttl)).await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.timed(self.inner.renew_lease(lease, ttl)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.timed(self.inner.release_lease(lease)).await
    }

    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError> {
        self.timed(self.inner.fence_run(run, lease)).await
    }
}
