//! How results are printed: data on stdout (human or JSON), diagnostics on stderr, colour only
//! on a terminal and never under `NO_COLOR`.

use std::io::IsTerminal;

use clap::ValueEnum;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Readable text.
    #[default]
    Human,
    /// One JSON document with a stable schema (docs/plan-json.md).
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
    let full = skillsync_core::render::plan_human(plan, style);
    if !summary {
        return full;
    }
    let keep = [
        "Plan:",
        "No changes",
        "agents in the HRIS",
        "Safety:",
        "Writes:",
    ];
    let mut text: String = full
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
