//! A journal that counts what it costs: the CPU time spent inside its calls, so `bench sync`
//! can say what share of a sync the journal takes.

use std::time::Duration;

use skillsync_store::intercept::{Hook, Intercepted, JournalCall};
use skillsync_store::{Journal, StoreError};

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

/// Adds up the CPU time of a journal's calls, per method (see [`timed`]).
#[derive(Default)]
pub struct Timing {
    costs: parking_lot::Mutex<std::collections::BTreeMap<&'static str, CallCost>>,
}

/// `inner` with every call timed.
pub fn timed(inner: Box<dyn Journal>) -> Intercepted<Timing> {
    Intercepted {
        inner,
        hook: Timing::default(),
    }
}

impl Timing {
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
}

impl Hook for Timing {
    async fn around<'a, T: Send + 'a>(
        &'a self,
        method: JournalCall,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> Result<T, StoreError> {
        let start = thread_cpu();
        let out = call.await;
        let spent = thread_cpu().since(start);
        let mut costs = self.costs.lock();
        let cost = costs.entry(method.name()).or_default();
        cost.cpu.user += spent.user;
        cost.cpu.system += spent.system;
        cost.calls += 1;
        out
    }
}
