//! Replays one run's writes from an existing SQLite journal into a new one, as the write path
//! journals them (batches of 100, then the run's end), and prints the CPU time of each part.
//! The journal alone, without a tenant or a sync around it: what `docs/BENCHMARKS.md` used to
//! compare journal changes, under `valgrind --tool=callgrind` for instruction counts.
//!
//! ```sh
//! cargo run --release -p skillsync --example journal_replay -- SOURCE.db RUN [REPEATS]
//! ```
//!
//! SOURCE.db is a journal with a run in it (`bench sync --dir DIR` leaves one in DIR); the
//! replay writes `SOURCE.db.replay` beside it, and removes it before each repeat.

use std::time::{Duration, Instant};

use anyhow::Context;
use skillsync_store::{NewRun, RunCounts, RunId, RunOutcome};

/// As in the binary: the journal's callers allocate with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of the calling thread (the replay runs on one).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(run)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: journal_replay SOURCE.db RUN [REPEATS]");
    };
    let run = RunId(run.parse().context("RUN is a run id")?);
    let repeats: usize = args.next().map_or(Ok(3), |n| n.parse())?;
    let writes = skillsync_store::open(&format!("sqlite://{source}"))
        .await?
        .writes(run)
        .await?;
    anyhow::ensure!(!writes.is_empty(), "run {run} of {source} has no writes");
    let target = format!("{source}.replay");
    for _ in 0..repeats {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{target}{suffix}"));
        }
        let journal = skillsync_store::open(&format!("sqlite://{target}")).await?;
        let replayed = journal
            .start_run(&NewRun {
                command: "apply".into(),
                config_hash: "replay".into(),
                started_at: jiff::Timestamp::now(),
                dialect: "routing".into(),
            })
            .await?;
        let mut batch = writes.clone();
        for write in &mut batch {
            write.run = replayed;
        }
        let (started, cpu_start) = (Instant::now(), thread_cpu());
        for chunk in batch.chunks(100) {
            journal.record_writes(chunk).await?;
        }
        let cpu_recorded = thread_cpu();
        journal
            .finish_run(
                replayed,
                RunOutcome::Succeeded,
                &RunCounts::default(),
                jiff::Timestamp::now(),
            )
            .await?;
        let cpu_finished = thread_cpu();
        println!(
            "{} writes: record_writes {:.3} s CPU, finish_run {:.3} s CPU, {:.3} s wall",
            batch.len(),
            (cpu_recorded - cpu_start).as_secs_f64(),
            (cpu_finished - cpu_recorded).as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}
