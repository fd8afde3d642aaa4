//! `skillsync validate`: the config and the HRIS files, checked without touching the network.

use std::process::ExitCode;

use skillsync_core::render::{HrisCounts, ProblemsDocument, Style, problems_human};

use crate::args::CommonArgs;
use crate::config::Config;
use crate::inputs::read_hris;
use crate::output::{OutputFormat, exit, outln, print_json};

/// Runs the command.
pub fn run(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(problems) => return Ok(report_problems(args, &problems)),
    };
    let mut warnings = Vec::new();
    let store_password = config
        .store_password
        .as_ref()
        .and_then(|source| config.secret("store.password", source).err());
    let missing = config
        .client_settings()
        .err()
        .into_iter()
        .flatten()
        .chain(store_password);
    // Not needed to validate files, but plan and apply will stop on it: say so now.
    for mut problem in missing {
        problem.severity = skillsync_core::Severity::Warning;
        problem.message.push_str(" (needed by plan and apply)");
        warnings.push(problem);
    }
    match read_hris(&config) {
        Err(problems) => Ok(report_problems(args, &problems)),
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
                        let style = Style {
                            color: args.color.for_stderr(),
                        };
                        eprint!("{}", problems_human(&warnings, style));
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

/// Prints problems and returns the error exit code: the JSON problems document is the
/// command's result (stdout, for scripts); in human form they are errors (stderr, coloured
/// when stderr is a terminal), so a script piping stdout never takes them for data.
pub fn report_problems(args: &CommonArgs, problems: &[skillsync_core::Problem]) -> ExitCode {
    match args.output {
        OutputFormat::Json => {
            if let Err(error) = print_json(&ProblemsDocument::new(problems)) {
                eprintln!("error: {error:#}");
            }
        }
        OutputFormat::Human => {
            let style = Style {
                color: args.color.for_stderr(),
            };
            eprint!("{}", problems_human(problems, style));
        }
    }
    exit::error()
}
