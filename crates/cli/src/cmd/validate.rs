//! `skillsync validate`: the config and the HRIS files, checked without touching the network.

use std::process::ExitCode;

use skillsync_core::render::{HrisCounts, ProblemsDocument, Style, problems_human};

use crate::args::CommonArgs;
use crate::config::{Config, SecretSource};
use crate::inputs::read_hris;
use crate::output::{OutputFormat, exit, outln, print_json};

/// Runs the command.
pub fn run(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::read(&args.config) {
        Ok(config) => config,
        Err(problems) => return Ok(report_problems(args, &problems)),
    };
    let mut warnings = config.warnings.clone();
    let mut errors: Vec<_> = config.ca_file_problem().into_iter().collect();
    let secrets = [
        ("tenant.client_id", Some(&config.tenant.client_id)),
        ("tenant.client_secret", Some(&config.tenant.client_secret)),
        ("store.password", config.store_password.as_ref()),
    ];
    for (key, source) in secrets {
        let Some(source) = source else { continue };
        let Err(mut problem) = config.secret(key, source) else {
            continue;
        };
        match source {
            // The environment of a check (CI, a laptop) is seldom the one of the runs: said,
            // not refused.
            SecretSource::Env { .. } => {
                problem.severity = skillsync_core::Severity::Warning;
                problem.message.push_str(" (needed by plan and apply)");
                warnings.push(problem);
            }
            // A file the config names is part of the configuration.
            _ => errors.push(problem),
        }
    }
    if !errors.is_empty() {
        // The HRIS files' problems too, so that one run shows everything to fix.
        if let Err(problems) = read_hris(&config) {
            errors.extend(problems);
        }
        errors.extend(warnings);
        return Ok(report_problems(args, &errors));
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
