//! How results are printed: data on stdout (human or JSON), diagnostics on stderr, colour only
//! on a terminal and never under `NO_COLOR`.
//!
//! Every write to stdout goes through [`out!`], [`outln!`] or [`print_json`], never `print!`:
//! `print!` panics when the reader has gone (`skillsync history | head -1`), and SPEC section 3
//! says a closed stdout pipe ends a command quietly. SIGPIPE stays ignored process-wide (Rust's
//! default), so that a write to a closed socket is an error to handle, not a silent death.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;

/// Writes `args` to stdout; the body of [`out!`] and [`outln!`].
///
/// When the reader has closed the pipe, the process exits at once with code 0 and prints
/// nothing: the reader has all it wanted (the convention of `head`, `grep -q` and ripgrep). Any
/// other failure to write (a full disk) exits with code 1 after saying so on stderr. Whatever
/// was committed before the write (the journal) is already durable; no destructor is needed.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    write_data(args);
}

/// `--quiet`: human output and progress bars are not shown.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets `--quiet` for the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes what was asked for explicitly (a JSON document, a completion script), `--quiet` or
/// not; a closed pipe as [`write_stdout`].
pub fn write_data(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args) {
        stdout_failed(&error);
    }
}

fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {error}");
    std::process::exit(1);
}

/// `print!` for data on stdout: a closed pipe ends the process quietly ([`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` for data on stdout: a closed pipe ends the process quietly ([`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

/// Prints one `--output json` document on stdout, pretty, with a final newline. Written as it
/// is serialized: a plan of 30,000 changed users is some 70 MB, which is not held twice.
pub fn print_json<T: serde::Serialize + ?Sized>(document: &T) -> anyhow::Result<()> {
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match serde_json::to_writer_pretty(&mut stdout, document) {
        Err(error) if error.is_io() => stdout_failed(&error.into()),
        Err(error) => return Err(error.into()),
        Ok(()) => {}
    }
    if let Err(error) = stdout.write_all(b"\n").and_then(|()| stdout.flush()) {
        stdout_failed(&error);
    }
    Ok(())
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Readable text.
    #[default]
    Human,
    /// One JSON document with a stable schema and a `schemaVersion` (docs/*-json.md).
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether stdout gets colour.
    pub fn for_stdout(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

impl ColorChoice {
    /// Whether stderr gets colour.
    pub fn for_stderr(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }
}

/// What a writing command returns when the engine failed: the lease held by another process
/// is exit 75 with the holder named; anything else is an error (exit 1).
pub fn engine_failed(
    error: skillsync_engine::Error,
    context: String,
) -> anyhow::Result<std::process::ExitCode> {
    if let skillsync_engine::Error::LeaseHeld(_) | skillsync_engine::Error::LeaseExpired = &error {
        eprintln!(
            "error: {error}\n  hint: nothing was written; run again when it is done, or pass --wait 5m to wait for it"
        );
        return Ok(exit::lease_held());
    }
    Err(anyhow::Error::new(error).context(context))
}

/// One line naming a command's API calls by kind, 429s, retries and token fetches.
pub fn api_calls(counters: &skillsync_cxone::CounterSnapshot) -> String {
    let by_kind: Vec<String> = counters
        .requests
        .iter()
        .map(|(kind, n)| format!("{kind} ×{n}"))
        .collect();
    format!(
        "API calls: {} ({}); {} throttled (429), {} retries, {} token fetches.",
        counters.total_requests(),
        by_kind.join(", "),
        counters.throttled,
        counters.retries,
        counters.token_fetches
    )
}

/// Exit codes that mean something (SPEC section 3).
pub mod exit {
    use std::process::ExitCode;

    /// Success; for `plan`, no changes.
    pub fn ok() -> ExitCode {
        ExitCode::SUCCESS
    }
    /// An error: bad input, a refused run, an unreachable tenant.
    pub fn error() -> ExitCode {
        ExitCode::from(1)
    }
    /// `plan` found changes.
    pub fn changes() -> ExitCode {
        ExitCode::from(2)
    }
    /// Another skillsync holds the tenant's lease: nothing was written; try again later (or
    /// with `--wait`). 75 is sysexits' EX_TEMPFAIL.
    pub fn lease_held() -> ExitCode {
        ExitCode::from(75)
    }
    /// A writing command was interrupted (Ctrl-C, SIGTERM): 128 + SIGINT, as shells report it.
    pub fn interrupted() -> ExitCode {
        ExitCode::from(130)
    }
}

/// The human plan, whole or (with `--summary`) only its headline, safety and writes lines.
pub fn plan_text(
    plan: &skillsync_core::Plan,
    style: skillsync_core::render::Style,
    summary: bool,
) -> String {
    use skillsync_core::render::{Detail, plan_human_with};
    if !summary {
        return plan_human_with(plan, style, Detail::Full);
    }
    let brief = plan_human_with(plan, style, Detail::Summary);
    let keep = [
        "Plan:",
        "No changes",
        "agents in the HRIS",
        "Safety:",
        "Writes:",
    ];
    let mut text: String = brief
        .lines()
        .filter(|line| keep.iter().any(|k| line.contains(k)))
        .map(|line| format!("{line}\n"))
        .collect();
    if !plan.warnings.is_empty() {
        text.push_str(&format!(
            "{} warning(s); run without --summary to read them\n",
            plan.warnings.len()
        ));
    }
    text
}
