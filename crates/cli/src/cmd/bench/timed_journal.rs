//! A journal that counts what it costs: the CPU time spent inside its calls, so `bench sync`
//! can say what share of a sync the journal takes.

use std::time::Duration;

use jiff::Timestamp;
use skillsync_store::{
    Acquired, Journal, Lease, LeaseHolder, Mapping, NewRun, Retirement, RunCounts, RunId,
    RunOutcome, RunSummary, StoreError, WriteRecord, WriteTarget,
};

/// User and system CPU time of the calling thread. A SQLite journal call runs on one thread
/// from start to end (nothing in it awaits), so the difference across a call is its cost; a
/// PostgreSQL call may move threads and is measured on the thread it ends on. The kernel
/// splits a thread's time between the two by sampling, so the split is meaningful over many
/// calls, not one.
fn thread_cpu() -> CpuTime {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the rusage it is given, which is zeroed beforehand.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init()
    };
    CpuTime {
        user: timeval(usage.ru_utime),
        system: timeval(usage.ru_stime),
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64)
}

/// CPU time split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// In the process's own code (SQLite and serialization for the journal).
    pub user: Duration,
    /// In the kernel on the process's behalf (writing and reading the files, page faults).
    pub system: Duration,
}

impl CpuTime {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// What one kind of journal call cost in all.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallCost {
    pub cpu: CpuTime,
    pub calls: u64,
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

/// Wraps a journal and adds up the CPU time of its calls, per method.
pub struct TimedJournal {
    inner: Box<dyn Journal>,
    costs: parking_lot::Mutex<std::collections::BTreeMap<&'static str, CallCost>>,
}

impl TimedJournal {
    pub fn new(inner: Box<dyn Journal>) -> Self {
        TimedJournal {
            inner,
            costs: parking_lot::Mutex::default(),
        }
    }

    /// CPU time inside the journal's calls so far, and how many calls.
    pub fn spent(&self) -> (CpuTime, u64) {
        self.costs
            .lock()
            .values()
            .fold((CpuTime::default(), 0), |(cpu, calls), cost| {
                (
                    CpuTime {
                        user: cpu.user + cost.cpu.user,
                        system: cpu.system + cost.cpu.system,
                    },
                    calls + cost.calls,
                )
            })
    }

    /// What each kind of call cost, the costliest first.
    pub fn by_method(&self) -> Vec<(&'static str, CallCost)> {
        let mut costs: Vec<_> = self.costs.lock().iter().map(|(m, c)| (*m, *c)).collect();
        costs.sort_by_key(|(_, cost)| std::cmp::Reverse(cost.cpu.total()));
        costs
    }

    async fn timed<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let start = thread_cpu();
        let out = call.await;
        let spent = thread_cpu().since(start);
        let mut costs = self.costs.lock();
        let cost = costs.entry(method).or_default();
        cost.cpu.user += spent.user;
        cost.cpu.system += spent.system;
        cost.calls += 1;
        out
    }
}

#[async_trait::async_trait]
impl Journal for TimedJournal {
    async fn start_run(&self, run: &NewRun) -> Result<RunId, StoreError> {
        self.timed("start_run", self.inner.start_run(run)).await
    }

    async fn record_writes(&self, writes: &[WriteRecord]) -> Result<(), StoreError> {
        self.timed("record_writes", self.inner.record_writes(writes))
            .await
    }

    async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
        counts: &RunCounts,
        ended_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.timed(
            "finish_run",
            self.inner.finish_run(run, outcome, counts, ended_at),
        )
        .await
    }

    async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        self.timed("runs", self.inner.runs(limit)).await
    }

    async fn run(&self, id: RunId) -> Result<Option<RunSummary>, StoreError> {
        self.timed("run", self.inner.run(id)).await
    }

    async fn writes(&self, run: RunId) -> Result<Vec<WriteRecord>, StoreError> {
        self.timed("writes", self.inner.writes(run)).await
    }

    async fn last_write(
        &self,
        subject: &str,
        target: WriteTarget,
    ) -> Result<Option<WriteRecord>, StoreError> {
        self.timed("last_write", self.inner.last_write(subject, target))
            .await
    }

    async fn last_writes(
        &self,
        subjects: &[&str],
        target: WriteTarget,
    ) -> Result<Vec<WriteRecord>, StoreError> {
        self.timed("last_writes", self.inner.last_writes(subjects, target))
            .await
    }

    async fn settles_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        self.timed("settles_at", self.inner.settles_at(run)).await
    }

    async fn remember_mappings(&self, mappings: &[Mapping]) -> Result<(), StoreError> {
        self.timed("remember_mappings", self.inner.remember_mappings(mappings))
            .await
    }

    async fn mappings(&self) -> Result<Vec<Mapping>, StoreError> {
        self.timed("mappings", self.inner.mappings()).await
    }

    async fn record_retirement(&self, retirement: &Retirement) -> Result<(), StoreError> {
        self.timed(
            "record_retirement",
            self.inner.record_retirement(retirement),
        )
        .await
    }

    async fn retirements(&self) -> Result<Vec<Retirement>, StoreError> {
        self.timed("retirements", self.inner.retirements()).await
    }

    async fn forget_retirement(&self, code: &str, locale: &str) -> Result<bool, StoreError> {
        self.timed(
            "forget_retirement",
            self.inner.forget_retirement(code, locale),
        )
        .await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        ttl: Duration,
    ) -> Result<Acquired, StoreError> {
        self.timed("acquire_lease", self.inner.acquire_lease(key, holder, ttl))
            .await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.timed("renew_lease", self.inner.renew_lease(lease, ttl))
            .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.timed("release_lease", self.inner.release_lease(lease))
            .await
    }

    async fn fence_run(&self, run: RunId, lease: &Lease) -> Result<(), StoreError> {
        self.timed("fence_run", self.inner.fence_run(run, lease))
            .await
    }
}
