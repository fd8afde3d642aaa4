//! `skillsync plan`: what `apply` would do, read-only. Exit 0 no changes, 2 changes, 1 error.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skillsync_core::render::{Style, plan_json};

use super::validate::report_invalid;
use crate::args::CommonArgs;
use crate::config::Config;
use crate::inputs::read_hris;
use crate::output::{OutputFormat, exit};

/// Runs the command.
pub async fn run(args: &CommonArgs) -> anyhow::Result<ExitCode> {
    let style = Style {
        color: args.color.for_stdout(),
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(problems) => return Ok(report_invalid(args, &problems, style)),
    };
    // Files and secrets are checked before the first request.
    let loaded = match read_hris(&config) {
        Ok(loaded) => loaded,
        Err(problems) => return Ok(report_invalid(args, &problems, style)),
    };
    let settings = match config.client_settings() {
        Ok(settings) => settings,
        Err(problems) => return Ok(report_invalid(args, &problems, style)),
    };
    let api = cxone::connect(&settings).context("cannot set up the tenant client")?;

    let started = Instant::now();
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} reading the tenant: {msg}")
            .expect("valid template"),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let live = engine::read_live(api.as_ref(), &|p| {
        progress.set_message(format!("{} users", p.users))
    })
    .await
    .with_context(|| format!("cannot read the tenant at {}", config.tenant.api_base))?;
    progress.finish_and_clear();
    let counters = api.counters();
    eprintln!(
        "read {} users and {} definitions in {:.1} s ({} requests)",
        live.users.len(),
        live.definitions.len(),
        started.elapsed().as_secs_f64(),
        counters.total_requests()
    );

    let options = config.plan_options(api.capabilities().max_bulk_entries.is_some());
    let mut plan = match skillsync_core::plan(&loaded.desired, &live, &options) {
        Ok(plan) => plan,
        Err(problems) => return Ok(report_invalid(args, &problems, style)),
    };
    plan.warnings.splice(0..0, loaded.warnings);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&plan_json(&plan))?),
        OutputFormat::Human => print!("{}", crate::output::plan_text(&plan, style, args.summary)),
    }
    Ok(if plan.is_empty() {
        exit::ok()
    } else {
        exit::changes()
    })
}
