//! `skillsync plan`: what `apply` would do, read-only. Exit 0 no changes, 2 changes, 1 error.

use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skillsync_core::render::{PlanDocument, Style};

use crate::args::PlanArgs;
use crate::inputs::Session;
use crate::output::{OutputFormat, exit, out, print_json};

/// Runs the command.
pub async fn run(plan_args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let args = &plan_args.common;
    let style = Style {
        color: args.color.for_stdout(),
    };
    let started = Instant::now();
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} reading the tenant: {msg}")
            .expect("valid template"),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let opened = Session::open_and_read(args, &|p| {
        progress.set_message(format!("{} users", p.users))
    })
    .await;
    progress.finish_and_clear();
    let (session, live) = match opened? {
        Ok(opened) => opened,
        Err(code) => return Ok(code),
    };
    let counters = session.api.counters();
    eprintln!(
        "read {} users and {} definitions in {:.1} s ({} requests)",
        live.users.len(),
        live.definitions.len(),
        started.elapsed().as_secs_f64(),
        counters.total_requests()
    );

    let mut plan = match session.plan(&live, args) {
        Ok(plan) => plan,
        Err(code) => return Ok(code),
    };
    let ownership = session.ownership(&plan_args.adopt).await?;
    match skillsync_core::check_takeovers(&plan, &session.loaded.desired, &ownership) {
        Ok(adoptions) => plan.warnings.extend(adoptions),
        Err(mut conflicts) => {
            conflicts.splice(0..0, plan.warnings.iter().cloned());
            return Ok(crate::cmd::validate::report_problems(args, &conflicts));
        }
    }
    if let Some(path) = &plan_args.out {
        let digest = crate::saved_plan::desired_digest(&session.config)?;
        crate::saved_plan::SavedPlan::new(&plan, &session.loaded.desired, &session.config, digest)
            .write(path)?;
        eprintln!(
            "saved the plan to {}: `skillsync apply {}` applies exactly it",
            path.display(),
            path.display()
        );
    }
    match args.output {
        OutputFormat::Json => print_json(&PlanDocument::new(&plan))?,
        OutputFormat::Human => out!("{}", crate::output::plan_text(&plan, style, args.summary)),
    }
    if !plan.is_empty()
        && let Some(why) = session.config.outside_window(jiff::Timestamp::now())
    {
        eprintln!("note: `apply` would refuse now: {why} (or pass --now)");
    }
    let code = if plan.is_empty() {
        exit::ok()
    } else {
        exit::changes()
    };
    // The process ends next: freeing every user's lists one by one would only delay the exit
    // (a quarter of a second at 100,000 agents); the kernel takes the memory back at once.
    std::mem::forget((session.loaded, live, plan));
    Ok(code)
}
