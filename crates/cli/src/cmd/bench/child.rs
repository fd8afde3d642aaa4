//! A skillsync command run as its own process, measured from outside: its wall time, and its
//! own peak memory and CPU time as the child reports them (`SKILLSYNC_RESOURCE_REPORT`, see
//! `main.rs`; the kernel's account of a child counts the parent's memory at the spawn).

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Instant;

use anyhow::Context;

/// What one child process took.
#[derive(Debug, Clone, Copy)]
pub struct ChildRun {
    /// From spawn to exit.
    pub wall_seconds: f64,
    /// Its own peak resident memory, MiB (`None` where the system does not say).
    pub peak_rss_mib: Option<f64>,
    /// Its own user + system CPU time.
    pub cpu_seconds: Option<f64>,
    /// How it exited.
    pub status: ExitStatus,
}

/// Runs `command` to its end with the resource report written to `report` (replaced).
pub fn run_measured(command: &mut Command, report: &Path) -> anyhow::Result<ChildRun> {
    std::fs::remove_file(report).ok();
    let started = Instant::now();
    let status = command
        .env("SKILLSYNC_RESOURCE_REPORT", report)
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let figures: serde_json::Value = std::fs::read(report)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    Ok(ChildRun {
        wall_seconds,
        peak_rss_mib: figures["peakRssMib"].as_f64(),
        cpu_seconds: figures["cpuSeconds"].as_f64(),
        status,
    })
}
