//! What the writing commands show and ask on the terminal: a yes/no confirmation that refuses
//! when there is nobody to ask, and one progress bar per phase on stderr.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Asks `question` on the terminal. Without a terminal on stdin it refuses, printing `refusal`
/// (which should say how to proceed, e.g. pass --yes); an answer other than yes prints
/// `declined`.
pub fn confirm(question: &str, refusal: &str, declined: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: {refusal}");
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes");
    if !yes {
        eprintln!("{declined}");
    }
    Ok(yes)
}

/// stderr when it is a terminal; nothing otherwise (logs stay free of bar redraws).
pub fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() && !crate::output::quiet() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// One progress bar per phase, created the first time the phase reports.
pub struct PhaseBars {
    multi: MultiProgress,
    bars: std::sync::Mutex<Vec<(&'static str, ProgressBar)>>,
}

impl PhaseBars {
    /// No bars yet.
    pub fn new() -> PhaseBars {
        PhaseBars {
            multi: MultiProgress::with_draw_target(draw_target()),
            bars: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Shows `done` of `total` for the phase labelled `phase`.
    pub fn show(&self, phase: &'static str, done: usize, total: usize) {
        let mut bars = self.bars.lock().expect("not poisoned");
        let bar = match bars.iter().find(|(p, _)| *p == phase) {
            Some((_, bar)) => bar.clone(),
            None => {
                let bar = self.multi.add(ProgressBar::new(total as u64));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(phase);
                bar.enable_steady_tick(Duration::from_millis(200));
                bars.push((phase, bar.clone()));
                bar
            }
        };
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }

    /// Removes every bar, so that the summary printed next stands alone.
    pub fn clear(&self) {
        for (_, bar) in self.bars.lock().expect("not poisoned").iter() {
            bar.finish_and_clear();
        }
    }
}

/// Stops listening for signals when dropped.
pub struct SignalGuard(tokio::task::JoinHandle<()>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Until the guard is dropped, Ctrl-C (or SIGTERM) during the writes raises `interrupt`:
/// writes in flight finish and are journaled, no new one starts, and the command reports what
/// it did. Before the first write (reading, planning, at the prompt) and on a second signal the
/// process exits at once with 130: nothing is half-done then (before the first write, the
/// tenant's lease in the journal at `store_url` is released first).
pub fn interrupt_on_signal(
    interrupt: std::sync::Arc<skillsync_engine::Interrupt>,
    store_url: String,
) -> SignalGuard {
    SignalGuard(tokio::spawn(async move {
        let signal = next_signal().await;
        if interrupt.exit_before_writing() {
            // The tenant's lease, taken before the read, is given up now rather than left to
            // run out: the next run need not wait for a command that wrote nothing.
            if let Some(lease) = interrupt.held_lease()
                && let Ok(journal) = skillsync_store::open(&store_url).await
            {
                let _ = journal.release_lease(&lease).await;
            }
            eprintln!("\n{signal}: nothing was written");
            std::process::exit(130);
        }
        eprintln!(
            "\n{signal}: finishing the writes in flight and sending no new ones (again to stop at once)"
        );
        interrupt.raise();
        let signal = next_signal().await;
        eprintln!(
            "{signal} again: stopped at once; the run stays unfinished in the journal (history shows it as killed), and a write in flight may have landed without being journaled: the next run converges from the tenant's state"
        );
        std::process::exit(130);
    }))
}

/// Waits for Ctrl-C or, on Unix, SIGTERM or SIGHUP; names it.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut terminate), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "interrupted",
                _ = terminate.recv() => return "terminated",
                // The terminal went away (a closed window, a dropped SSH session).
                _ = hangup.recv() => return "hung up",
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}
