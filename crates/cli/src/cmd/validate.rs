//! `skillsync validate`: the config and the HRIS files, checked without touching the network.

use std::process::ExitCode;

use skillsync_core::render::{HrisCounts, ProblemsDocument, Style, problems_human};

use crate::args::CommonArgs;
use crate::config::Config;
use crate::inputs::read_hris;
use crate::output::{OutputFormat, exit, out, outln, print_json};

/// Runs the command.
pub fn run(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let style = Style {
        color: args.color.for_stdout(),
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(problems) => return Ok(report_invalid(args, &problems, style)),
    };
    let mut warnings = Vec::new();
    if let Err(missing) = config.client_settings() {
        // Not needed to validate files, but plan and apply will stop on it: say so now.
        for mut problem in missing {
            problem.severity = skillsync_core::Severity::Warning;
            problem.message.push_str(" (needed by plan and apply)");
            warnings.push(problem);
        }
    }
    match read_hris(&config) {
        Err(problems) => Ok(report_invalid(args, &problems, style)),
        Ok(loaded) => {
            warnings.extend(loaded.warnings);
            let desired = &loaded.desired;
            let assignments: usize = desired.assignments.values().map(|a| a.len()).sum();
            match args.output {
                OutputFormat::Json => print_json(&ProblemsDocument {
                    counts: Some(HrisCounts {
                        catalog_variants: desired.catalog.entries.len(),
                        agents: desired.agents.len(),
                        assignments,
                    }),
                    ..ProblemsDocument::new(&warnings)
                })?,
                OutputFormat::Human => {
                    if !warnings.is_empty() {
                        out!("{}", problems_human(&warnings, style));
                    }
                    outln!(
                        "valid: {} catalog variants, {} agents, {} assignments",
                        desired.catalog.entries.len(),
                        desired.agents.len(),
                        assignments
                    );
                    outln!("{}", config.summary());
                }
            }
            Ok(exit::ok())
        }
    }
}

/// [`report_invalid`] in the style the command's `--color` asks for.
pub fn report_problems(args: &CommonArgs, problems: &[skillsync_core::Problem]) -> ExitCode {
    let style = Style {
        color: args.color.for_stdout(),
    };
    report_invalid(args, problems, style)
}

/// Prints problems (stdout: they are the command's result) and returns the error exit code.
pub fn report_invalid(
    args: &CommonArgs,
    problems: &[skillsync_core::Problem],
    style: Style,
) -> ExitCode {
    match args.output {
        OutputFormat::Json => {
            if let Err(error) = print_json(&ProblemsDocument::new(problems)) {
                eprintln!("error: {error:#}");
            }
        }
        OutputFormat::Human => out!("{}", problems_human(problems, style)),
    }
    exit::error()
}
