//! `skillsync bench`: reproducible figures for the claims the README makes about API calls,
//! wall time and planning at scale. Not a test: it prints figures and checks only that each run
//! did what its scenario asks.

mod bound;
mod chaos;
mod naive;
mod plan_scale;
pub(crate) mod scenario;
mod serve;
mod sim_load;
mod sync;
mod timed_journal;

use std::process::ExitCode;

use crate::args::{BenchArgs, BenchCommand};

/// Runs the chosen benchmark.
pub async fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        BenchCommand::Sync(sync_args) => sync::run(sync_args).await,
        BenchCommand::Plan(plan_args) => plan_scale::run(plan_args).await,
        BenchCommand::Chaos(chaos_args) => chaos::run(chaos_args).await,
        BenchCommand::Serve(serve_args) => serve::run(serve_args).await,
        BenchCommand::Sim(sim_args) => sim_load::run(sim_args).await,
    }
}

/// The child processes waited for so far (Linux: kernel accounting, so the figures are the
/// children's own): the largest peak resident memory, and their CPU time.
///
/// The peak is inflated for a child started from a large process: the kernel accounts the
/// parent's resident memory, shared with the child until it runs the new program, to the child
/// (Linux records the old address space's high-water mark at `exec`). [`run_child`] reads the
/// peak from the child itself instead.
pub(crate) fn children_usage() -> Option<(f64, f64)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given.
    let done = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if done != 0 {
        return None;
    }
    // SAFETY: initialized by the successful call above.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some((
        usage.ru_maxrss as f64 / 1024.0,
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
    ))
}

/// What one child process cost, as [`run_child`] measured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildUsage {
    /// Its CPU time, user and system (kernel accounting).
    pub cpu_seconds: Option<f64>,
    /// Its peak resident memory after it started its program: `VmHWM` of
    /// `/proc/<pid>/status`, read every few milliseconds until it exits (the high-water mark
    /// only rises, so the last reading misses at most what the last milliseconds added).
    /// `None` where /proc cannot tell.
    pub peak_rss_mib: Option<f64>,
}

/// Runs `command` to its end on the calling thread (blocking) and measures it.
pub(crate) fn run_child(
    command: &mut std::process::Command,
) -> std::io::Result<(std::process::ExitStatus, ChildUsage)> {
    let before = children_usage();
    let mut child = command.spawn()?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib: Option<u64> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file).ok().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        if hwm.is_some() {
            peak_kib = peak_kib.max(hwm);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let after = children_usage();
    Ok((
        status,
        ChildUsage {
            // Cumulative over the children waited for: this one's is the difference.
            cpu_seconds: after
                .zip(before)
                .map(|((_, all), (_, earlier))| all - earlier),
            peak_rss_mib: peak_kib.map(|kib| kib as f64 / 1024.0),
        },
    ))
}
